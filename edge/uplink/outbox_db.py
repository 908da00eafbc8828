"""The outbox's SQLite layer: opening the file, and each statement the outbox runs.

Every function that changes something runs inside the caller's transaction (`BEGIN IMMEDIATE`), so a
change and the counters that count it commit together. One file holds one epoch:

    meta(key, value)              'epoch': chosen when the file is created, never changed
    cameras(camera, last_seq)     the last seq handed out per camera (seqs are never reused)
    counters(name, value)         lifetime totals: enqueued, acked, evicted, expired, ignored_acks,
                                  evicted:<kind>, expired:<kind>; and the current bytes, records
    records(id, camera, seq, kind, priority, capture_time, size, body)
                                  id is the insertion order: "oldest" for eviction

Needs SQLite >= 3.24 (UPSERT); no RETURNING or STRICT tables, so older edge distributions work.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from vau.edge.uplink.records import OutboxItem

FILENAME = "outbox.sqlite3"
BUSY_TIMEOUT_S = 10.0
QUICK_CHECK_MAX_BYTES = 32 * 2**20  # larger files skip the check on open (it reads every page)
_DELETE_CHUNK = 500  # ids per DELETE ... IN (...), below SQLite's bound-parameter limit

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cameras (camera TEXT PRIMARY KEY, last_seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS records (
        id INTEGER PRIMARY KEY, camera TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
        priority INTEGER NOT NULL, capture_time REAL NOT NULL, size INTEGER NOT NULL,
        body BLOB NOT NULL)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS records_camera_seq ON records (camera, seq)",
    "CREATE INDEX IF NOT EXISTS records_priority ON records (priority)",  # (priority, id)
    "CREATE INDEX IF NOT EXISTS records_capture_time ON records (capture_time)",
)


class OutboxError(Exception):
    """The outbox file cannot be used; the message names the file and what to do."""


@dataclass(frozen=True, slots=True)
class Removed:
    """Records one statement removed, aggregated by kind."""

    by_kind: dict[str, int] = field(default_factory=dict)
    bytes: int = 0

    @property
    def count(self) -> int:
        return sum(self.by_kind.values())

    def deltas(self, counter: str) -> dict[str, int]:
        """Counter changes for removing these records as `counter` ('evicted' or 'expired')."""
        out = {counter: self.count, "bytes": -self.bytes, "records": -self.count}
        out.update({f"{counter}:{kind}": n for kind, n in self.by_kind.items()})
        return out


def explain(path: Path, exc: sqlite3.Error) -> OutboxError:
    """An sqlite3 error as an OutboxError that says what to do."""
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return corrupt(path, str(exc))
    if name == "SQLITE_FULL":
        return OutboxError(f"outbox {path}: disk full ({exc}); free space on that disk")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return OutboxError(f"outbox {path} stayed locked by another process ({exc})")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return OutboxError(f"outbox {path} cannot be opened for writing ({exc}); check its folder")
    return OutboxError(f"outbox {path}: {exc} ({name or type(exc).__name__})")


def corrupt(path: Path, detail: str) -> OutboxError:
    return OutboxError(
        f"outbox {path} is corrupt ({detail}): stop the agent and move the file (with its -wal and "
        "-shm files) aside; records in it are lost, and a new outbox with a new epoch is created"
    )


def claim(data_dir: Path) -> int:
    """An exclusive lock on `<data_dir>/outbox.lock`, released by the kernel if the process dies."""
    fd = os.open(data_dir / "outbox.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutboxError(
            f"outbox in {data_dir} is in use by another edge agent (one per data_dir): stop it, "
            "or give this one another --data-dir"
        ) from None
    return fd


def new_epoch() -> int:
    """Creation time (32 bits of UNIX seconds) over 31 random bits: positive, fits in int64."""
    return max(1, ((int(time.time()) & 0xFFFFFFFF) << 31) | secrets.randbits(31))


def open_outbox(path: Path) -> tuple[sqlite3.Connection, int]:
    """Open (creating if needed) the outbox file; returns the connection and the file's epoch."""
    existed = path.exists()
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        _configure(db)
        if existed and path.stat().st_size <= QUICK_CHECK_MAX_BYTES:
            _quick_check(db, path)
        return db, _create(db)
    except sqlite3.Error as exc:
        db.close()
        raise explain(path, exc) from None
    except BaseException:
        db.close()
        raise


def _configure(db: sqlite3.Connection) -> None:
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    db.execute("PRAGMA journal_mode = WAL").fetchone()
    db.execute("PRAGMA synchronous = FULL")  # WAL fsynced at every commit: on disk when put returns
    db.execute("PRAGMA journal_size_limit = 67108864")  # truncate the WAL after a checkpoint


def _quick_check(db: sqlite3.Connection, path: Path) -> None:
    rows = [str(r[0]) for r in db.execute("PRAGMA quick_check")]
    if rows != ["ok"]:
        raise corrupt(path, "; ".join(rows[:3]).replace("\n", " "))


