"""The event projector: events and their windows from the accepted event and window records,
whether or not the explainer runs.

It tails the ingest log from its own cursor (`projector`, kept in the event repository) and upserts
events and windows: the only writer of those two tables (the explainer reads them and writes only
explanations). Records are re-typed with the limits ingest runs with; one that cannot be read is
logged and skipped (the cursor moves past it). Ingest's commits wake it early (`committed`, a hook
of the log's writer); `poll_s` covers other writers. All store work runs on one worker thread,
in order.

With the explainer off nothing else prunes the repository, so the projector is then given the
retention schedule (`explain.retention_days` every `explain.retention_check_s`).

Replicas: `active` (the `projector` role of `vau.cloud.replicas.Roles`) says whether this replica
projects; the cursor is the repository's, shared, so a replica that takes the role resumes where
the last holder stopped (upserts are idempotent: a batch projected twice across a hand-over
changes nothing). Retention runs only while `Retention.active` (the `retention` role).

Upgrade: a repository written before the projector existed has the explainer's cursor only; the
projector starts from it (the explainer had projected up to there), not from the log's start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vau.cloud.explain.ingest_reader import IngestReader, OnUnreadable, Row
from vau.cloud.records import AcceptedRecord, EventChange, WindowMarker
from vau.cloud.settings import LimitSettings
from vau.cloud.storage.event_repository import EventRepository, StoredEvent, StoredWindow
from vau.cloud.storage.factory import Storage
from vau.cloud.store_worker import StoreWorker

log = logging.getLogger("vau.cloud.projector")
CURSOR = "projector"
LEGACY_CURSOR = "explainer"  # the explainer projected events before the projector existed
KINDS = ("event", "window")
BATCH = 500


@dataclass(frozen=True, slots=True)
class Retention:
    """Prune the repository every `check_s`; `counted` gets the rows deleted per table."""

    older_than_s: float
    check_s: float
    counted: Callable[[dict[str, int]], None]
    active: Callable[[], bool] = lambda: True  # this replica holds the `retention` role


class EventProjector(StoreWorker):
    """`start`/`stop` on the server's loop; `committed` (sync) after each ingest commit."""

    def __init__(
        self,
        storage: Storage,
        limits: LimitSettings,
        poll_s: float = 0.5,
        *,
        on_unreadable: OnUnreadable | None = None,
        retention: Retention | None = None,
        active: Callable[[], bool] | None = None,
    ) -> None:
        self.storage, self.limits, self.poll_s = storage, limits, poll_s
        self.active = active or (lambda: True)
        self.on_unreadable, self.retention = on_unreadable, retention
        super().__init__("vau-projector", "vau-event-projector")
        self._next_retention = 0.0
        # opened on the worker thread by _open (SQLite connections stay on their thread)
        self._repo: EventRepository
        self._ingest: IngestReader

    def committed(self, records: Sequence[AcceptedRecord]) -> None:
        """Wake early when a commit holds a kind projected (on the loop; never blocks)."""
        if any(r.kind in KINDS for r in records):
            self._wake.set()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._maybe_retain()
                moved = self.active() and await self._call(self.project_once)
            except Exception:
                log.exception("event projection failed; retrying in %.1f s", self.poll_s)
                moved = False
            if not moved:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                self._wake.clear()

    async def _maybe_retain(self) -> None:
        r = self.retention
        now = asyncio.get_running_loop().time()
        if r is not None and now >= self._next_retention and r.active():
            self._next_retention = now + r.check_s
            deleted = await self._call(self._repo.prune, r.older_than_s, time.time())
            r.counted(deleted)

    # ----- on the worker thread -----------------------------------------------------------

    def _open(self) -> None:
        self._repo = self.storage.event_repository()
        log_handle = self.storage.ingest_log(read_only=True)
        self._ingest = IngestReader(log_handle, self.limits, self.on_unreadable)
        if not self._repo.cursor(CURSOR):
            legacy = self._repo.cursor(LEGACY_CURSOR)
            if legacy:
                self._repo.set_cursor(CURSOR, legacy)

    def _close(self) -> None:
        self._repo.close()
        self._ingest.close()

    def project_once(self) -> bool:
        """Project the next batch; True when something was read (more may follow)."""
        batch = self._ingest.after(self._repo.cursor(CURSOR), BATCH, KINDS)
        for row in batch.rows:
            self._project(row)
        if batch.last_rowid is not None:
            self._repo.set_cursor(CURSOR, batch.last_rowid)
        return batch.last_rowid is not None

    def _project(self, row: Row) -> None:
        r, now = row.record, time.time()
        if isinstance(r.body, EventChange):
            e = r.body
            key = (r.device, r.camera, e.event_id)
            event = StoredEvent(
                *key, e.state, e.start, e.end, e.peak, e.peak_t, e.prior, r.epoch, now
            )
            self._repo.put_event(event)
        elif isinstance(r.body, WindowMarker):
            w = r.body
            key = (r.device, r.camera, w.event_id)
            window = StoredWindow(*key, w.start, w.end, tuple(w.frame_seqs), r.seq, now)
            self._repo.put_window(window)
