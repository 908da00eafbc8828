"""The PostgreSQL ingest log: tables `vau_dedup` and `vau_records` in the database a
`postgresql://` store URL names (psycopg 3).

The same meaning as the SQLite log. One `commit_many` is one transaction: it takes a
transaction-level advisory lock (appends from every process on the database are serialized, as
SQLite's BEGIN IMMEDIATE serializes them), reads the dedup rows it touches `FOR UPDATE` (all in
one statement), inserts
the new records (`ON CONFLICT DO NOTHING`) and upserts the high-water marks. Positions come from an
identity column; because appends are serialized, they become visible in position order, so a reader
that resumes after its last position never skips a record committed later with a lower one.

Each instance owns one connection (autocommit outside its explicit transactions): use it from one
thread only. Durable when the commit returns (the server's `synchronous_commit`, on by default).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from vau.cloud.records import AcceptedRecord
from vau.cloud.storage.dedup import DedupRow, Key, split_fresh
from vau.cloud.storage.ingest_log import CommitResult, LogEntry, StoredRecord, StoreError

APPEND_LOCK = 0x7661750001  # pg_advisory_xact_lock key: one append at a time per database
SCHEMA_LOCK = 0x7661750000  # CREATE TABLE IF NOT EXISTS races between processes without it
SCHEMA_TRIES = 5  # a schema transaction chosen as a deadlock's victim is tried again
_APPLIED = "CREATE TABLE IF NOT EXISTS vau_schema (key TEXT PRIMARY KEY, at DOUBLE PRECISION)"
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS vau_dedup (
  device TEXT NOT NULL, camera TEXT NOT NULL, epoch BIGINT NOT NULL,
  max_seq BIGINT NOT NULL, accepted BIGINT NOT NULL, duplicates BIGINT NOT NULL,
  gaps BIGINT NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (device, camera, epoch))""",
    "CREATE INDEX IF NOT EXISTS vau_dedup_updated ON vau_dedup (updated_at)",
    """CREATE TABLE IF NOT EXISTS vau_records (
  pos BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
  device TEXT NOT NULL, camera TEXT NOT NULL, epoch BIGINT NOT NULL, seq BIGINT NOT NULL,
  kind TEXT NOT NULL, capture_time DOUBLE PRECISION NOT NULL,
  received_at DOUBLE PRECISION NOT NULL, body BYTEA NOT NULL,
  PRIMARY KEY (device, camera, epoch, seq))""",
    "CREATE INDEX IF NOT EXISTS vau_records_received ON vau_records (received_at)",
    "CREATE INDEX IF NOT EXISTS vau_records_kind_pos ON vau_records (kind, pos)",
    # token payloads are noise to pglz: store them out of line without trying to compress
    "ALTER TABLE vau_records ALTER COLUMN body SET STORAGE EXTERNAL",
)
_COLUMNS = "device, camera, epoch, seq, kind, capture_time, received_at, body"
_INSERT = (
    f"INSERT INTO vau_records ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT DO NOTHING"
)
_UPSERT = """
INSERT INTO vau_dedup VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (device, camera, epoch) DO UPDATE SET max_seq = excluded.max_seq,
  accepted = excluded.accepted, duplicates = excluded.duplicates, gaps = excluded.gaps,
  updated_at = excluded.updated_at
"""
_ROWS = """
SELECT d.device, d.camera, d.epoch, d.max_seq, d.accepted, d.duplicates, d.gaps FROM vau_dedup d
JOIN unnest(%s::text[], %s::text[], %s::bigint[]) AS k(device, camera, epoch)
  ON d.device = k.device AND d.camera = k.camera AND d.epoch = k.epoch
FOR UPDATE OF d
"""


