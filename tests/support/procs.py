"""Real `vau-cloud serve` and `vau-edge run` processes for end-to-end tests on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CLOUD = [sys.executable, "-m", "vau.cloud.cli"]
EDGE = [sys.executable, "-m", "vau.edge.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CloudProcess:
    """`vau-cloud serve` on 127.0.0.1:port with a data dir; kill -9 and restart keep both."""

    def __init__(
        self, data_dir: Path, port: int | None = None, log: Path | None = None,
        env: dict[str, str] | None = None, store: str | None = None,
    ) -> None:  # fmt: skip
        self.data_dir = data_dir
        self.store = store  # `--store URL` (e.g. postgresql://...); None = the data dir
        # the language model stays off unless a test asks for it (it takes seconds to load)
        self.env = {"VAU_CLOUD__EXPLAIN__ENABLED": "false", **(env or {})}
        self.port = port or free_port()
        self.log = log or data_dir.parent / f"cloud-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> CloudProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        store = ["--store", self.store] if self.store else []
        self.proc = subprocess.Popen(
            [*CLOUD, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
             str(self.data_dir), *store],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vau-cloud exited: {self.log.read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"vau-cloud did not listen: {self.log.read_text()[-2000:]}")

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def stats(self) -> dict[str, Any]:
        where = ["--store", self.store] if self.store else ["--data-dir", str(self.data_dir)]
        out = subprocess.run([*CLOUD, "stats", *where, "--json"],
                             capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
        return dict(json.loads(out.stdout))


def edge_run(
    source: Path, cloud: str, data_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*EDGE, "run", "--source", str(source), "--cloud", cloud, "--data-dir", str(data_dir),
         "--device-id", "edge-test", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def outbox_stats(data_dir: Path) -> dict[str, int]:
    out = subprocess.run([*EDGE, "outbox", "stats", "--data-dir", str(data_dir), "--json"],
                         capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return dict(json.loads(out.stdout))


def acked_in_log(stderr: str) -> int:
    found = re.findall(r"(\d+) records acked in total", stderr)
    return int(found[-1]) if found else -1
