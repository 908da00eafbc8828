"""`vau-edge` as a user meets it when something is off: Ctrl-C while a camera connects, a mistyped
stream URL, a port or a data folder that cannot be used. Real processes, real sockets."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from vau.edge.cli import main
from vau.edge.settings import EdgeSettings

CLI = [sys.executable, "-m", "vau.edge.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("VAU_EDGE__")}


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vau_edge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env={**ENV, **(env or {})}
    )


def streaming(clip: Path) -> list[str]:
    """`run` arguments for one frame of `clip` with the uplink on (so the outbox is opened)."""
    return [
        "run",
        "--source",
        str(clip),
        "--max-frames",
        "1",
        "--cloud",
        f"127.0.0.1:{closed_port()}",
    ]


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("vau-edge: error:")]


class Lines:
    """A process's stderr read line by line on a thread, so a test can wait for one line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self._queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        stream = proc.stderr
        threading.Thread(target=lambda: [self._queue.put(ln) for ln in stream], daemon=True).start()

    def wait_for(self, fragment: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(fragment in line for line in self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"no line with {fragment!r} in {timeout} s: {''.join(self.seen)}"
            try:
                self.seen.append(self._queue.get(timeout=left))
            except queue.Empty:
                continue


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stop_signal_while_rtsp_source_connects_exits_0_promptly(sig: signal.Signals) -> None:
    url = f"rtsp://127.0.0.1:{closed_port()}/x"
    proc = subprocess.Popen(
        [*CLI, "run", "--source", url, "--dry-run"], stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        lines = Lines(proc)
        lines.wait_for("cannot connect; retrying", timeout=120)
        time.sleep(0.5)  # well inside the backoff wait and the next attempts
        proc.send_signal(sig)
        start = time.monotonic()
        proc.wait(timeout=10)
        took = time.monotonic() - start
        lines.wait_for("stopped while connecting", timeout=5)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, "".join(lines.seen)
    assert took < 2.0


def test_mistyped_rtsp_url_exits_2_with_one_line_after_the_first_connect_timeout() -> None:
    url = f"rtsp://127.0.0.1:{closed_port()}/typo"
    start = time.monotonic()
    done = vau_edge(
        "run", "--source", url, "--dry-run", env={"VAU_EDGE__SOURCE__FIRST_CONNECT_TIMEOUT_S": "1"}
    )
    assert done.returncode == 2, done.stderr
    [line] = error_lines(done.stderr)
    assert "no connection within 1 s" in line and "check the URL" in line
    assert time.monotonic() - start < 60


def test_metrics_port_in_use_exits_2_with_one_line(vtest_path: Path, taken_port: int) -> None:
    one_frame = ["run", "--source", str(vtest_path), "--dry-run", "--max-frames", "1"]
    done = vau_edge(*one_frame, "--metrics-port", str(taken_port))
    assert done.returncode == 2, done.stderr
    [line] = error_lines(done.stderr)
    assert f"metrics port {taken_port} is already in use" in line and "--metrics-port" in line


@pytest.mark.parametrize("under", ["", "sub"], ids=["a-file", "under-a-file"])
def test_data_dir_that_is_a_file_exits_2_with_one_line(
    vtest_path: Path, tmp_path: Path, under: str
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    data_dir = blocker / under if under else blocker
    done = vau_edge(*streaming(vtest_path), "--data-dir", str(data_dir))
    assert done.returncode == 2, done.stderr
    [line] = error_lines(done.stderr)
    assert f"data folder {data_dir}" in line and f"{blocker} is a file" in line
    assert "--data-dir" in line


def test_data_dir_that_cannot_be_created_exits_2_with_one_line(vtest_path: Path) -> None:
    done = vau_edge(*streaming(vtest_path), "--data-dir", "/proc/vau-edge-data")
    assert done.returncode == 2, done.stderr
    [line] = error_lines(done.stderr)
    assert "/proc/vau-edge-data cannot be created" in line and "--data-dir" in line


def leaf_keys(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str | None]]:
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield from leaf_keys(kind, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field.description


def test_every_edge_setting_has_a_description() -> None:
    missing = [key for key, about in leaf_keys(EdgeSettings) if not about]
    assert missing == []


def test_config_explain_prints_every_setting_with_value_default_bounds_and_description(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAU_EDGE__SOURCE__FPS", "5")
    assert main(["config", "--explain"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    header = ["key", "value", "default", "bounds", "/", "choices", "description"]
    assert rows.pop("key").split() == header
    assert list(rows) == [key for key, _ in leaf_keys(EdgeSettings)]
    assert rows["source.fps"].split()[:5] == ["source.fps", "5.0", "2.0", ">", "0,"]
    assert "Frames per second handed to the encoder." in rows["source.fps"]
    assert "torch | onnx | tensorrt | fused" in rows["encoder.backend"]
    first = rows["source.first_connect_timeout_s"]
    assert ">= 0, <= 86400" in first and "give up (exit 2)" in first
