"""Durable dedup state and accepted records: SQLite (WAL, synchronous=FULL) at
`<data_dir>/ingest.sqlite3`.

Dedup is a high-water mark per (device, camera, epoch): the edge sends each camera's records in
seq order and resumes after the last ack, so a record with seq <= max_seq is a duplicate (counted,
acked, not stored again) and seqs skipped over are counted as gaps (evicted or expired at the
edge). One batch is one transaction; callers ack only after `commit` returns. `IngestStore` is
synchronous and single-threaded; `AsyncStore` runs it on one dedicated thread.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vau.cloud.records import AcceptedRecord
from vau.common.dirs import DataDirError, ensure_data_dir

DB_NAME = "ingest.sqlite3"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS dedup (
  device TEXT NOT NULL, camera TEXT NOT NULL, epoch INTEGER NOT NULL,
  max_seq INTEGER NOT NULL, accepted INTEGER NOT NULL, duplicates INTEGER NOT NULL,
  gaps INTEGER NOT NULL, updated_at REAL NOT NULL,
  PRIMARY KEY (device, camera, epoch)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_updated ON dedup (updated_at);
CREATE TABLE IF NOT EXISTS records (
  device TEXT NOT NULL, camera TEXT NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
  kind TEXT NOT NULL, capture_time REAL NOT NULL, received_at REAL NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (device, camera, epoch, seq));
CREATE INDEX IF NOT EXISTS records_received ON records (received_at);
"""
_UPSERT = """
INSERT INTO dedup VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device, camera, epoch) DO UPDATE SET max_seq = excluded.max_seq,
  accepted = excluded.accepted, duplicates = excluded.duplicates, gaps = excluded.gaps,
  updated_at = excluded.updated_at
"""

Key = tuple[str, str, int]  # (device, camera, epoch)


class StoreError(Exception):
    """The ingest database is missing or unreadable; the message says which file."""


@dataclass(frozen=True, slots=True)
class CommitResult:
    accepted: tuple[AcceptedRecord, ...]  # new records, in arrival order
    duplicates: int  # records at or below the high-water mark: acked, not stored
    seconds: float  # wall time of the transaction, fsync included


@dataclass(frozen=True, slots=True)
class StoredRecord:
    device: str
    camera: str
    epoch: int
    seq: int
    kind: str
    capture_time: float
    received_at: float
    body: bytes  # serialized vau.v1.Record (vau.cloud.codec.decode_record reads it)


@dataclass(slots=True)
class _Row:  # the working copy of one dedup row inside a transaction
    max_seq: int = 0
    accepted: int = 0
    duplicates: int = 0
    gaps: int = 0


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def check_data_dir(data_dir: Path) -> None:
    """Create the server's data folder if missing; StoreError saying what to change otherwise."""
    try:
        ensure_data_dir(data_dir, "--data-dir (data_dir)")
    except DataDirError as exc:
        raise StoreError(str(exc)) from None


