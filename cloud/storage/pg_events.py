"""The PostgreSQL event repository: tables `vau_events`, `vau_windows`, `vau_explanations` and
`vau_cursors` in the database a `postgresql://` store URL names (psycopg 3).

The same SQL meaning as the SQLite repository. Each statement is its own transaction
(autocommit) except retention, which deletes from the three tables in one. `mark_pending` is one
`INSERT ... ON CONFLICT DO NOTHING`, so two processes cannot both mark the same trigger pending;
`claim` takes a pending row for one replica (`FOR UPDATE SKIP LOCKED` and an expiry stamp).
Each instance owns one connection: use it from one thread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from vau.cloud.storage.event_repository import EventKey, StoredEvent, StoredWindow
from vau.cloud.storage.pg_ingest import connect, create_schema, store_error

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS vau_events (
  device TEXT NOT NULL, camera TEXT NOT NULL, event_id TEXT NOT NULL, state TEXT NOT NULL,
  start_t DOUBLE PRECISION NOT NULL, end_t DOUBLE PRECISION, peak DOUBLE PRECISION NOT NULL,
  peak_t DOUBLE PRECISION NOT NULL, prior TEXT NOT NULL, epoch BIGINT NOT NULL,
  updated DOUBLE PRECISION NOT NULL, PRIMARY KEY (device, camera, event_id))""",
    "CREATE INDEX IF NOT EXISTS vau_events_updated ON vau_events (updated)",
    """CREATE TABLE IF NOT EXISTS vau_windows (
  device TEXT NOT NULL, camera TEXT NOT NULL, event_id TEXT NOT NULL,
  start_t DOUBLE PRECISION NOT NULL, end_t DOUBLE PRECISION NOT NULL, frame_seqs TEXT NOT NULL,
  record_seq BIGINT NOT NULL, updated DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (device, camera, event_id))""",
    """CREATE TABLE IF NOT EXISTS vau_explanations (
  device TEXT NOT NULL, camera TEXT NOT NULL, event_id TEXT NOT NULL, trigger TEXT NOT NULL,
  status TEXT NOT NULL, body TEXT, updated DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (device, camera, event_id, trigger))""",
    "CREATE TABLE IF NOT EXISTS vau_cursors (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    "ALTER TABLE vau_explanations ADD COLUMN IF NOT EXISTS claimed_by TEXT",
    "ALTER TABLE vau_explanations ADD COLUMN IF NOT EXISTS claimed_until DOUBLE PRECISION",
)
_EVENT_COLUMNS = (
    "device, camera, event_id, state, start_t, end_t, peak, peak_t, prior, epoch, updated"
)
_EVENT_UPSERT = f"""
INSERT INTO vau_events ({_EVENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (device, camera, event_id) DO UPDATE SET state = excluded.state,
  start_t = excluded.start_t, end_t = excluded.end_t, peak = excluded.peak,
  peak_t = excluded.peak_t, prior = excluded.prior, epoch = excluded.epoch,
  updated = excluded.updated
"""
_WINDOW_COLUMNS = "device, camera, event_id, start_t, end_t, frame_seqs, record_seq, updated"
_WINDOW_UPSERT = f"""
INSERT INTO vau_windows ({_WINDOW_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (device, camera, event_id) DO UPDATE SET start_t = excluded.start_t,
  end_t = excluded.end_t, frame_seqs = excluded.frame_seqs, record_seq = excluded.record_seq,
  updated = excluded.updated
"""
_EXPLAIN_INSERT = """
INSERT INTO vau_explanations (device, camera, event_id, trigger, status, body, updated)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""
_EXPLAIN_UPSERT = (
    _EXPLAIN_INSERT
    + """ON CONFLICT (device, camera, event_id, trigger) DO UPDATE SET status = excluded.status,
  body = excluded.body, updated = excluded.updated
"""
)
_KEY = "device=%s AND camera=%s AND event_id=%s"
_CLAIM = f"""
UPDATE vau_explanations SET claimed_by = %s, claimed_until = %s
WHERE ctid = (SELECT ctid FROM vau_explanations WHERE {_KEY} AND trigger = %s
  AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < %s OR claimed_by = %s)
  FOR UPDATE SKIP LOCKED)
"""
_PRUNED = ("events", "windows", "explanations")
_OF_OLD_EVENTS = """
DELETE FROM vau_{table} t USING vau_events e WHERE e.updated < %s
  AND e.device = t.device AND e.camera = t.camera AND e.event_id = t.event_id
"""
_ORPHANS = """
DELETE FROM vau_{table} t WHERE t.updated < %s AND NOT EXISTS (SELECT 1 FROM vau_events e
  WHERE e.device = t.device AND e.camera = t.camera AND e.event_id = t.event_id)
"""


def ensure_schema(url: str) -> None:
    """Create the repository's tables if missing (the factory calls it once at start)."""
    conn = connect(url)
    try:
        create_schema(conn, _SCHEMA)
    except psycopg.Error as exc:
        raise store_error(url, exc, "create the event tables") from None
    finally:
        conn.close()


