"""`vau-cloud serve --store postgresql://...` end to end: real server processes on a real
PostgreSQL (support.postgres), records over the real Uplink protocol, `vau-cloud stats --store
... --json` reading them back. Two serve processes share the database: a device that moves from
one to the other resumes after the first one's high-water mark, and nothing is stored twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from support.cloud_harness import open_session, send_frames
from support.postgres import PostgresServer, start_postgres
from support.procs import CloudProcess, free_port

CLI = [sys.executable, "-m", "vau.cloud.cli"]


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    yield from start_postgres()


def test_serve_on_postgresql_when_two_processes_share_it_then_stats_show_each_record_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    first = CloudProcess(tmp_path / "a", store=url).start()
    second = CloudProcess(tmp_path / "b", store=url).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{first.port}") as ch:
            stream, ack = open_session(ch, "dev-pg", ["cam-0", "cam-1"])
            assert dict(ack.resume_after) == {"cam-0": 0, "cam-1": 0}
            send_frames(stream, "cam-0", range(1, 41))
            send_frames(stream, "cam-1", range(1, 11))
            stream.close()
        with grpc.insecure_channel(f"127.0.0.1:{second.port}") as ch:
            stream, ack = open_session(ch, "dev-pg", ["cam-0", "cam-1"])
            assert dict(ack.resume_after) == {"cam-0": 40, "cam-1": 10}  # the other's marks
            send_frames(stream, "cam-0", range(36, 81))  # 36..40 resent: acked, not stored
            stream.close()
        stats = second.stats()
        assert stats == first.stats()
        assert stats["devices"]["dev-pg"] == {
            "cam-0": {"accepted": 80, "duplicates": 5, "max_seq": 80, "gaps": 0},
            "cam-1": {"accepted": 10, "duplicates": 0, "max_seq": 10, "gaps": 0},
        }
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT camera, seq FROM vau_records WHERE device = 'dev-pg' ORDER BY pos"
            ).fetchall()
        assert len(rows) == len(set(rows)) == 90  # 0 stored twice
        assert [s for c, s in rows if c == "cam-0"] == list(range(1, 81))
    finally:
        assert first.stop() == 0 and second.stop() == 0
    logs = first.log.read_text() + second.log.read_text()
    assert "postgresql://vau@127.0.0.1" in logs and "Traceback" not in logs


def test_serve_on_postgresql_when_refused_then_exit_2_one_line_without_password(
    tmp_path: Path,
) -> None:
    url = f"postgresql://vau:pw-not-logged@127.0.0.1:{free_port()}/vau"  # nothing listens there
    env = {**os.environ, "VAU_CLOUD__EXPLAIN__ENABLED": "false"}
    serve = [*CLI, "serve", "--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path)]
    done = subprocess.run([*serve, "--store", url], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "start the PostgreSQL server" in lines[0], done.stderr
    assert "pw-not-logged" not in done.stderr and "Traceback" not in done.stderr
    stats = subprocess.run(
        [*CLI, "stats", "--store", url, "--json"], capture_output=True, text=True
    )
    assert stats.returncode == 2 and "pw-not-logged" not in stats.stderr