def _create(db: sqlite3.Connection) -> int:
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            db.execute(statement)
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", (new_epoch(),))
        epoch = int(db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0])
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return epoch


def counters(db: sqlite3.Connection) -> dict[str, int]:
    return {str(k): int(v) for k, v in db.execute("SELECT name, value FROM counters")}


def bump(db: sqlite3.Connection, deltas: Mapping[str, int]) -> None:
    db.executemany(
        "INSERT INTO counters (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        [(name, delta) for name, delta in deltas.items() if delta],
    )


def totals(db: sqlite3.Connection) -> tuple[int, int]:
    """(bytes, records) held now."""
    got = dict(db.execute("SELECT name, value FROM counters WHERE name IN ('bytes', 'records')"))
    return int(got.get("bytes", 0)), int(got.get("records", 0))


def next_seq(db: sqlite3.Connection, camera: str) -> int:
    db.execute(
        "INSERT INTO cameras (camera, last_seq) VALUES (?, 1) "
        "ON CONFLICT (camera) DO UPDATE SET last_seq = last_seq + 1",
        (camera,),
    )
    return last_seq(db, camera)


def last_seq(db: sqlite3.Connection, camera: str) -> int:
    row = db.execute("SELECT last_seq FROM cameras WHERE camera = ?", (camera,)).fetchone()
    return int(row[0]) if row else 0


def cameras(db: sqlite3.Connection) -> list[str]:
    return [str(r[0]) for r in db.execute("SELECT camera FROM cameras ORDER BY camera")]


def insert(db: sqlite3.Connection, item: OutboxItem, seq: int) -> None:
    db.execute(
        "INSERT INTO records (camera, seq, kind, priority, capture_time, size, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (item.camera, seq, item.kind, int(item.priority), item.capture_time, len(item.body),
         item.body),
    )  # fmt: skip


def evict(db: sqlite3.Connection, priority: int, need: int) -> Removed | None:
    """Free at least `need` bytes from records of priority <= `priority`, lowest priority and
    oldest first; None (nothing removed) when even all of them would not free enough."""
    ids: list[int] = []
    kinds: Counter[str] = Counter()
    freed = 0
    query = "SELECT id, kind, size FROM records WHERE priority <= ? ORDER BY priority, id"
    with closing(db.execute(query, (priority,))) as rows:
        for rid, kind, size in rows:
            ids.append(int(rid))
            kinds[str(kind)] += 1
            freed += int(size)
            if freed >= need:
                break
    if freed < need:
        return None
    for i in range(0, len(ids), _DELETE_CHUNK):
        chunk = ids[i : i + _DELETE_CHUNK]
        db.execute(f"DELETE FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk)
    return Removed(dict(kinds), freed)


def expire(db: sqlite3.Connection, cutoff: float) -> Removed:
    """Remove every record captured before `cutoff`."""
    rows = db.execute(
        "SELECT kind, COUNT(*), SUM(size) FROM records WHERE capture_time < ? GROUP BY kind",
        (cutoff,),
    ).fetchall()
    if not rows:
        return Removed()
    db.execute("DELETE FROM records WHERE capture_time < ?", (cutoff,))
    return Removed({str(k): int(n) for k, n, _ in rows}, sum(int(s) for _, _, s in rows))


def delete_one(db: sqlite3.Connection, camera: str, seq: int) -> Removed:
    """Remove one record (the cloud refused it); nothing when it is already gone."""
    row = db.execute("SELECT kind, size FROM records WHERE camera = ? AND seq = ?",
                     (camera, seq)).fetchone()  # fmt: skip
    if row is None:
        return Removed()
    db.execute("DELETE FROM records WHERE camera = ? AND seq = ?", (camera, seq))
    return Removed({str(row[0]): 1}, int(row[1]))


def delete_through(db: sqlite3.Connection, camera: str, seq: int) -> tuple[int, int]:
    """Remove the camera's records with seq <= `seq`; returns (records, bytes)."""
    n, size = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM records WHERE camera = ? AND seq <= ?",
        (camera, seq),
    ).fetchone()
    if n:
        db.execute("DELETE FROM records WHERE camera = ? AND seq <= ?", (camera, seq))
    return int(n), int(size)


PENDING_QUERY = (
    "SELECT seq, kind, priority, capture_time, body FROM records INDEXED BY records_camera_seq "
    "WHERE camera = ? AND seq > ? AND capture_time >= ? ORDER BY seq LIMIT ?"
)


def pending(
    db: sqlite3.Connection, camera: str, after_seq: int, cutoff: float, limit: int
) -> list[tuple[int, str, int, float, bytes]]:
    rows = db.execute(PENDING_QUERY, (camera, after_seq, cutoff, limit)).fetchall()
    return [(int(s), str(k), int(p), float(t), bytes(b)) for s, k, p, t, b in rows]
