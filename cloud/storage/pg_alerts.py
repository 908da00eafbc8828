"""The PostgreSQL alert outbox (`vau_alert_outbox`), shared by every replica on the database.

Any replica writes alerts into it (device status from its own streams, explanations it made); only
the replica holding the `mqtt` role hands them to the broker and deletes each on its PUBACK. When
that replica dies, the next holder sends everything still here, in id order: nothing is stranded.
Inserts take a transaction-level advisory lock, so ids become visible in increasing order and the
sender's "after id" cursor never skips a row another replica commits late. The alert tail's cursor
over the ingest log is a row of `vau_cursors` (prefixed `alerts:`), shared the same way.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from vau.cloud.storage.alert_outbox import Pending
from vau.cloud.storage.pg_ingest import connect, create_schema, store_error

ALERT_LOCK = 0x7661750003  # pg_advisory_xact_lock key: one outbox insert at a time
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS vau_alert_outbox (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, topic TEXT NOT NULL, payload BYTEA NOT NULL,
  retain BOOLEAN NOT NULL, created DOUBLE PRECISION NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS vau_cursors (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
)
_SIZE = "SELECT count(*), coalesce(sum(length(payload)), 0) FROM vau_alert_outbox"


def ensure_schema(url: str) -> None:
    conn = connect(url)
    try:
        create_schema(conn, _SCHEMA)
    except psycopg.Error as exc:
        raise store_error(url, exc, "create the alert outbox table") from None
    finally:
        conn.close()


class PgAlertOutbox:
    def __init__(self, url: str, max_records: int, max_bytes: int) -> None:
        self.max_records, self.max_bytes = max_records, max_bytes
        self._lock = threading.Lock()
        self._conn = connect(url)
        self._depth = int(self._conn.execute(_SIZE).fetchone()[0])  # type: ignore[index]

    @property
    def depth(self) -> int:
        return self._depth

    def put(
        self, topic: str, payload: bytes, retain: bool, cursor: tuple[str, int] | None = None
    ) -> tuple[int, int]:
        with self._lock, self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (ALERT_LOCK,))
            row = self._conn.execute(
                "INSERT INTO vau_alert_outbox (topic, payload, retain, created) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (topic, payload, retain, time.time()),
            ).fetchone()
            count, evicted = self._evict()
            if cursor is not None:
                self._write_cursor(*cursor)
        self._depth = count  # committed
        return int(row[0]) if row else 0, evicted

    def _evict(self) -> tuple[int, int]:
        """(rows left, rows evicted)."""
        count, size = self._conn.execute(_SIZE).fetchone() or (0, 0)
        count, size, evicted = int(count), int(size), 0
        while count > self.max_records or (size > self.max_bytes and count > 1):
            found = self._conn.execute(
                "DELETE FROM vau_alert_outbox WHERE id = (SELECT min(id) FROM vau_alert_outbox) "
                "RETURNING length(payload)"
            ).fetchone()
            if found is None:
                break
            count, size, evicted = count - 1, size - int(found[0]), evicted + 1
        return count, evicted

    def ack(self, row_id: int) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM vau_alert_outbox WHERE id = %s", (row_id,))
            if cur.rowcount != 1:
                return False
            self._depth = max(0, self._depth - 1)
            return True

    def pending(self, after_id: int, limit: int) -> list[Pending]:
        with self._lock:
            rows: list[Any] = self._conn.execute(
                "SELECT id, topic, payload, retain FROM vau_alert_outbox WHERE id > %s "
                "ORDER BY id LIMIT %s",
                (after_id, limit),
            ).fetchall()
        return [Pending(int(i), str(t), bytes(p), bool(r)) for i, t, p, r in rows]

    def cursor(self, name: str) -> int | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT position FROM vau_cursors WHERE name = %s", (f"alerts:{name}",)
            ).fetchone()
        return None if row is None else int(row[0])

    def set_cursor(self, name: str, pos: int) -> None:
        with self._lock:
            self._write_cursor(name, pos)

    def _write_cursor(self, name: str, pos: int) -> None:
        self._conn.execute(
            "INSERT INTO vau_cursors (name, position) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (f"alerts:{name}", pos),
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
