"""Ingest retention in `vau-cloud serve`: records and dedup rows older than `dedup_retention_days`
are deleted on a schedule (`dedup_retention_check_s`), explainer off, counted and logged, and
exactly-once holds across it: a record younger than the window is still a duplicate, one whose row
is gone is refused as too old, and a row is kept `limits.max_clock_skew_s` longer for a capture
time that was ahead of the cloud's clock. On PostgreSQL only the replica holding the `retention`
role prunes (support.postgres: a real server; real servers on loopback, the real protocol)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from support.cloud_harness import ServerThread, cloud_settings, frame, open_session
from support.postgres import PostgresServer, start_postgres

from vau.cloud.records import AcceptedRecord, ScoreSummary
from vau.cloud.storage.factory import open_storage

DAY = 86_400.0
RETENTION = {"dedup_retention_days": 8, "dedup_retention_check_s": 0.2}
PRUNED = "vau_cloud_ingest_pruned_total"
RUNS = "vau_cloud_ingest_retention_runs_total"


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    yield from start_postgres()


def _rec(camera: str, seq: int, capture_time: float) -> AcceptedRecord:
    body = ScoreSummary(0.0, 1.0, 2, 0.1, 0.2, 0.3)
    raw = frame(camera, seq, capture_time=capture_time).record.SerializeToString()
    return AcceptedRecord("dev-a", camera, 1, seq, capture_time, 1.0, "summary", body, raw)


def _seed(url: str, camera: str, received_at: float, capture_time: float | None = None) -> None:
    """Seqs 1-3 of `camera`, accepted at `received_at` (in the past: before the server ran)."""
    log = open_storage(url, Path("unused"), 30 * DAY).ingest_log()
    try:
        at = received_at if capture_time is None else capture_time
        log.commit([_rec(camera, seq, at) for seq in (1, 2, 3)], received_at)
    finally:
        log.close()


def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_serve_prunes_the_ingest_log_on_a_schedule_and_exactly_once_holds_across_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vau.cloud.ingest_retention")
    url, now = f"sqlite://{(tmp_path / 'store').resolve()}", time.time()
    # given, in the store of a cloud kept 8 days: a camera last heard 9 days ago, one heard
    # 7 days ago, and one heard 8 days and 200 s ago whose capture times were 250 s ahead of
    # the cloud's clock (within limits.max_clock_skew_s, 300 s)
    _seed(url, "cam-old", now - 9 * DAY)
    _seed(url, "cam-young", now - 7 * DAY)
    skewed = now - 8 * DAY - 200
    _seed(url, "cam-skew", skewed, capture_time=skewed + 250)
    # when `serve` runs (explainer off) with a retention check every 0.2 s
    server = ServerThread(cloud_settings(tmp_path / "data", store={"url": url}, **RETENTION))
    try:
        _until(lambda: server.metric(RUNS) >= 2)  # at start, and again on the schedule
        # then only the old camera's records and dedup row went, counted and logged
        assert server.metric(PRUNED, {"table": "records"}) == 3
        assert server.metric(PRUNED, {"table": "dedup"}) == 1
        assert "ingest retention (8 days): pruned 3 records, 1 dedup rows" in caplog.text
        assert set(server.stats()["devices"]["dev-a"]) == {"cam-young", "cam-skew"}
        with grpc.insecure_channel(server.target) as channel:
            stream, ack = open_session(channel, "dev-a", ["cam-young", "cam-skew", "cam-old"])
            assert dict(ack.resume_after) == {"cam-young": 3, "cam-skew": 3, "cam-old": 0}
            # a replay younger than the window is a duplicate: acked, not stored again
            stream.send(frame("cam-young", 2, capture_time=now - 7 * DAY))
            stream.send(frame("cam-skew", 3, capture_time=skewed + 250))
            stream.acks_until("cam-young", 2)
            stream.acks_until("cam-skew", 3)
            # a replay of the pruned camera's seq is refused as older than the retention
            stream.send(frame("cam-old", 1, capture_time=now - 9 * DAY))
            error, _ = stream.until_error()
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert stream.trailing()["vau-reject-reason"] == "time"
        devices = server.stats()["devices"]["dev-a"]
        assert devices["cam-young"] == {"accepted": 3, "duplicates": 1, "max_seq": 3, "gaps": 0}
        assert devices["cam-skew"] == {"accepted": 3, "duplicates": 1, "max_seq": 3, "gaps": 0}
        assert "cam-old" not in devices
    finally:
        server.stop()


def test_serve_on_postgresql_prunes_the_ingest_log_only_on_the_retention_role_holder(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url, now = postgres_server.create_database(), time.time()
    _seed(url, "cam-a", now - 9 * DAY)
    settings = {"store": {"url": url}, "replicas": {"lease_check_s": 0.2}, **RETENTION}
    # given two replicas on one PostgreSQL, the first holding every role
    first = ServerThread(cloud_settings(tmp_path / "a", **settings))
    second = ServerThread(cloud_settings(tmp_path / "b", **settings))
    try:
        # when the retention check comes round on both
        _until(lambda: first.metric(PRUNED, {"table": "records"}) == 3)
        time.sleep(0.6)  # three more checks of the second replica
        # then the holder pruned (on a schedule) and the other replica never ran a pass
        assert first.metric(RUNS) >= 2 and first.metric(PRUNED, {"table": "dedup"}) == 1
        assert second.metric(RUNS) == 0 and second.metric(PRUNED, {"table": "records"}) == 0
        # and when the holder stops, the other takes the role and prunes what has aged since
        first.stop()
        _seed(url, "cam-b", now - 9 * DAY)
        _until(lambda: second.metric(PRUNED, {"table": "records"}) == 3)
        assert second.metric("vau_cloud_lease_held", {"role": "retention"}) == 1
        assert second.metric(PRUNED, {"table": "dedup"}) == 1
        assert second.stats() == {"devices": {}}
    finally:
        first.stop()
        second.stop()
