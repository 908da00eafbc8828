"""`vau-cloud bench-load`: N simulated edge streams on loopback against one `vau-cloud serve`
(closed loop, below), or paced cameras against replicas (`--cameras`: `vau.cloud.bench_replicas`).

Each simulated device speaks the real protocol with the edge's codec (hello, then frame records
of real size: K tokens x 384 fp16, the default keep ratio's payload), keeps up to `in_flight`
records unacked, and times each record from write to its cumulative ack. The server runs as its
own process, so its CPU time and RSS are read from /proc. Output: sustained records/s and MB/s,
ack latency p50/p99, cloud CPU seconds per 1,000 records and RSS growth over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from vau.common.cli import emit_report
from vau.edge.types import EffectiveTokens, FrameScore
from vau.edge.uplink import codec

STREAM = "/vau.v1.Uplink/Stream"


def frame_payload(kept: int, seq: int) -> bytes:
    rng = np.random.default_rng(seq)
    eff = EffectiveTokens(
        seq=seq, t=seq * 0.5, wall_time=time.time(),
        indices=np.sort(rng.choice(256, kept, replace=False)).astype(np.int64),
        tokens=rng.normal(size=(kept, 384)).astype(np.float32),
        distances=np.ones(kept, np.float32), patches=256, grid=(16, 16), keyframe=False,
    )  # fmt: skip
    return codec.frame_body(eff, FrameScore(seq, seq * 0.5, 0.1, 0.1), "fp16")


async def device(address: str, name: str, records: int, in_flight: int, body: bytes) -> list[float]:
    import grpc

    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(STREAM)()
        await call.write(codec.serialize(codec.hello(name, ["cam-0"], 1, "bench")))
        await call.read()  # HelloAck
        sent: deque[tuple[int, float]] = deque()
        window = asyncio.Semaphore(in_flight)

        async def acks() -> None:
            while len(latencies) < records:
                msg = codec.parse_cloud(bytes(await call.read()))
                if isinstance(msg, codec.Acked):
                    now = time.perf_counter()
                    while sent and sent[0][0] <= msg.seq:
                        latencies.append(now - sent.popleft()[1])
                        window.release()

        reader = asyncio.create_task(acks())
        for seq in range(1, records + 1):
            await window.acquire()
            sent.append((seq, time.perf_counter()))
            await call.write(codec.serialize(codec.record_message("cam-0", 1, seq, body)))
        await reader
        await call.done_writing()
    return latencies


def proc_usage(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MiB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


async def run_load(address: str, pid: int, streams: int, records: int, in_flight: int,
                   kept: int) -> dict[str, Any]:  # fmt: skip
    body = frame_payload(kept, 1)
    await asyncio.gather(*(device(address, f"warm-{i}", 20, in_flight, body) for i in range(2)))
    cpu0, rss0 = proc_usage(pid)
    t0 = time.perf_counter()
    lat = await asyncio.gather(
        *(device(address, f"dev-{i}", records, in_flight, body) for i in range(streams))
    )
    wall = time.perf_counter() - t0
    cpu1, rss1 = proc_usage(pid)
    all_lat = np.concatenate([np.array(x) for x in lat]) * 1000.0
    total = streams * records
    wire = len(codec.serialize(codec.record_message("cam-0", 1, 1, body)))
    return {
        "streams": streams, "records_per_stream": records, "in_flight": in_flight,
        "tokens_per_record": kept, "record_bytes": wire,
        "records_per_s": total / wall, "mb_per_s": total * wire / wall / 2**20,
        "ack_latency_ms": {"p50": float(np.percentile(all_lat, 50)),
                           "p99": float(np.percentile(all_lat, 99))},
        "cloud_cpu_s_per_1000_records": (cpu1 - cpu0) / total * 1000.0,
        "cloud_rss_mb": {"start": rss0, "end": rss1, "growth": rss1 - rss0},
        "wall_s": wall,
    }  # fmt: skip


def serve(
    data_dir: Path, port: int, store: str | None = None, *, explain: bool = True
) -> subprocess.Popen[bytes]:
    """`vau-cloud serve` on loopback (`store`: `--store URL`; `explain` False: no LLM)."""
    cmd = [sys.executable, "-m", "vau.cloud.cli", "serve", "--listen", f"127.0.0.1:{port}",
           "--data-dir", str(data_dir), *(["--store", store] if store else [])]  # fmt: skip
    env = {**os.environ, "VAU_CLOUD__LIMITS__PER_DEVICE_RECORDS_PER_S": "100000"}
    if not explain:
        env["VAU_CLOUD__EXPLAIN__ENABLED"] = "false"
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench-load", help="simulated edge streams against the cloud (JSON)")
    p.add_argument("--streams", type=int, default=8, help="closed loop: concurrent streams")
    p.add_argument("--records", type=int, default=300, help="closed loop: records per stream")
    p.add_argument("--in-flight", type=int, default=64)
    p.add_argument("--kept", type=int, default=128, help="tokens per frame record")
    p.add_argument("--cameras", type=int, help="paced: simulated cameras (one device each)")
    p.add_argument("--rate", type=float, default=2.0, help="paced: records/s per camera")
    p.add_argument("--seconds", type=float, default=30.0, help="paced: how long each camera sends")
    p.add_argument("--replicas", type=int, default=1, help="paced: serve processes on --store")
    p.add_argument(
        "--store", metavar="URL", help="paced: postgresql://... or 'temp' (a throwaway server)"
    )
    p.add_argument(
        "--baseline-sqlite", action="store_true", help="paced: also 1 replica on SQLite, same run"
    )
    p.add_argument("--json", type=Path, metavar="OUT")
    p.set_defaults(handler=cmd_bench_load)


def cmd_bench_load(args: argparse.Namespace) -> int:
    import socket

    if args.cameras is not None:  # paced, replicas (vau.cloud.bench_replicas)
        from vau.cloud.bench_replicas import cmd_paced

        emit_report(cmd_paced(args), args.json)
        return 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with tempfile.TemporaryDirectory() as tmp:
        proc = serve(Path(tmp), port)
        try:
            wait_listening(port, proc)
            report = asyncio.run(run_load(f"127.0.0.1:{port}", proc.pid, args.streams,
                                          args.records, args.in_flight, args.kept))  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(30)
    emit_report(report, args.json)
    return 0


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("vau-cloud serve exited before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"vau-cloud serve did not listen on {port} within {timeout}s")
