"""The durable alert outbox: SQLite at `<data_dir>/alerts.sqlite3` (WAL, synchronous=FULL).

Every alert is written here before anything is sent and deleted only when its PUBACK arrives, so
alerts written while the broker is down (or the cloud restarts) are sent when it is back. Bounded:
beyond max_records or max_bytes the oldest rows are evicted and counted. Also holds named cursors
(the alert service's position in the ingest store). Thread-safe: one connection behind a lock
(paho acks on its network thread, the service writes from the event loop's worker threads).
One of the two `vau.cloud.storage.alert_outbox.AlertOutbox` implementations (the one process of a
SQLite store); with PostgreSQL the replicas share `vau_alert_outbox` instead.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from vau.cloud.storage.alert_outbox import Pending

DB_NAME = "alerts.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
  retain INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, pos INTEGER NOT NULL) WITHOUT ROWID;
"""


class Outbox:
    def __init__(self, data_dir: Path, max_records: int, max_bytes: int) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_NAME
        self.max_records, self.max_bytes = max_records, max_bytes
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=30.0, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        row = self._conn.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox")
        self._count, self._bytes = (int(v) for v in row.fetchone())

    @property
    def depth(self) -> int:
        return self._count

    def put(
        self, topic: str, payload: bytes, retain: bool, cursor: tuple[str, int] | None = None
    ) -> tuple[int, int]:
        """Append durably; (row id, rows evicted to stay within bounds); `cursor` moves in the
        same transaction (`AlertOutbox.put`)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self._conn.execute(
                    "INSERT INTO outbox (topic, payload, retain, created) VALUES (?, ?, ?, ?)",
                    (topic, payload, int(retain), time.time()),
                )
                self._count += 1
                self._bytes += len(payload)
                evicted = self._evict()
                if cursor is not None:
                    self._write_cursor(*cursor)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                self._recount()
                raise
            return int(cur.lastrowid or 0), evicted

    def _evict(self) -> int:
        evicted = 0
        while self._count > self.max_records or (self._bytes > self.max_bytes and self._count > 1):
            row = self._conn.execute(
                "SELECT id, length(payload) FROM outbox ORDER BY id LIMIT 1"
            ).fetchone()
            self._conn.execute("DELETE FROM outbox WHERE id = ?", (row[0],))
            self._count -= 1
            self._bytes -= int(row[1])
            evicted += 1
        return evicted

    def _recount(self) -> None:
        row = self._conn.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox")
        self._count, self._bytes = (int(v) for v in row.fetchone())

    def ack(self, row_id: int) -> bool:
        """Release an acknowledged alert; False if it was already gone (evicted)."""
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM outbox WHERE id = ? RETURNING length(payload)", (row_id,)
            )
            found = cur.fetchone()
            if found is None:
                return False
            self._count -= 1
            self._bytes -= int(found[0])
            return True

    def pending(self, after_id: int, limit: int) -> list[Pending]:
        """Unacked alerts with id > after_id, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, topic, payload, retain FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [Pending(int(i), str(t), bytes(p), bool(r)) for i, t, p, r in rows]

    def cursor(self, name: str) -> int | None:
        with self._lock:
            row = self._conn.execute("SELECT pos FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def set_cursor(self, name: str, pos: int) -> None:
        with self._lock:
            self._write_cursor(name, pos)

    def _write_cursor(self, name: str, pos: int) -> None:
        self._conn.execute(
            "INSERT INTO cursors VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET pos = ?",
            (name, pos, pos),
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