def redact(url: str) -> str:
    """The URL without its password (for logs and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def store_error(url: str, exc: BaseException, doing: str) -> StoreError:
    """One line naming the store (redacted) and the fix."""
    reason = " ".join(str(exc).split())
    password = urlsplit(url).password
    if password:
        reason = reason.replace(password, "***")
    return StoreError(
        f"store {redact(url)}: cannot {doing}: {reason}; start the PostgreSQL server or fix "
        "--store / store.url (VAU_CLOUD__STORE__URL)"
    )


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection; StoreError (one line, no password) if it cannot be made."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise store_error(url, exc, "connect") from None


def create_schema(conn: psycopg.Connection[Any], statements: Sequence[str]) -> None:
    """Apply `statements` (idempotent DDL) once per database: a replica starting beside running
    ones finds their hash in `vau_schema` and takes no lock on a table in use (`CREATE INDEX IF
    NOT EXISTS` takes one even when the index exists, and deadlocked with a running replica's
    append). DDL that does run is retried when PostgreSQL picks it as a deadlock's victim."""
    key = hashlib.sha256("\n".join(statements).encode()).hexdigest()
    for attempt in range(1, SCHEMA_TRIES + 1):
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                conn.execute(_APPLIED)
                if conn.execute("SELECT 1 FROM vau_schema WHERE key = %s", (key,)).fetchone():
                    return
                for sql in statements:
                    conn.execute(sql.encode())
                conn.execute("INSERT INTO vau_schema VALUES (%s, %s)", (key, time.time()))
            return
        except psycopg.errors.DeadlockDetected:
            if attempt == SCHEMA_TRIES:
                raise
            time.sleep(0.2 * attempt)


def ensure_schema(url: str) -> None:
    """Create the ingest log's tables if missing (the factory calls it once at start)."""
    conn = connect(url)
    try:
        create_schema(conn, _SCHEMA)
    except psycopg.Error as exc:
        raise store_error(url, exc, "create the ingest tables") from None
    finally:
        conn.close()


class PgIngestLog:
    """Owns one PostgreSQL connection; use it from one thread only."""

    def __init__(self, url: str, retention_s: float, *, read_only: bool = False) -> None:
        self.url, self.retention_s, self.read_only = url, retention_s, read_only
        self._conn = connect(url)

    def _writer(self) -> psycopg.Connection[Any]:
        if self.read_only:
            raise StoreError(f"{redact(self.url)} is open read-only here")
        return self._conn

    def commit(self, records: Sequence[AcceptedRecord], received_at: float) -> CommitResult:
        return self.commit_many([records], received_at)[0]

    def commit_many(
        self, batches: Sequence[Sequence[AcceptedRecord]], received_at: float
    ) -> list[CommitResult]:
        start = time.perf_counter()
        rows: dict[Key, DedupRow] = {}
        conn = self._writer()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
            found = _rows(cur, {(r.device, r.camera, r.epoch) for b in batches for r in b})
            split = [split_fresh(b, rows, partial(_loaded, found)) for b in batches]
            fresh = [r for batch_fresh, _ in split for r in batch_fresh]
            if fresh:
                values = [
                    (r.device, r.camera, r.epoch, r.seq, r.kind, r.capture_time, received_at, r.raw)
                    for r in fresh
                ]
                cur.executemany(_INSERT, values)
            if rows:
                cur.executemany(
                    _UPSERT,
                    [
                        (*k, v.max_seq, v.accepted, v.duplicates, v.gaps, received_at)
                        for k, v in rows.items()
                    ],
                )
        seconds = time.perf_counter() - start
        return [CommitResult(tuple(f), dups, seconds) for f, dups in split]

    def resume_after(self, device: str, epoch: int, cameras: Sequence[str]) -> dict[str, int]:
        sql = "SELECT camera, max_seq FROM vau_dedup WHERE device=%s AND epoch=%s"
        known = self._conn.execute(sql, (device, epoch)).fetchall()
        return {c: 0 for c in cameras} | {str(c): int(s) for c, s in known}

    def records(
        self, device: str, camera: str, epoch: int, after_seq: int = 0, limit: int = 1000
    ) -> list[StoredRecord]:
        sql = (
            f"SELECT {_COLUMNS} FROM vau_records WHERE device=%s AND camera=%s AND epoch=%s "
            "AND seq>%s ORDER BY seq LIMIT %s"
        )
        rows = self._conn.execute(sql, (device, camera, epoch, after_seq, limit)).fetchall()
        return [_stored(row) for row in rows]

    def tail(self, after: int, kinds: Sequence[str], limit: int = 256) -> list[LogEntry]:
        if not kinds:
            return []
        sql = (
            f"SELECT pos, {_COLUMNS} FROM vau_records WHERE pos > %s AND kind = ANY(%s) "
            "ORDER BY pos LIMIT %s"
        )
        rows = self._conn.execute(sql, (after, list(kinds), limit)).fetchall()
        return [LogEntry(int(row[0]), _stored(row[1:])) for row in rows]

    def last_position(self) -> int:
        found = self._conn.execute("SELECT max(pos) FROM vau_records").fetchone()
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
        bound, args = ("", ()) if before_seq is None else (" AND seq<%s", (before_seq,))
        sql = (
            f"SELECT pos, {_COLUMNS} FROM vau_records WHERE device=%s AND camera=%s AND epoch=%s"
            f"{bound} AND kind=%s ORDER BY seq DESC LIMIT %s"
        )
        rows = self._conn.execute(sql, (device, camera, epoch, *args, kind, limit)).fetchall()
        return [LogEntry(int(row[0]), _stored(row[1:])) for row in rows]

    def prune(self, now: float) -> tuple[int, int]:
        cutoff = now - self.retention_s
        conn = self._writer()
        with conn.transaction():
            n_rec = conn.execute("DELETE FROM vau_records WHERE received_at < %s", (cutoff,))
            n_row = conn.execute("DELETE FROM vau_dedup WHERE updated_at < %s", (cutoff,))
        return n_rec.rowcount, n_row.rowcount

    def stats(self) -> dict[str, Any]:
        return stats_of(self._conn)

    def close(self) -> None:
        self._conn.close()


