"""Settings layering (defaults < TOML < env < flags), bounds and unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from vau.edge.cli import build_parser, overrides_from
from vau.edge.settings import EdgeSettings, SettingsError, load_settings

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware_configs"


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_valid_and_documented() -> None:
    s = load_settings()
    assert s.sets.keep_ratio == 0.5 and s.encoder.backend == "onnx"
    sections = {
        "source",
        "encoder",
        "sets",
        "head",
        "normality",
        "events",
        "ats",
        "output",
        "uplink",
    }
    for name, field in EdgeSettings.model_fields.items():
        assert field.description or name in sections
    for section in sections:
        model = type(getattr(s, section))
        undocumented = [n for n, f in model.model_fields.items() if not f.description]
        assert not undocumented, f"{section}: {undocumented}"


def test_each_layer_overrides_the_one_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _toml(tmp_path, "[sets]\nkeep_ratio = 0.3\n[source]\nfps = 4.0\n[encoder]\nthreads = 2\n")
    assert load_settings(cfg).sets.keep_ratio == 0.3
    monkeypatch.setenv("VAU_EDGE__SETS__KEEP_RATIO", "0.2")
    monkeypatch.setenv("VAU_EDGE__SOURCE__FPS", "5")
    s = load_settings(cfg, {"sets": {"keep_ratio": 0.9}})
    assert s.sets.keep_ratio == 0.9  # flag beats env
    assert s.source.fps == 5.0  # env beats file
    assert s.encoder.threads == 2  # file beats default
    assert s.encoder.backend == "onnx"  # default


def test_unknown_key_in_file_is_an_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"sets\.keep_ratoi: unknown setting"):
        load_settings(_toml(tmp_path, "[sets]\nkeep_ratoi = 0.3\n"))


@pytest.mark.parametrize("var", ["VAU_EDGE__SETS__KEEP_RATOI", "VAU_EDGE__BOGUS"])
def test_unknown_environment_variable_is_an_error(
    var: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(var, "1")
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[sets]\nkeep_ratio = 1.5\n", "sets.keep_ratio"),
        ("[encoder]\ninput_size = 225\n", "multiple of 14"),
        ("[encoder]\nbackend = 'openvino'\n", "encoder.backend"),
        ("[events]\nenter = 0.3\nexit = 0.5\n", "must be below enter"),
        ("[source]\nfps = 0\n", "source.fps"),
    ],
)
def test_out_of_bounds_values_are_rejected_not_fixed(
    tmp_path: Path, text: str, fragment: str
) -> None:
    with pytest.raises(SettingsError, match=fragment.replace(".", r"\.")):
        load_settings(_toml(tmp_path, text))


def test_missing_or_malformed_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(_toml(tmp_path, "[sets\nkeep_ratio = "))


@pytest.mark.parametrize("path", sorted(FIRMWARE.glob("*.toml")), ids=lambda p: p.stem)
def test_every_firmware_config_loads(path: Path) -> None:
    s = load_settings(path)
    assert s.encoder.input_size % 14 == 0


def test_firmware_configs_cover_each_device_class() -> None:
    names = {p.stem for p in FIRMWARE.glob("*.toml")}
    assert {
        "x86-cpu",
        "jetson-orin-nano-8gb",
        "jetson-orin-nx-16gb",
        "jetson-agx-orin-64gb",
    } <= names


def test_cli_flags_map_to_nested_overrides_and_unset_flags_do_not_override() -> None:
    args = build_parser().parse_args(["run", "--camera", "0", "--keep-ratio", "0.25"])
    assert overrides_from(args) == {"source": {"uri": "0"}, "sets": {"keep_ratio": 0.25}}
