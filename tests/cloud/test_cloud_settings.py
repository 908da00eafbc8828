"""CloudSettings: four layers, unknown keys rejected, cross-field rules named."""

from __future__ import annotations

from pathlib import Path

import pytest

from vau.cloud.settings import SettingsError, is_loopback, load_settings


def test_settings_when_layers_given_then_flags_beat_env_beat_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cloud.toml"
    config.write_text('listen = "127.0.0.1:6000"\n[limits]\nmax_streams = 5\nburst = 9\n')
    monkeypatch.setenv("VAU_CLOUD__LIMITS__MAX_STREAMS", "7")
    s = load_settings(config, {"listen": "127.0.0.1:7000"})
    assert (s.listen, s.limits.max_streams, s.limits.burst) == ("127.0.0.1:7000", 7, 9)
    assert s.limits.max_message_bytes == 4 * 2**20 and s.dedup_retention_days == 30


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"limits": {"max_streamz": 1}}, "unknown setting"),
        ({"limits": {"max_tokens_per_frame": 0}}, "max_tokens_per_frame"),
        ({"dedup_retention_days": 7}, "dedup_retention_days"),
        ({"tls": {"server_cert": "a.crt"}}, "set together"),
        ({"tls": {"server_cert": "a", "server_key": "b"}}, "client_ca"),
        ({"tls": {"server_cert": "a", "server_key": "b", "require_client_cert": False}},
         "tokens_file"),
        ({"listen": "localhost"}, "HOST:PORT"),
    ],
)  # fmt: skip
def test_settings_when_invalid_then_error_names_the_key(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(None, overrides)


def test_settings_when_env_key_unknown_then_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAU_CLOUD__LISTN", "x")
    with pytest.raises(SettingsError, match="VAU_CLOUD__LISTN"):
        load_settings()


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [("127.0.0.1:1", True), ("[::1]:1", True), ("localhost:1", True), ("0.0.0.0:1", False),
     ("[::]:1", False), ("example.com:1", False), ("10.0.0.2:1", False)],
)  # fmt: skip
def test_is_loopback(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback
