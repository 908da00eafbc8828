"""The storage contract: the ingest log (append with dedup, per-camera high-water marks, tail by
kind after a cursor, retention) and the event repository (events, windows, explanations, cursors,
retention), run through the factory against every backend in BACKENDS: SQLite files, and a real
PostgreSQL server (support.postgres, started once per session; a fresh database per test)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from support.postgres import PostgresServer, free_port, start_postgres

from vau.cloud.records import AcceptedRecord, RecordKind, ScoreSummary
from vau.cloud.storage.event_repository import EventRepository, StoredEvent, StoredWindow
from vau.cloud.storage.factory import PgStorage, Storage, open_storage, sqlite_folder, store_stats
from vau.cloud.storage.ingest_log import IngestLog, StoreError
from vau.cloud.storage.pg_ingest import ensure_schema

RETENTION_S = 10.0


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield from start_postgres()


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite://{(tmp_path / 'store').resolve()}"


def _postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {  # name -> the store URL
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


@pytest.fixture(params=sorted(BACKENDS))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    url = BACKENDS[request.param](request, tmp_path)
    return open_storage(url, tmp_path / "unused-data-dir", RETENTION_S)


@pytest.fixture
def log(storage: Storage) -> Iterator[IngestLog]:
    handle = storage.ingest_log()
    yield handle
    handle.close()


@pytest.fixture
def repo(storage: Storage) -> Iterator[EventRepository]:
    handle = storage.event_repository()
    yield handle
    handle.close()


def _rec(
    seq: int, kind: RecordKind = "summary", camera: str = "cam-0", epoch: int = 1
) -> AcceptedRecord:
    body = ScoreSummary(0.0, 1.0, 2, 0.1, 0.2, 0.3)
    raw = f"{camera}/{epoch}/{seq}".encode()
    return AcceptedRecord("dev-a", camera, epoch, seq, time.time(), 1.0, kind, body, raw)


# ----- ingest log ----------------------------------------------------------------------------


def test_ingest_log_when_duplicates_and_gaps_then_deduped_counted_and_high_water_kept(
    log: IngestLog,
) -> None:
    first, second = log.commit_many(
        [[_rec(1), _rec(2), _rec(2)], [_rec(4), _rec(1, camera="cam-1")]], received_at=100.0
    )
    assert [r.seq for r in first.accepted] == [1, 2] and first.duplicates == 1
    assert [r.seq for r in second.accepted] == [4, 1] and second.duplicates == 0
    again = log.commit([_rec(3), _rec(4), _rec(5)], received_at=101.0)
    assert [r.seq for r in again.accepted] == [5] and again.duplicates == 2
    log.commit([_rec(1, epoch=2)], received_at=102.0)
    assert log.resume_after("dev-a", 1, ["cam-0", "cam-9"]) == {"cam-0": 5, "cam-1": 1, "cam-9": 0}
    assert log.resume_after("dev-a", 2, []) == {"cam-0": 1}
    assert [r.seq for r in log.records("dev-a", "cam-0", 1)] == [1, 2, 4, 5]
    assert [r.seq for r in log.records("dev-a", "cam-0", 1, after_seq=2, limit=1)] == [4]
    assert log.stats() == {
        "devices": {
            "dev-a": {
                "cam-0": {"accepted": 5, "duplicates": 3, "max_seq": 1, "gaps": 1},
                "cam-1": {"accepted": 1, "duplicates": 0, "max_seq": 1, "gaps": 0},
            }
        }
    }


def test_ingest_log_when_tailed_by_kind_then_acceptance_order_after_the_cursor(
    storage: Storage, log: IngestLog
) -> None:
    reader = storage.ingest_log(read_only=True)
    try:
        assert reader.tail(0, ("event",)) == [] and reader.last_position() == 0
        kinds: list[RecordKind] = ["event", "frame", "window", "event", "frame", "summary"]
        log.commit([_rec(i + 1, k) for i, k in enumerate(kinds)], received_at=100.0)
        log.commit([_rec(1, "event", camera="cam-1")], received_at=101.0)
        got = reader.tail(0, ("event", "window"))
        expected = [("cam-0", 1), ("cam-0", 3), ("cam-0", 4), ("cam-1", 1)]
        assert [(e.record.camera, e.record.seq) for e in got] == expected
        positions = [e.position for e in got]
        assert positions == sorted(positions) and len(set(positions)) == 4
        assert reader.last_position() >= positions[-1]
        after = reader.tail(positions[1], ("event",), limit=1)
        assert [(e.record.camera, e.record.seq) for e in after] == [("cam-0", 4)]
        rec = after[0].record
        assert (rec.kind, rec.received_at, rec.body) == ("event", 100.0, b"cam-0/1/4")
        assert reader.tail(positions[-1], ("event", "window")) == []
        frames = reader.newest("dev-a", "cam-0", 1, "frame", 10)
        assert [e.record.seq for e in frames] == [5, 2]
        assert [e.record.seq for e in reader.newest("dev-a", "cam-0", 1, "frame", 10, 5)] == [2]
    finally:
        reader.close()


def test_ingest_log_when_older_than_retention_then_pruned(log: IngestLog) -> None:
    log.commit([_rec(1)], received_at=1000.0)
    log.commit([_rec(1, camera="cam-1")], received_at=2000.0)
    assert log.prune(now=2000.0 + RETENTION_S / 2) == (1, 1)
    assert set(log.stats()["devices"]["dev-a"]) == {"cam-1"}
    assert [e.record.camera for e in log.tail(0, ("summary",))] == ["cam-1"]


def test_ingest_log_when_a_dedup_row_is_younger_than_retention_then_its_seqs_stay_duplicates(
    log: IngestLog,
) -> None:
    # given seqs 1-3 of a camera accepted at t=1000, and a duplicate of seq 3 at t=1008
    log.commit([_rec(1), _rec(2), _rec(3)], received_at=1000.0)
    assert log.commit([_rec(3)], received_at=1008.0).duplicates == 1
    # when retention runs past the records' age but within the row's (the duplicate touched it)
    assert log.prune(now=1000.0 + RETENTION_S + 1) == (3, 0)
    # then the high-water mark holds: a replay of every seq is a duplicate, the next seq is new
    assert log.resume_after("dev-a", 1, ["cam-0"]) == {"cam-0": 3}
    again = log.commit([_rec(1), _rec(2), _rec(3), _rec(4)], received_at=1010.0)
    assert again.duplicates == 3 and [r.seq for r in again.accepted] == [4]
    # and once the row is older than retention too, it goes (records and row in one pass)
    assert log.prune(now=1010.0 + RETENTION_S + 1) == (1, 1)
    assert log.stats() == {"devices": {}} and log.resume_after("dev-a", 1, []) == {}


# ----- event repository ----------------------------------------------------------------------


def _event(event_id: str, updated: float, state: str = "end") -> StoredEvent:
    end = None if state != "end" else 6.0
    return StoredEvent("d", "c", event_id, state, 2.0, end, 0.9, 4.0, "p", 1, updated)


def test_event_repository_when_events_and_windows_upserted_then_read_back(
    repo: EventRepository,
) -> None:
    repo.put_event(_event("e1", 100.0, "new"))
    repo.put_event(_event("e1", 200.0))  # the same event changes
    repo.put_event(StoredEvent("d2", "c", "e2", "new", 5.0, None, 0.6, 5.0, "p", 1, 150.0))
    assert repo.event(("d", "c", "e1")) == _event("e1", 200.0)
    assert repo.event(("d", "c", "nope")) is None
    assert [e.event_id for e in repo.events()] == ["e1", "e2"]  # newest change first
    assert [e.event_id for e in repo.events(device="d2")] == ["e2"]
    assert [e.event_id for e in repo.events(camera="c", limit=1)] == ["e1"]
    window = StoredWindow("d", "c", "e1", 2.0, 6.0, (20, 24, 28), 9, 200.0)
    repo.put_window(window)
    assert repo.window(("d", "c", "e1")) == window
    assert repo.window(("d2", "c", "e2")) is None


def test_event_repository_when_explained_then_pending_once_and_end_over_early(
    repo: EventRepository,
) -> None:
    key = ("d", "c", "e1")
    repo.put_event(_event("e1", 100.0))
    assert repo.mark_pending(key, "early", 100.0) and repo.mark_pending(key, "end", 101.0)
    assert not repo.mark_pending(key, "end", 102.0)
    assert sorted(repo.pending()) == [(key, "early"), (key, "end")]
    repo.put_explanation(key, "early", {"title": "early"}, 103.0)
    assert repo.explanation(key) == {"title": "early"}
    repo.put_explanation(key, "end", {"title": "end"}, 104.0)
    assert repo.explanation(key) == {"title": "end"} and repo.pending() == []
    assert not repo.mark_pending(key, "end", 105.0)  # done stays done


def test_event_repository_cursors_are_named_and_start_at_zero(repo: EventRepository) -> None:
    assert repo.cursor("projector") == 0
    repo.set_cursor("projector", 7)
    repo.set_cursor("explainer", 3)
    repo.set_cursor("projector", 9)
    assert (repo.cursor("projector"), repo.cursor("explainer")) == (9, 3)


def test_event_repository_retention_prunes_old_events_with_their_rows_and_orphans(
    repo: EventRepository,
) -> None:
    old, young = ("d", "c", "old"), ("d", "c", "young")
    repo.put_event(_event("old", 100.0))
    repo.put_event(_event("young", 1000.0))
    repo.put_window(StoredWindow(*old, 2.0, 6.0, (1,), 3, 100.0))
    repo.put_window(StoredWindow("d", "c", "orphan", 2.0, 6.0, (1,), 3, 100.0))
    repo.put_explanation(old, "end", {"title": "x"}, 100.0)
    repo.put_explanation(young, "end", {"title": "y"}, 1000.0)
    assert repo.prune(older_than_s=500.0, now=1100.0) == {
        "events": 1,
        "windows": 2,
        "explanations": 1,
    }
    assert repo.event(old) is None and repo.window(old) is None and repo.explanation(old) is None
    assert repo.explanation(young) == {"title": "y"}
    assert repo.prune(older_than_s=500.0, now=1100.0) == dict.fromkeys(
        ("events", "windows", "explanations"), 0
    )


# ----- the factory ---------------------------------------------------------------------------


def test_factory_when_url_unset_then_data_dir_and_sqlite_forms_name_a_folder(
    tmp_path: Path,
) -> None:
    assert sqlite_folder(None, tmp_path) == tmp_path
    assert sqlite_folder("rel/store", tmp_path) == Path("rel/store")
    assert sqlite_folder("sqlite:///abs/store", tmp_path) == Path("/abs/store")
    log = open_storage(None, tmp_path / "data", RETENTION_S).ingest_log()
    log.close()
    assert (tmp_path / "data" / "ingest.sqlite3").is_file()


@pytest.mark.parametrize("url", ["mysql://db", "sqlite://host/x"])
def test_factory_when_url_not_buildable_then_store_error_one_line(url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        open_storage(url, tmp_path, RETENTION_S)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_factory_when_postgresql_refused_then_one_line_without_the_password(
    scheme: str, tmp_path: Path
) -> None:
    url = f"{scheme}://vau:s3cret-pw@127.0.0.1:{free_port()}/vau"  # nothing listens there
    for attempt in (
        lambda: open_storage(url, tmp_path, RETENTION_S),
        lambda: store_stats(url, None),
    ):
        with pytest.raises(StoreError) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message and "s3cret-pw" not in message
        assert "vau:***@127.0.0.1" in message and "start the PostgreSQL server" in message


def test_factory_when_postgresql_url_then_pg_storage_and_stats_read_it(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    storage = open_storage(url, Path("unused"), RETENTION_S)
    assert isinstance(storage, PgStorage) and storage.description == url
    log = storage.ingest_log()
    try:
        log.commit([_rec(1), _rec(2)], received_at=100.0)
    finally:
        log.close()
    cam = store_stats(url, None)["devices"]["dev-a"]["cam-0"]
    assert cam == {"accepted": 2, "duplicates": 0, "max_seq": 2, "gaps": 0}


def test_postgresql_when_two_writers_race_on_one_camera_then_each_seq_stored_once(
    postgres_server: PostgresServer,
) -> None:
    # two processes' writers on one database: the high-water mark is read FOR UPDATE under the
    # append lock, so concurrent commits of overlapping seqs store each seq exactly once
    url = postgres_server.create_database()
    storage = open_storage(url, Path("unused"), RETENTION_S)
    accepted: list[int] = []

    def write(offset: int) -> None:
        log = storage.ingest_log()
        try:
            for start in range(1, 200, 10):
                batch = [_rec(s) for s in range(start + offset, start + offset + 10)]
                accepted.extend(r.seq for r in log.commit(batch, time.time()).accepted)
        finally:
            log.close()

    threads = [threading.Thread(target=write, args=(offset,)) for offset in (0, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(accepted) == sorted(set(accepted))
    reader = storage.ingest_log(read_only=True)
    try:
        stored = [e.record.seq for e in reader.tail(0, ("summary",), limit=1000)]
        positions = [e.position for e in reader.tail(0, ("summary",), limit=1000)]
        stats = reader.stats()["devices"]["dev-a"]["cam-0"]
    finally:
        reader.close()
    assert stored == sorted(stored) and len(stored) == len(accepted)
    assert positions == sorted(positions)
    assert stats["accepted"] == len(accepted) and stats["max_seq"] == max(accepted)


def test_postgresql_when_a_replica_starts_beside_a_writing_one_then_its_schema_waits_on_no_table(
    postgres_server: PostgresServer,
) -> None:
    # a CI run saw a second replica's start deadlock with the first's append ("cannot create the
    # ingest tables: deadlock detected"): its CREATE INDEX IF NOT EXISTS locked a table in use
    url = postgres_server.create_database()
    open_storage(url, Path("unused"), RETENTION_S).ingest_log().close()  # the first replica
    with psycopg.connect(url) as writer:  # a running append holds its table
        writer.execute("LOCK TABLE vau_records, vau_dedup IN ROW EXCLUSIVE MODE")
        started = threading.Thread(target=ensure_schema, args=(url,), daemon=True)
        started.start()
        started.join(10.0)
        blocked = started.is_alive()
        writer.rollback()
    started.join(10.0)
    assert not blocked, "the schema of a started database waited on a table in use"
