"""`vau-cloud bench-load --cameras N --rate R`: N simulated cameras (one device each) sending R
records/s each for `seconds`, spread round-robin over `replicas` `vau-cloud serve` processes on
one store, open loop (each record leaves at its scheduled time, whatever the acks do).

Measured per run: records/s acked, ack latency p50/p99 (record written -> its cumulative ack),
send lag p99 (how far this generator fell behind its schedule: above a few ms, the machine, not
the cloud, limited the run), serve CPU seconds per 1,000 records summed over the replicas and,
when the bench started the database itself, the PostgreSQL server's too, and the machine's load
average (other work on a shared machine shows there). `--store temp` starts a
throwaway PostgreSQL (`vau.cloud.pg_temp`); `--baseline-sqlite` adds 1 replica on SQLite to the
same run. The explainer is off (ingest, the event projector and dedup are measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vau.cloud.bench_load import STREAM, frame_payload, proc_usage, serve, wait_listening
from vau.cloud.pg_temp import TempPostgres, free_port, tree_cpu_s
from vau.edge.uplink import codec

ACK_TIMEOUT_S = 60.0


async def paced_device(
    address: str, name: str, rate: float, seconds: float, body: bytes, phase: float
) -> tuple[list[float], list[float]]:
    """(ack latencies, send lags) in seconds of one camera sending `rate` records/s."""
    import grpc

    loop = asyncio.get_running_loop()
    n = max(1, round(rate * seconds))
    sent: dict[int, float] = {}
    latencies: list[float] = []
    lags: list[float] = []
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(STREAM)()
        await call.write(codec.serialize(codec.hello(name, ["cam-0"], 1, "bench")))
        await call.read()  # HelloAck

        async def acks() -> None:
            acked = 0
            while acked < n:
                msg = codec.parse_cloud(bytes(await call.read()))
                if isinstance(msg, codec.Acked):
                    now = loop.time()
                    for seq in range(acked + 1, msg.seq + 1):
                        latencies.append(now - sent.pop(seq))
                    acked = max(acked, msg.seq)

        reader = asyncio.create_task(acks())
        start = loop.time() + phase
        for seq in range(1, n + 1):
            due = start + (seq - 1) / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            sent[seq] = now = loop.time()
            lags.append(now - due)
            await call.write(codec.serialize(codec.record_message("cam-0", 1, seq, body)))
        await asyncio.wait_for(reader, ACK_TIMEOUT_S)
        await call.done_writing()
    return latencies, lags


async def run_paced(
    addresses: list[str], cameras: int, rate: float, seconds: float, kept: int, tag: str
) -> tuple[list[float], list[float], float]:
    body = frame_payload(kept, 1)
    rng = np.random.default_rng(0)
    jobs = [
        paced_device(addresses[i % len(addresses)], f"{tag}-{i}", rate, seconds, body,
                     float(rng.uniform(0, 1.0 / rate)))
        for i in range(cameras)
    ]  # fmt: skip
    t0 = time.perf_counter()
    results = await asyncio.gather(*jobs)
    wall = time.perf_counter() - t0
    lat = [x for r in results for x in r[0]]
    lag = [x for r in results for x in r[1]]
    return lat, lag, wall


@contextlib.contextmanager
def replicas_on(store: str | None, n: int, tmp: Path) -> Iterator[tuple[list[str], list[int]]]:
    """`n` serve processes on `store` (None: SQLite in a temp dir; only n = 1); their addresses
    and pids."""
    procs = []
    try:
        for i in range(n):
            port = free_port()
            procs.append((port, serve(tmp / f"replica-{i}", port, store, explain=False)))
        for port, proc in procs:
            wait_listening(port, proc)
        yield [f"127.0.0.1:{p}" for p, _ in procs], [proc.pid for _, proc in procs]
    finally:
        for _, proc in procs:
            proc.terminate()
        for _, proc in procs:
            proc.wait(30)


def one_run(
    backend: str, store: str | None, replicas: int, db_pid: int | None, args: Any
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, replicas_on(store, replicas, Path(tmp)) as (
        addresses, pids,
    ):  # fmt: skip
        asyncio.run(run_paced(addresses, 2, 10.0, 2.0, args.kept, "warm"))
        load0 = os.getloadavg()[0]
        cpu0 = sum(proc_usage(p)[0] for p in pids)
        db0 = tree_cpu_s(db_pid) if db_pid else 0.0
        lat, lag, wall = asyncio.run(
            run_paced(addresses, args.cameras, args.rate, args.seconds, args.kept, "cam")
        )
        cpu = sum(proc_usage(p)[0] for p in pids) - cpu0
        db = tree_cpu_s(db_pid) - db0 if db_pid else None
        load1 = os.getloadavg()[0]
    ms = np.array(lat) * 1000.0
    total = len(lat)
    return {
        "backend": backend, "replicas": replicas, "cameras": args.cameras,
        "rate_per_camera": args.rate, "seconds": args.seconds, "tokens_per_record": args.kept,
        "records": total, "records_per_s": total / wall,
        "ack_latency_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                           "max": float(ms.max())},
        "send_lag_ms_p99": float(np.percentile(np.array(lag) * 1000.0, 99)),
        "serve_cpu_s_per_1000_records": cpu / total * 1000.0,
        "db_cpu_s_per_1000_records": None if db is None else db / total * 1000.0,
        "wall_s": wall, "load_avg_1m": {"start": load0, "end": load1, "cpus": os.cpu_count()},
    }  # fmt: skip


def cmd_paced(args: Any) -> dict[str, Any]:
    """The runs asked for: `--baseline-sqlite` first, then `--replicas` on `--store`."""
    runs = []
    if args.baseline_sqlite:
        runs.append(one_run("sqlite", None, 1, None, args))
    if args.store == "temp":
        with TempPostgres() as pg:
            runs.append(one_run("postgresql", pg.url(), args.replicas, pg.pid, args))
    elif args.store:
        runs.append(one_run("postgresql", args.store, args.replicas, None, args))
    elif args.replicas == 1:
        runs.append(one_run("sqlite", None, 1, None, args))
    else:
        raise SystemExit(
            "bench-load: --replicas above 1 needs a shared store: --store temp (a throwaway "
            "PostgreSQL) or --store postgresql://USER@HOST:PORT/DB"
        )
    return runs[0] if len(runs) == 1 else {"runs": runs}