class PgEventRepository:
    def __init__(self, url: str) -> None:
        self.url = url
        self._conn = connect(url)

    def put_event(self, e: StoredEvent) -> None:
        row = (e.device, e.camera, e.event_id, e.state, e.start, e.end, e.peak, e.peak_t)
        self._conn.execute(_EVENT_UPSERT, (*row, e.prior, e.epoch, e.updated))

    def put_window(self, w: StoredWindow) -> None:
        seqs = json.dumps(list(w.frame_seqs))
        row = (w.device, w.camera, w.event_id, w.start, w.end, seqs, w.record_seq, w.updated)
        self._conn.execute(_WINDOW_UPSERT, row)

    def event(self, key: EventKey) -> StoredEvent | None:
        sql = f"SELECT {_EVENT_COLUMNS} FROM vau_events WHERE {_KEY}"
        row = self._conn.execute(sql, key).fetchone()
        return _event(row) if row else None

    def window(self, key: EventKey) -> StoredWindow | None:
        sql = f"SELECT {_WINDOW_COLUMNS} FROM vau_windows WHERE {_KEY}"
        row = self._conn.execute(sql, key).fetchone()
        if row is None:
            return None
        device, camera, event_id, start, end, seqs, record_seq, updated = row
        return StoredWindow(
            device, camera, event_id, start, end, tuple(json.loads(seqs)), int(record_seq), updated
        )

    def events(
        self, device: str | None = None, camera: str | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        """Newest first, optionally of one device and/or camera."""
        where, args = _filters(device=device, camera=camera)
        sql = f"SELECT {_EVENT_COLUMNS} FROM vau_events{where} ORDER BY updated DESC LIMIT %s"
        return [_event(r) for r in self._conn.execute(sql, (*args, limit))]

    def mark_pending(self, key: EventKey, trigger: str, now: float) -> bool:
        """Record that `trigger` ("end" | "early") of the event wants an explanation; False when it
        is already pending or done (at most one per event and trigger, across processes too)."""
        sql = _EXPLAIN_INSERT + "ON CONFLICT DO NOTHING"
        cur = self._conn.execute(sql, (*key, trigger, "pending", None, now))
        return cur.rowcount == 1

    def put_explanation(
        self, key: EventKey, trigger: str, fields: Mapping[str, Any], now: float
    ) -> None:
        self._conn.execute(_EXPLAIN_UPSERT, (*key, trigger, "done", json.dumps(fields), now))

    def explanation(self, key: EventKey) -> dict[str, Any] | None:
        """The latest finished explanation of the event (the end trigger's over the early one)."""
        sql = (
            f"SELECT body FROM vau_explanations WHERE {_KEY} AND status='done' "
            "ORDER BY CASE trigger WHEN 'end' THEN 0 ELSE 1 END LIMIT 1"
        )
        row = self._conn.execute(sql, key).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def pending(self) -> list[tuple[EventKey, str]]:
        sql = (
            "SELECT device, camera, event_id, trigger FROM vau_explanations WHERE status='pending'"
        )
        return [((d, c, e), t) for d, c, e, t in self._conn.execute(sql)]

    def claim(self, key: EventKey, trigger: str, owner: str, until: float, now: float) -> bool:
        """`SELECT ... FOR UPDATE SKIP LOCKED` the pending row (a replica claiming it right now
        is skipped, not waited for), then stamp it with its owner and expiry in the same
        statement: one replica wins; an expired claim (its replica died) can be taken."""
        cur = self._conn.execute(_CLAIM, (owner, until, *key, trigger, now, owner))
        return cur.rowcount == 1

    def cursor(self, name: str) -> int:
        sql = "SELECT position FROM vau_cursors WHERE name=%s"
        row = self._conn.execute(sql, (name,)).fetchone()
        return int(row[0]) if row else 0

    def set_cursor(self, name: str, position: int) -> None:
        sql = (
            "INSERT INTO vau_cursors (name, position) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
        )
        self._conn.execute(sql, (name, position))

    def prune(self, older_than_s: float, now: float) -> dict[str, int]:
        """Retention, in one transaction: delete events untouched for `older_than_s` with their
        windows and explanations, and windows or explanations that old whose event is gone;
        the rows deleted per table."""
        cutoff = now - older_than_s
        deleted = dict.fromkeys(_PRUNED, 0)
        with self._conn.transaction():
            for table in ("windows", "explanations"):
                cur = self._conn.execute(_OF_OLD_EVENTS.format(table=table), (cutoff,))
                deleted[table] += max(0, cur.rowcount)
            cur = self._conn.execute("DELETE FROM vau_events WHERE updated < %s", (cutoff,))
            deleted["events"] += max(0, cur.rowcount)
            for table in ("windows", "explanations"):
                cur = self._conn.execute(_ORPHANS.format(table=table), (cutoff,))
                deleted[table] += max(0, cur.rowcount)
        return deleted

    def close(self) -> None:
        self._conn.close()


def _event(row: Sequence[Any]) -> StoredEvent:
    device, camera, event_id, state, start, end, peak, peak_t, prior, epoch, updated = row
    return StoredEvent(
        device, camera, event_id, state, start, end, peak, peak_t, prior, int(epoch), updated
    )


def _filters(**values: str | None) -> tuple[str, Sequence[str]]:
    used = {k: v for k, v in values.items() if v is not None}
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(f"{k}=%s" for k in used), tuple(used.values())