def _stored(row: Sequence[Any]) -> StoredRecord:
    device, camera, epoch, seq, kind, capture_time, received_at, body = row
    return StoredRecord(
        device, camera, int(epoch), int(seq), kind, capture_time, received_at, bytes(body)
    )


def stats_of(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    sql = (
        "SELECT device, camera, epoch, max_seq, accepted, duplicates, gaps FROM vau_dedup "
        "ORDER BY device, camera, epoch"
    )
    devices: dict[str, dict[str, dict[str, int]]] = {}
    for device, camera, _epoch, max_seq, accepted, duplicates, gaps in conn.execute(sql):
        cam = devices.setdefault(device, {}).setdefault(
            camera, {"accepted": 0, "duplicates": 0, "max_seq": 0, "gaps": 0}
        )
        cam["accepted"] += int(accepted)
        cam["duplicates"] += int(duplicates)
        cam["gaps"] += int(gaps)
        cam["max_seq"] = int(max_seq)  # rows come in epoch order: the last one wins
    return {"devices": devices}


def read_stats(url: str) -> dict[str, Any]:
    """`vau-cloud stats --store postgresql://...` while servers run (MVCC: never blocks them)."""
    conn = connect(url)
    try:
        found = conn.execute("SELECT to_regclass('vau_dedup')").fetchone()
        if not found or found[0] is None:
            raise StoreError(f"no vau tables in {redact(url)}; pass the server's --store")
        return stats_of(conn)
    except psycopg.Error as exc:
        raise store_error(url, exc, "read the ingest counts") from None
    finally:
        conn.close()


def _rows(cur: psycopg.Cursor[Any], keys: set[Key]) -> dict[Key, DedupRow]:
    """The dedup rows of every key a commit touches, locked, in one round trip."""
    if not keys:
        return {}
    devices, cameras, epochs = (list(col) for col in zip(*keys, strict=True))
    cur.execute(_ROWS, (devices, cameras, epochs))
    return {(d, c, int(e)): DedupRow(*vals) for d, c, e, *vals in cur.fetchall()}


def _loaded(found: dict[Key, DedupRow], key: Key) -> DedupRow:
    return found.get(key) or DedupRow()
