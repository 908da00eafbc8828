"""`vau-cloud` as a user runs it: serve (and its refusals), stats, certs, tokens."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from support.cloud_harness import ServerThread, cloud_settings, open_session, send_frames

from vau.cloud.cli import main

CLI = [sys.executable, "-m", "vau.cloud.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("VAU_CLOUD__")}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=ENV)


def test_serve_when_plaintext_on_public_address_then_exit_2_one_line(tmp_path: Path) -> None:
    done = _run("serve", "--listen", "0.0.0.0:0", "--data-dir", str(tmp_path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to serve plaintext on 0.0.0.0:0" in lines[0]
    assert "Traceback" not in done.stderr


def test_serve_when_settings_invalid_then_exit_2(tmp_path: Path) -> None:
    assert main(["serve", "--listen", "nope", "--data-dir", str(tmp_path)]) == 2
    assert main(["stats", "--data-dir", str(tmp_path / "missing")]) == 2


def test_serve_when_sigterm_then_graceful_exit_0_and_stats_readable_meanwhile(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [*CLI, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data)],
        stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        port = _bound_port(proc)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stream, _ = open_session(ch, "dev-a", ["cam-0", "cam-1"])
            send_frames(stream, "cam-0", [1, 2, 3])
            send_frames(stream, "cam-0", [2])
            stats = _run("stats", "--data-dir", str(data), "--json")
            stream.close()
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout) == {
            "devices": {"dev-a": {"cam-0": {"accepted": 3, "duplicates": 1, "max_seq": 3,
                                            "gaps": 0}}}
        }  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    table = _run("stats", "--data-dir", str(data))
    assert "dev-a" in table.stdout and table.returncode == 0


def _bound_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))
        assert line, "server exited before listening"
    raise AssertionError("no 'listening on' line within 30 s")


def test_certs_init_when_run_then_working_ca_server_and_device_set(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    assert _run("certs", "init", "--out", str(out), "--device", "cam-box-1").returncode == 0
    assert _run("certs", "device", "--ca-dir", str(out), "--device", "cam-box-2",
                "--out", str(out)).returncode == 0  # fmt: skip
    for key in ("ca.key", "server.key", "cam-box-1.key", "cam-box-2.key"):
        assert (out / key).stat().st_mode & 0o777 == 0o600
    assert _run("certs", "init", "--out", str(out)).returncode == 2  # never overwrites a CA

    tls = {"server_cert": out / "server.crt", "server_key": out / "server.key",
           "client_ca": out / "ca.crt"}  # fmt: skip
    server = ServerThread(cloud_settings(tmp_path / "data", tls=tls))
    try:
        for device in ("cam-box-1", "cam-box-2"):
            creds = grpc.ssl_channel_credentials(
                (out / "ca.crt").read_bytes(),
                (out / f"{device}.key").read_bytes(),
                (out / f"{device}.crt").read_bytes(),
            )
            with grpc.secure_channel(f"localhost:{server.port}", creds) as ch:
                stream, ack = open_session(ch, device)
                assert ack.device_id == device
                assert send_frames(stream, "cam-0", [1])[-1].seq == 1
                stream.close()
    finally:
        server.stop()


def test_tokens_add_when_run_then_token_printed_once_and_only_hash_stored(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    done = _run("tokens", "add", "dev-a", "--tokens-file", str(path))
    assert done.returncode == 0
    token = done.stdout.strip()
    assert len(token) >= 43 and token not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    assert set(json.loads(path.read_text())["devices"]) == {"dev-a"}
    assert _run("tokens", "add", "bad id", "--tokens-file", str(path)).returncode == 2
