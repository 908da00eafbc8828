"""The SQLite event repository: `<folder>/events.sqlite3` (WAL).

Portable SQL (plain INSERT ... ON CONFLICT upserts, no SQLite-only types) so the PostgreSQL
implementation can follow it. Also holds the readers' cursors over the ingest log (`cursor` /
`set_cursor`) and which explanations are pending, so a restart neither loses nor repeats work.
Each instance owns one connection: use it from one thread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vau.cloud.storage.event_repository import EventKey, StoredEvent, StoredWindow

DB_NAME = "events.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  device TEXT NOT NULL, camera TEXT NOT NULL, event_id TEXT NOT NULL, state TEXT NOT NULL,
  start_t REAL NOT NULL, end_t REAL, peak REAL NOT NULL, peak_t REAL NOT NULL,
  prior TEXT NOT NULL, epoch INTEGER NOT NULL, updated REAL NOT NULL,
  PRIMARY KEY (device, camera, event_id));
CREATE INDEX IF NOT EXISTS events_updated ON events (updated);
CREATE TABLE IF NOT EXISTS windows (
  device TEXT NOT NULL, camera TEXT NOT NULL, event_id TEXT NOT NULL, start_t REAL NOT NULL,
  end_t REAL NOT NULL, frame_seqs TEXT NOT NULL, record_seq INTEGER NOT NULL,
  updated REAL NOT NULL, PRIMARY KEY (device, camera, event_id));
CREATE TABLE IF NOT EXISTS explanations (
  device TEXT NOT NULL, camera TEXT NOT NULL, event_id TEXT NOT NULL, trigger TEXT NOT NULL,
  status TEXT NOT NULL, body TEXT, updated REAL NOT NULL,
  PRIMARY KEY (device, camera, event_id, trigger));
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
"""
_EVENT_UPSERT = """
INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device, camera, event_id) DO UPDATE SET state = excluded.state,
  start_t = excluded.start_t, end_t = excluded.end_t, peak = excluded.peak,
  peak_t = excluded.peak_t, prior = excluded.prior, epoch = excluded.epoch,
  updated = excluded.updated
"""
_WINDOW_UPSERT = """
INSERT INTO windows VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device, camera, event_id) DO UPDATE SET start_t = excluded.start_t,
  end_t = excluded.end_t, frame_seqs = excluded.frame_seqs, record_seq = excluded.record_seq,
  updated = excluded.updated
"""
_EXPLAIN_UPSERT = """
INSERT INTO explanations VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device, camera, event_id, trigger) DO UPDATE SET status = excluded.status,
  body = excluded.body, updated = excluded.updated
"""

_PRUNED = ("events", "windows", "explanations")
_OLD_EVENTS = "SELECT device, camera, event_id FROM events WHERE updated < ?"
_ORPHANS = """
DELETE FROM {table} WHERE updated < ? AND NOT EXISTS (SELECT 1 FROM events e
  WHERE e.device = {table}.device AND e.camera = {table}.camera AND e.event_id = {table}.event_id)
"""


class SqliteEventRepository:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / DB_NAME
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def put_event(self, e: StoredEvent) -> None:
        row = (e.device, e.camera, e.event_id, e.state, e.start, e.end, e.peak, e.peak_t)
        self._conn.execute(_EVENT_UPSERT, (*row, e.prior, e.epoch, e.updated))

    def put_window(self, w: StoredWindow) -> None:
        seqs = json.dumps(list(w.frame_seqs))
        row = (w.device, w.camera, w.event_id, w.start, w.end, seqs, w.record_seq, w.updated)
        self._conn.execute(_WINDOW_UPSERT, row)

    def event(self, key: EventKey) -> StoredEvent | None:
        sql = "SELECT * FROM events WHERE device=? AND camera=? AND event_id=?"
        row = self._conn.execute(sql, key).fetchone()
        return StoredEvent(*row) if row else None

    def window(self, key: EventKey) -> StoredWindow | None:
        sql = "SELECT * FROM windows WHERE device=? AND camera=? AND event_id=?"
        row = self._conn.execute(sql, key).fetchone()
        if row is None:
            return None
        device, camera, event_id, start, end, seqs, record_seq, updated = row
        return StoredWindow(
            device, camera, event_id, start, end, tuple(json.loads(seqs)), record_seq, updated
        )

    def events(
        self, device: str | None = None, camera: str | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        """Newest first, optionally of one device and/or camera."""
        where, args = _filters(device=device, camera=camera)
        sql = f"SELECT * FROM events{where} ORDER BY updated DESC LIMIT ?"
        return [StoredEvent(*r) for r in self._conn.execute(sql, (*args, limit))]

    def mark_pending(self, key: EventKey, trigger: str, now: float) -> bool:
        """Record that `trigger` ("end" | "early") of the event wants an explanation; False when it
        is already pending or done (at most one per event and trigger)."""
        sql = "SELECT 1 FROM explanations WHERE device=? AND camera=? AND event_id=? AND trigger=?"
        if self._conn.execute(sql, (*key, trigger)).fetchone():
            return False
        self._conn.execute(_EXPLAIN_UPSERT, (*key, trigger, "pending", None, now))
        return True

    def put_explanation(
        self, key: EventKey, trigger: str, fields: Mapping[str, Any], now: float
    ) -> None:
        self._conn.execute(_EXPLAIN_UPSERT, (*key, trigger, "done", json.dumps(fields), now))

    def explanation(self, key: EventKey) -> dict[str, Any] | None:
        """The latest finished explanation of the event (the end trigger's over the early one)."""
        sql = (
            "SELECT body FROM explanations WHERE device=? AND camera=? AND event_id=? "
            "AND status='done' ORDER BY CASE trigger WHEN 'end' THEN 0 ELSE 1 END LIMIT 1"
        )
        row = self._conn.execute(sql, key).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def pending(self) -> list[tuple[EventKey, str]]:
        sql = "SELECT device, camera, event_id, trigger FROM explanations WHERE status='pending'"
        return [((d, c, e), t) for d, c, e, t in self._conn.execute(sql)]

    def claim(self, key: EventKey, trigger: str, owner: str, until: float, now: float) -> bool:
        """One process owns SQLite files: every pending trigger is its own to explain."""
        return True

    def cursor(self, name: str) -> int:
        row = self._conn.execute("SELECT position FROM cursors WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def set_cursor(self, name: str, position: int) -> None:
        sql = (
            "INSERT INTO cursors VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
        )
        self._conn.execute(sql, (name, position))

    def prune(self, older_than_s: float, now: float) -> dict[str, int]:
        """Retention, in one transaction: delete events untouched for `older_than_s` with their
        windows and explanations, and windows or explanations that old whose event is gone;
        the rows deleted per table."""
        cutoff = now - older_than_s
        deleted = dict.fromkeys(_PRUNED, 0)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            keys = self._conn.execute(_OLD_EVENTS, (cutoff,)).fetchall()
            for table in _PRUNED:
                sql = f"DELETE FROM {table} WHERE device=? AND camera=? AND event_id=?"
                deleted[table] += max(0, self._conn.executemany(sql, keys).rowcount)
            for table in ("windows", "explanations"):
                cur = self._conn.execute(_ORPHANS.format(table=table), (cutoff,))
                deleted[table] += max(0, cur.rowcount)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return deleted

    def close(self) -> None:
        self._conn.close()


def _filters(**values: str | None) -> tuple[str, Sequence[str]]:
    used = {k: v for k, v in values.items() if v is not None}
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(f"{k}=?" for k in used), tuple(used.values())
