"""The alert outbox: MQTT alerts written durably before they are sent, deleted on the broker's
PUBACK, bounded (oldest evicted beyond `max_records` / `max_bytes`, counted), plus the alert
tail's named cursors over the ingest log.

Two implementations: `vau.cloud.mqtt.outbox.Outbox` (SQLite `alerts.sqlite3` in the data dir: one
process) and `vau.cloud.storage.pg_alerts.PgAlertOutbox` (PostgreSQL: shared by every replica, so
any replica may write an alert and the one holding the `mqtt` role sends them; a replica that dies
leaves nothing stranded on its disk). Thread-safe: paho acks on its network thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    topic: str
    payload: bytes
    retain: bool


class AlertOutbox(Protocol):
    @property
    def depth(self) -> int:
        """Unacked alerts (a gauge; with several writers, as of this handle's last write)."""
        ...

    def put(
        self, topic: str, payload: bytes, retain: bool, cursor: tuple[str, int] | None = None
    ) -> tuple[int, int]:
        """Append durably; (row id, rows evicted to stay within bounds). Ids become visible
        in increasing order. `cursor` (name, position) moves that cursor in the same
        transaction: the alert tail writes an alert and the log position it was read at
        together, so a crash between them can neither repeat nor lose it."""
        ...

    def ack(self, row_id: int) -> bool:
        """Release an acknowledged alert; False if it was already gone (evicted)."""
        ...

    def pending(self, after_id: int, limit: int) -> list[Pending]:
        """Unacked alerts with id > after_id, oldest first."""
        ...

    def cursor(self, name: str) -> int | None: ...

    def set_cursor(self, name: str, pos: int) -> None: ...

    def close(self) -> None: ...
