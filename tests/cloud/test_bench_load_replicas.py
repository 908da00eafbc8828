"""`vau-cloud bench-load --cameras N --replicas 2 --store URL --baseline-sqlite` with tiny numbers
on a real PostgreSQL (support.postgres): both runs report, every paced record is acked and stored
once across the two replicas. Correctness only: no timing is asserted here (docs/storage.md has
the measured table)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.postgres import PostgresServer, start_postgres

CLI = [sys.executable, "-m", "vau.cloud.cli"]


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    yield from start_postgres()


def test_bench_load_when_two_replicas_and_a_sqlite_baseline_then_both_runs_store_each_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    out = tmp_path / "bench.json"
    args = ["--cameras", "4", "--rate", "5", "--seconds", "1", "--kept", "16"]
    done = subprocess.run(
        [*CLI, "bench-load", *args, "--replicas", "2", "--store", url, "--baseline-sqlite",
         "--json", str(out)], capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    assert [(r["backend"], r["replicas"]) for r in runs] == [("sqlite", 1), ("postgresql", 2)]
    for run in runs:
        assert run["records"] == 4 * 5
        assert set(run["ack_latency_ms"]) == {"p50", "p99", "max"}
        assert run["serve_cpu_s_per_1000_records"] >= 0
    stats = subprocess.run(
        [*CLI, "stats", "--store", url, "--json"], capture_output=True, text=True, check=True
    )
    devices = json.loads(stats.stdout)["devices"]
    for i in range(4):
        assert devices[f"cam-{i}"]["cam-0"] == {
            "accepted": 5, "duplicates": 0, "max_seq": 5, "gaps": 0
        }  # fmt: skip


def test_bench_load_when_two_replicas_without_a_shared_store_then_a_clear_error() -> None:
    done = subprocess.run(
        [*CLI, "bench-load", "--cameras", "2", "--replicas", "2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "needs a shared store" in done.stderr
    assert "Traceback" not in done.stderr
