"""The fast path: every accepted event record (new/update/end) becomes an MQTT alert.

The source is the durable ingest log, not the in-memory session feed: the service tails its event
records by position from a cursor kept in alerts.sqlite3 and written in the same transaction as
each alert, so a cloud restart neither loses an alert nor makes one twice (one the broker got just
before a crash, its PUBACK not yet recorded, is sent again from the outbox: QoS 1, same alert_id
and payload). The session feed only wakes the tail early; a short poll covers anything it
dropped. Store reads run on a worker thread, never on the event loop.

Replicas (a PostgreSQL store): the outbox and the cursor are the store's shared ones, and only
the replica holding the `mqtt` role (`vau.cloud.replicas.Roles`) tails the log and talks to the
broker; the others still write their devices' status alerts into the shared outbox. A replica
that takes the role resumes at the shared cursor and sends what the outbox holds, so an alert is
neither lost nor published by two replicas (a crash after the broker got an alert and before
its PUBACK is recorded repeats it with the same alert_id: QoS 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry

from vau.cloud.codec import EVENT_STATES, decode_record
from vau.cloud.mqtt.metrics import MqttMetrics
from vau.cloud.mqtt.notifier import MqttNotifier
from vau.cloud.mqtt.publisher import MqttPublisher
from vau.cloud.records import AcceptedRecord, WireEvent
from vau.cloud.replicas import Roles
from vau.cloud.sessions import SessionRegistry, Subscription
from vau.cloud.settings import MqttSettings
from vau.cloud.storage.factory import Storage, store_errors
from vau.cloud.storage.ingest_log import IngestLog, StoredRecord

log = logging.getLogger("vau.cloud.mqtt")
CURSOR = "ingest.records"
BATCH = 256
T = TypeVar("T")


def event_fields(rowid: int, rec: StoredRecord) -> tuple[str, dict[str, Any]] | None:
    """(event_id, Notifier.event fields) of one stored event record; None if it is not one."""
    body = decode_record(rec.body).body
    if not isinstance(body, WireEvent) or body.state not in EVENT_STATES:
        return None
    fields = {
        "type": EVENT_STATES[body.state],
        "start": body.start,
        "end": body.end,
        "score": body.peak,
        "peak_t": body.peak_t,
        "prior": body.prior,
        "capture_time": rec.capture_time,
        "alert_id": f"{rec.device}/{rec.camera}/{rec.epoch}/{rec.seq}",
    }
    return body.event_id, fields


class MqttService:
    """Owns the publisher, the notifier and the alert tail. `start`/`stop` on the server's loop."""

    def __init__(
        self,
        settings: MqttSettings,
        data_dir: Path,
        storage: Storage,
        sessions: SessionRegistry,
        registry: CollectorRegistry,
        roles: Roles | None = None,
    ) -> None:
        self.s, self.data_dir, self.sessions = settings, data_dir, sessions
        self.storage, self.roles = storage, roles  # roles None: this process sends, always
        self.metrics = MqttMetrics(registry)
        s = settings
        outbox = storage.alert_outbox(data_dir, s.outbox_max_records, s.outbox_max_bytes)
        self.publisher = MqttPublisher(settings, data_dir, self.metrics, outbox=outbox)
        self.notifier = MqttNotifier(self.publisher, settings)
        self._wake = asyncio.Event()
        self._status: deque[tuple[str, bool]] = deque()
        self._open: Counter[str] = Counter()  # open streams per device
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._log: IngestLog | None = None  # a reader handle, used on one worker thread
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vau-mqtt-tail")
        self.cursor = 0
        self.sending = False  # this replica holds the `mqtt` role: tails and publishes

    def stream_changed(self, device: str, connected: bool) -> None:
        """Ingest's hook (sync, never blocks): a device stream opened or closed. Only the first
        open and the last close of a device are reported (a superseding stream overlaps)."""
        before = self._open[device]
        self._open[device] = before + (1 if connected else -1)
        if self._open[device] <= 0:
            del self._open[device]
        if (before == 0) == connected:
            self._status.append((device, connected))
            self._wake.set()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def start(self) -> None:
        await self._call(self._open_tail)
        self._sub = self.sessions.subscribe(self._on_record)
        if self.roles is None:
            await self.role_changed(True)
        else:
            self.roles.on_change("mqtt", self.role_changed)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="vau-mqtt-tail")

    async def role_changed(self, held: bool) -> None:
        """Take over (resume at the stored cursor, connect) or hand over (disconnect)."""
        if held and not self.sending:
            self.cursor = await self._call(self._stored_cursor)
            await asyncio.to_thread(self.publisher.start)
            self.sending = True
            log.info("MQTT alerts: sending from this replica, after log position %d", self.cursor)
        elif not held and self.sending:
            self.sending = False
            await asyncio.to_thread(self.publisher.release)
            log.warning("MQTT alerts: handed over (the mqtt role went to another replica)")
        self._wake.set()

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.publisher.stop)
        if self._log is not None:
            await self._call(self._log.close)
        self._pool.shutdown(wait=True)

    def _open_tail(self) -> None:
        self._log = self.storage.ingest_log(read_only=True)

    def _stored_cursor(self) -> int:
        assert self._log is not None
        found = self.publisher.outbox.cursor(CURSOR)
        if found is None:  # first start with MQTT on: alert from now on, not the whole history
            found = self._log.last_position()
            self.publisher.outbox.set_cursor(CURSOR, found)
        return found

    async def _on_record(self, record: AcceptedRecord) -> None:
        if record.kind == "event":
            self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.s.poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while self._status:
                    device, connected = self._status[0]
                    await self.notifier.device_status(device, connected)
                    self._status.popleft()
                while self.sending and await self._drain_once():
                    pass
            except store_errors():  # e.g. disk full, connection lost: retry on the next poll
                log.exception("MQTT alert tail failed; retrying in %.1f s", self.s.poll_s)

    async def _drain_once(self) -> bool:
        assert self._log is not None
        rows = await self._call(self._log.tail, self.cursor, ("event",), BATCH)
        for entry in rows:
            rowid, rec = entry.position, entry.record
            found = event_fields(rowid, rec)
            if found is not None:  # the alert and the cursor past it: one transaction
                device, camera = rec.device, rec.camera
                await self.notifier.event(device, camera, found[0], found[1], (CURSOR, rowid))
            else:
                await asyncio.to_thread(self.publisher.outbox.set_cursor, CURSOR, rowid)
            self.cursor = rowid
        return len(rows) == BATCH
