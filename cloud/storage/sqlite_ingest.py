"""The SQLite ingest log: `<folder>/ingest.sqlite3` (WAL, synchronous=FULL).

`SqliteIngestLog(folder, retention_s)` is the writer (it creates the schema); with
`read_only=True` it is a WAL reader for another thread or process, connected on first use (an
absent file reads as an empty log). Each owns one connection: use it from one thread only.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from vau.cloud.records import AcceptedRecord
from vau.cloud.storage.dedup import DedupRow, Key, split_fresh
from vau.cloud.storage.ingest_log import CommitResult, LogEntry, StoredRecord, StoreError
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


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def connect_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)


def check_data_dir(data_dir: Path) -> None:
    """Create the store's folder if missing; StoreError saying what to change otherwise."""
    try:
        ensure_data_dir(data_dir, "--data-dir (data_dir)")
    except DataDirError as exc:
        raise StoreError(str(exc)) from None


class SqliteIngestLog:
    """Owns one SQLite connection; use it from one thread only."""

    def __init__(self, folder: Path, retention_s: float, *, read_only: bool = False) -> None:
        self.path = folder / DB_NAME
        self.retention_s = retention_s
        self.read_only = read_only
        self._conn: sqlite3.Connection | None = None
        if not read_only:
            check_data_dir(folder)
            self._conn = connect(self.path)
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _db(self) -> sqlite3.Connection | None:
        """The connection; a reader connects once the file exists (None before)."""
        if self._conn is None and self.path.is_file():
            self._conn = connect_read_only(self.path)
        return self._conn

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None or self.read_only:
            raise StoreError(f"{self.path} is open read-only here")
        return self._conn

    def commit(self, records: Sequence[AcceptedRecord], received_at: float) -> CommitResult:
        return self.commit_many([records], received_at)[0]

    def commit_many(
        self, batches: Sequence[Sequence[AcceptedRecord]], received_at: float
    ) -> list[CommitResult]:
        start = time.perf_counter()
        rows: dict[Key, DedupRow] = {}
        conn = self._writer()
        conn.execute("BEGIN IMMEDIATE")
        try:
            split = [split_fresh(b, rows, partial(_row, conn)) for b in batches]
            self._write(conn, [r for fresh, _ in split for r in fresh], rows, received_at)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        seconds = time.perf_counter() - start
        return [CommitResult(tuple(fresh), dups, seconds) for fresh, dups in split]

    @staticmethod
    def _write(
        conn: sqlite3.Connection, fresh: list[AcceptedRecord], rows: dict[Key, DedupRow], now: float
    ) -> None:
        conn.executemany(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (r.device, r.camera, r.epoch, r.seq, r.kind, r.capture_time, now, r.raw)
                for r in fresh
            ],
        )
        conn.executemany(
            _UPSERT,
            [(*k, v.max_seq, v.accepted, v.duplicates, v.gaps, now) for k, v in rows.items()],
        )

    def resume_after(self, device: str, epoch: int, cameras: Sequence[str]) -> dict[str, int]:
        db = self._db()
        sql = "SELECT camera, max_seq FROM dedup WHERE device=? AND epoch=?"
        known = dict(db.execute(sql, (device, epoch)).fetchall()) if db else {}
        return {c: 0 for c in cameras} | {str(c): int(s) for c, s in known.items()}

    def records(
        self, device: str, camera: str, epoch: int, after_seq: int = 0, limit: int = 1000
    ) -> list[StoredRecord]:
        db = self._db()
        if db is None:
            return []
        sql = (
            "SELECT * FROM records WHERE device=? AND camera=? AND epoch=? AND seq>? "
            "ORDER BY seq LIMIT ?"
        )
        rows = db.execute(sql, (device, camera, epoch, after_seq, limit)).fetchall()
        return [StoredRecord(*row) for row in rows]

    def tail(self, after: int, kinds: Sequence[str], limit: int = 256) -> list[LogEntry]:
        """The scan walks the rowid b-tree from `after`, so no extra index is needed."""
        db = self._db()
        if db is None or not kinds:
            return []
        marks = ",".join("?" * len(kinds))
        sql = (
            f"SELECT rowid, * FROM records WHERE rowid > ? AND kind IN ({marks}) "
            "ORDER BY rowid LIMIT ?"
        )
        rows = db.execute(sql, (after, *kinds, limit)).fetchall()
        return [LogEntry(int(row[0]), StoredRecord(*row[1:])) for row in rows]

    def last_position(self) -> int:
        db = self._db()
        found = db.execute("SELECT max(rowid) FROM records").fetchone() if db else None
        return int(found[0] or 0) if found else 0

    def newest(
        self,
        device: str,
        camera: str,
        epoch: int,
        kind: str,
        limit: int,
        before_seq: int | None = None,
    ) -> list[LogEntry]:
        db = self._db()
        if db is None:
            return []
        bound, args = ("", ()) if before_seq is None else (" AND seq<?", (before_seq,))
        sql = (
            "SELECT rowid, * FROM records WHERE device=? AND camera=? AND epoch=?"
            f"{bound} AND kind=? ORDER BY seq DESC LIMIT ?"
        )
        rows = db.execute(sql, (device, camera, epoch, *args, kind, limit)).fetchall()
        return [LogEntry(int(row[0]), StoredRecord(*row[1:])) for row in rows]

    def prune(self, now: float) -> tuple[int, int]:
        cutoff = now - self.retention_s
        conn = self._writer()
        conn.execute("BEGIN IMMEDIATE")  # autocommit connection: `with conn` would not begin one
        try:
            n_rec = conn.execute("DELETE FROM records WHERE received_at < ?", (cutoff,)).rowcount
            n_row = conn.execute("DELETE FROM dedup WHERE updated_at < ?", (cutoff,)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return n_rec, n_row

    def stats(self) -> dict[str, Any]:
        db = self._db()
        return stats_of(db) if db is not None else {"devices": {}}

    def close(self) -> None:
        if self._conn is None:
            return
        if not self.read_only:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
        self._conn = None


def _row(conn: sqlite3.Connection, key: Key) -> DedupRow:
    sql = (
        "SELECT max_seq, accepted, duplicates, gaps FROM dedup "
        "WHERE device=? AND camera=? AND epoch=?"
    )
    found = conn.execute(sql, key).fetchone()
    return DedupRow(*found) if found else DedupRow()


def stats_of(conn: sqlite3.Connection) -> dict[str, Any]:
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


def read_stats(folder: Path, flag: str = "--data-dir") -> dict[str, Any]:
    """Stats from another process while the server runs (WAL readers never block the writer)."""
    path = folder / DB_NAME
    if not path.is_file():
        raise StoreError(f"no {DB_NAME} in {folder}; pass the server's {flag}")
    try:
        conn = connect_read_only(path)
        try:
            return stats_of(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