class IngestStore:
    """Owns one SQLite connection; use it from one thread only."""

    def __init__(self, data_dir: Path, retention_s: float) -> None:
        check_data_dir(data_dir)
        self.path = data_dir / DB_NAME
        self.retention_s = retention_s
        self._conn = connect(self.path)
        self._conn.executescript(_SCHEMA)
        self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def commit(self, records: Sequence[AcceptedRecord], received_at: float) -> CommitResult:
        """Dedup and store `records` in ONE transaction; durable when this returns."""
        return self.commit_many([records], received_at)[0]

    def commit_many(
        self, batches: Sequence[Sequence[AcceptedRecord]], received_at: float
    ) -> list[CommitResult]:
        """Group commit: every batch (one per stream) in ONE transaction, one result each."""
        start = time.perf_counter()
        rows: dict[Key, _Row] = {}
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            split = [self._dedup(batch, rows) for batch in batches]
            self._write([r for fresh, _ in split for r in fresh], rows, received_at)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        seconds = time.perf_counter() - start
        return [CommitResult(tuple(fresh), dups, seconds) for fresh, dups in split]

    def _dedup(
        self, batch: Sequence[AcceptedRecord], rows: dict[Key, _Row]
    ) -> tuple[list[AcceptedRecord], int]:
        fresh: list[AcceptedRecord] = []
        duplicates = 0
        for r in batch:
            key = (r.device, r.camera, r.epoch)
            row = rows.get(key) or rows.setdefault(key, self._row(key))
            if r.seq <= row.max_seq:
                row.duplicates += 1
                duplicates += 1
                continue
            row.gaps += r.seq - row.max_seq - 1
            row.max_seq = r.seq
            row.accepted += 1
            fresh.append(r)
        return fresh, duplicates

    def _row(self, key: Key) -> _Row:
        sql = (
            "SELECT max_seq, accepted, duplicates, gaps FROM dedup "
            "WHERE device=? AND camera=? AND epoch=?"
        )
        found = self._conn.execute(sql, key).fetchone()
        return _Row(*found) if found else _Row()

    def _write(self, fresh: list[AcceptedRecord], rows: dict[Key, _Row], now: float) -> None:
        self._conn.executemany(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (r.device, r.camera, r.epoch, r.seq, r.kind, r.capture_time, now, r.raw)
                for r in fresh
            ],
        )
        self._conn.executemany(
            _UPSERT,
            [(*k, v.max_seq, v.accepted, v.duplicates, v.gaps, now) for k, v in rows.items()],
        )

    def resume_after(self, device: str, epoch: int, cameras: Sequence[str]) -> dict[str, int]:
        """Highest accepted seq per camera of (device, epoch): the listed ones (0 if new) and any
        other camera known for that epoch."""
        sql = "SELECT camera, max_seq FROM dedup WHERE device=? AND epoch=?"
        known = dict(self._conn.execute(sql, (device, epoch)).fetchall())
        return {c: 0 for c in cameras} | {str(c): int(s) for c, s in known.items()}

    def records(
        self, device: str, camera: str, epoch: int, after_seq: int = 0, limit: int = 1000
    ) -> list[StoredRecord]:
        """Accepted records of one (device, camera, epoch) in seq order, for later stages."""
        sql = (
            "SELECT * FROM records WHERE device=? AND camera=? AND epoch=? AND seq>? "
            "ORDER BY seq LIMIT ?"
        )
        rows = self._conn.execute(sql, (device, camera, epoch, after_seq, limit)).fetchall()
        return [StoredRecord(*row) for row in rows]

    def tail(
        self, after_rowid: int, kinds: Sequence[str], limit: int = 256
    ) -> list[tuple[int, StoredRecord]]:
        """Accepted records of the given kinds after `after_rowid`, in acceptance order."""
        return tail(self._conn, after_rowid, kinds, limit)

    def prune(self, now: float) -> tuple[int, int]:
        """Drop records and dedup rows untouched for the retention period; (records, rows)."""
        cutoff = now - self.retention_s
        with self._conn:
            n_rec = self._conn.execute("DELETE FROM records WHERE received_at < ?", (cutoff,))
            n_row = self._conn.execute("DELETE FROM dedup WHERE updated_at < ?", (cutoff,))
        return n_rec.rowcount, n_row.rowcount

    def stats(self) -> dict[str, Any]:
        return stats_of(self._conn)

    def close(self) -> None:
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()


def stats_of(conn: sqlite3.Connection) -> dict[str, Any]:
    """{"devices": {DEVICE: {CAMERA: {accepted, duplicates, max_seq, gaps}}}}, summed over epochs;
    max_seq is that of the highest epoch."""
    sql = (
        "SELECT device, camera, epoch, max_seq, accepted, duplicates, gaps FROM dedup "
        "ORDER BY device, camera, epoch"
    )
    devices: dict[str, dict[str, dict[str, int]]] = {}
    for device, camera, _epoch, max_seq, accepted, duplicates, gaps in conn.execute(sql):
        cam = devices.setdefault(device, {}).setdefault(
            camera, {"accepted": 0, "duplicates": 0, "max_seq": 0, "gaps": 0}
        )
        cam["accepted"] += accepted
        cam["duplicates"] += duplicates
        cam["gaps"] += gaps
        cam["max_seq"] = max_seq  # rows come in epoch order: the last one wins
    return {"devices": devices}


def tail(
    conn: sqlite3.Connection, after_rowid: int, kinds: Sequence[str], limit: int = 256
) -> list[tuple[int, StoredRecord]]:
    """(rowid, record) pairs of the given kinds with rowid > after_rowid, in rowid (= acceptance)
    order; works on any connection to ingest.sqlite3 (a WAL reader in another thread or process).
    The scan walks the rowid b-tree from after_rowid, so no extra index is needed."""
    marks = ",".join("?" * len(kinds))
    sql = (
        f"SELECT rowid, * FROM records WHERE rowid > ? AND kind IN ({marks}) ORDER BY rowid LIMIT ?"
    )
    rows = conn.execute(sql, (after_rowid, *kinds, limit)).fetchall()
    return [(int(row[0]), StoredRecord(*row[1:])) for row in rows]


def max_rowid(conn: sqlite3.Connection) -> int:
    """The newest record's rowid (0 when empty)."""
    found = conn.execute("SELECT max(rowid) FROM records").fetchone()
    return int(found[0] or 0)


def read_stats(data_dir: Path) -> dict[str, Any]:
    """Stats from another process while the server runs (WAL readers never block the writer)."""
    path = data_dir / DB_NAME
    if not path.is_file():
        raise StoreError(f"no {DB_NAME} in {data_dir}; pass the server's --data-dir")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        try:
            return stats_of(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
