"""`vau-cloud serve` refusing what a user got wrong: one line naming the fix, exit 2, and no
traceback or shutdown noise after it. Real processes and real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "vau.cloud.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("VAU_CLOUD__")}
NO_LLM = {"VAU_CLOUD__EXPLAIN__ENABLED": "false"}  # loading the language model takes seconds


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "serve", "--listen", "127.0.0.1:0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**ENV, **(env or {})},
    )


def the_error(stderr: str) -> str:
    """The one `vau-cloud: error:` line; nothing that looks like a crash around it."""
    for noise in ("Traceback", "Event loop is closed", "never awaited"):
        assert noise not in stderr, stderr
    [line] = [ln for ln in stderr.splitlines() if ln.startswith("vau-cloud: error:")]
    return line


def test_serve_when_metrics_port_in_use_then_exit_2_one_line_and_clean_shutdown(
    tmp_path: Path, taken_port: int
) -> None:
    done = serve("--data-dir", str(tmp_path), "--metrics-port", str(taken_port), env=NO_LLM)
    assert done.returncode == 2, done.stderr
    line = the_error(done.stderr)
    assert f"metrics port {taken_port} is already in use" in line and "--metrics-port" in line


@pytest.mark.parametrize("under", ["", "sub"], ids=["a-file", "under-a-file"])
def test_serve_when_data_dir_is_a_file_then_exit_2_one_line(tmp_path: Path, under: str) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    data_dir = blocker / under if under else blocker
    done = serve("--data-dir", str(data_dir))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == the_error(done.stderr)  # nothing else is printed first
    assert f"data folder {data_dir}" in done.stderr and f"{blocker} is a file" in done.stderr


def test_serve_when_data_dir_cannot_be_created_then_exit_2_one_line() -> None:
    done = serve("--data-dir", "/proc/vau-cloud-data")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == the_error(done.stderr)
    assert "/proc/vau-cloud-data cannot be created" in done.stderr and "--data-dir" in done.stderr


def test_serve_when_listen_port_out_of_range_then_exit_2_saying_so_once(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "serve", "--listen", "1.2.3.4:99999", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert done.returncode == 2, done.stderr
    assert "port 99999" in done.stderr and "out of range (0-65535)" in done.stderr
    assert done.stderr.count("99999") == 2  # the port and the address it is in, once each
    assert "Traceback" not in done.stderr
