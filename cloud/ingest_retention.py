"""Ingest retention: the ingest log's records and dedup rows untouched for `dedup_retention_days`
are deleted (`IngestLog.prune`), at start and every `dedup_retention_check_s`.

It runs in every `vau-cloud serve`, explainer on or off, but only while this replica holds the
`retention` role (`vau.cloud.replicas.Roles`; always on SQLite): the role's listener wakes it
when the role is taken or lost. Each pass is counted (`vau_cloud_ingest_retention_runs_total`,
`vau_cloud_ingest_pruned_total{table}`: `records`, `dedup`) and logged when it deleted something.
A pass that fails (the database is away) is logged and tried again at the next check, on a fresh
handle.

It owns its own writer handle on its own thread, not ingest's: on PostgreSQL a long delete never
holds back an append (the rows it deletes are ones no commit touches); SQLite has one writer at a
time, so there a commit waits for the delete, up to the busy timeout.

Exactly-once: a dedup row is deleted only when no record of its (device, camera, epoch) arrived for
the whole retention period (plus `limits.max_clock_skew_s`; `server.open_server_storage`), and a
record with a seq at or below the deleted high-water mark carries a capture time from then, which
ingest refuses as older than the retention (`time`). docs/storage.md has the argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from vau.cloud.metrics import CloudMetrics
from vau.cloud.storage.factory import Storage, store_errors
from vau.cloud.storage.ingest_log import IngestLog
from vau.cloud.store_worker import StoreWorker

log = logging.getLogger("vau.cloud.ingest_retention")


class IngestRetention(StoreWorker):
    """`start`/`stop` on the server's loop; `wake` when the retention role changes hands."""

    def __init__(
        self,
        storage: Storage,
        days: float,
        check_s: float,
        metrics: CloudMetrics,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        self.storage, self.days, self.check_s = storage, days, check_s
        self.metrics, self.active = metrics, active
        super().__init__("vau-ingest-retention", "vau-ingest-retention")
        self._log: IngestLog | None = None  # opened on the worker thread, at the first pass

    async def start(self) -> None:
        self._launch()  # nothing to open here: the first pass opens the log

    async def wake(self, held: bool = True) -> None:
        """A role listener (`Roles.on_change`): look again whether a pass is due."""
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = 0.0  # loop time of the next pass
        while not self._stopping.is_set():
            if self.active() and loop.time() >= due:
                due = loop.time() + self.check_s
                await self._pass()
            wait = max(0.0, due - loop.time()) if self.active() else None  # None: until woken
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can hang a cancel
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()

    async def _pass(self) -> None:
        try:
            records, rows = await self._call(self._prune, time.time())
        except store_errors() as exc:
            log.warning("ingest retention failed (%s); retrying in %.0f s", exc, self.check_s)
            return
        self.metrics.ingest_retention_runs.inc()
        self.metrics.ingest_pruned.labels("records").inc(records)
        self.metrics.ingest_pruned.labels("dedup").inc(rows)
        if records or rows:
            said = "ingest retention (%g days): pruned %d records, %d dedup rows"
            log.info(said, self.days, records, rows)

    # ----- on the worker thread -----------------------------------------------------------

    def _prune(self, now: float) -> tuple[int, int]:
        if self._log is None:
            self._log = self.storage.ingest_log()
        try:
            records, rows = self._log.prune(now)
        except store_errors():
            self._close()  # a broken connection: the next pass opens a fresh one
            raise
        return max(0, records), max(0, rows)

    def _close(self) -> None:
        if self._log is not None:
            with contextlib.suppress(*store_errors()):
                self._log.close()
            self._log = None
