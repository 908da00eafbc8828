"""The event repository: events and their windows (written by the event projector), explanations
(written by the explainer), named cursors over the ingest log, and retention.

One writer per table: the projector upserts events and windows, the explainer marks explanations
pending, claims them (one replica explains each) and marks them done; each keeps its own cursor.
Retention deletes from all three in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

EventKey = tuple[str, str, str]  # (device, camera, event_id)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    device: str
    camera: str
    event_id: str
    state: str  # "new" | "update" | "end"
    start: float
    end: float | None
    peak: float
    peak_t: float
    prior: str
    epoch: int
    updated: float  # UNIX seconds of the last change


@dataclass(frozen=True, slots=True)
class StoredWindow:
    device: str
    camera: str
    event_id: str
    start: float
    end: float
    frame_seqs: tuple[int, ...]
    record_seq: int  # the window marker's record seq in the ingest log
    updated: float


class EventRepository(Protocol):
    """One handle on the repository; use it from one thread (open one per thread)."""

    def put_event(self, e: StoredEvent) -> None: ...

    def put_window(self, w: StoredWindow) -> None: ...

    def event(self, key: EventKey) -> StoredEvent | None: ...

    def window(self, key: EventKey) -> StoredWindow | None: ...

    def events(
        self, device: str | None = None, camera: str | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        """Newest change first, optionally of one device and/or camera."""
        ...

    def mark_pending(self, key: EventKey, trigger: str, now: float) -> bool:
        """Record that `trigger` ("end" | "early") of the event wants an explanation; False when
        it is already pending or done (at most one per event and trigger)."""
        ...

    def put_explanation(
        self, key: EventKey, trigger: str, fields: Mapping[str, Any], now: float
    ) -> None: ...

    def explanation(self, key: EventKey) -> dict[str, Any] | None:
        """The latest finished explanation of the event (the end trigger's over the early one)."""
        ...

    def pending(self) -> list[tuple[EventKey, str]]: ...

    def claim(self, key: EventKey, trigger: str, owner: str, until: float, now: float) -> bool:
        """Take the pending `trigger` of the event for `owner` (a replica) until `until`; False
        when it is no longer pending or another owner's claim has not expired. Replicas explain
        each trigger once; a claim of a replica that died expires and is taken by another."""
        ...

    def cursor(self, name: str) -> int:
        """A reader's last ingest log position (0 when it has none)."""
        ...

    def set_cursor(self, name: str, position: int) -> None: ...

    def prune(self, older_than_s: float, now: float) -> dict[str, int]:
        """Retention, in one transaction: delete events untouched for `older_than_s` with their
        windows and explanations, and windows or explanations that old whose event is gone;
        the rows deleted per table."""
        ...

    def close(self) -> None: ...
