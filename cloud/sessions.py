"""Per-camera sessions: where accepted records go after they are durable.

Ingest calls `SessionRegistry.publish` after each commit; it never waits. Each subscriber has a
bounded queue drained by its own task; when a subscriber falls behind, new records for it are
dropped and counted (`vau_cloud_session_dropped_total`). The durable store is the source of
truth: a consumer that missed records reads them back from it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from vau.cloud.records import AcceptedRecord

log = logging.getLogger("vau.cloud.sessions")

Callback = Callable[[AcceptedRecord], Awaitable[None]]


class Subscription:
    """A bounded queue feeding one async callback from one task; `offer` never blocks."""

    def __init__(
        self,
        callback: Callback,
        queue_size: int,
        on_drop: Callable[[], None],
        owner: list[Subscription],
    ) -> None:
        self._callback, self._on_drop, self._owner = callback, on_drop, owner
        self._queue: asyncio.Queue[AcceptedRecord] = asyncio.Queue(queue_size)
        self._task = asyncio.get_running_loop().create_task(self._deliver())
        self.dropped = 0
        owner.append(self)

    def offer(self, record: AcceptedRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1
            self._on_drop()

    async def _deliver(self) -> None:
        while True:
            record = await self._queue.get()
            try:
                await self._callback(record)
            except Exception:  # a consumer's bug must not stop its own delivery, nor ingest
                log.exception("session subscriber failed on %s/%s", record.device, record.camera)

    def close(self) -> None:
        if self in self._owner:
            self._owner.remove(self)
        self._task.cancel()


class Session:
    """One (device, camera): the most recent accepted records and its subscribers."""

    def __init__(self, device: str, camera: str, recent: int) -> None:
        self.device, self.camera = device, camera
        self.recent: deque[AcceptedRecord] = deque(maxlen=recent)
        self.subscribers: list[Subscription] = []
        self.last_seq = 0

    def publish(self, record: AcceptedRecord) -> list[Subscription]:
        self.recent.append(record)
        self.last_seq = record.seq
        return self.subscribers


class SessionRegistry:
    """All sessions of this server. `subscribe` (every camera) or `session(d, c)` then
    `subscribe_to` (one camera); callbacks run on the server's event loop, one task each."""

    def __init__(
        self,
        recent_records: int = 16,
        queue_size: int = 256,
        on_drop: Callable[[], None] = lambda: None,
    ) -> None:
        self._recent, self._queue_size, self._on_drop = recent_records, queue_size, on_drop
        self._sessions: dict[tuple[str, str], Session] = {}
        self._all: list[Subscription] = []

    def session(self, device: str, camera: str) -> Session:
        key = (device, camera)
        found = self._sessions.get(key)
        if found is None:
            found = self._sessions[key] = Session(device, camera, self._recent)
        return found

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    def subscribe(self, callback: Callback) -> Subscription:
        """Every accepted record of every camera, in per-camera order. Call on the loop."""
        return Subscription(callback, self._queue_size, self._on_drop, self._all)

    def subscribe_to(self, device: str, camera: str, callback: Callback) -> Subscription:
        """The accepted records of one camera. Call on the loop."""
        owner = self.session(device, camera).subscribers
        return Subscription(callback, self._queue_size, self._on_drop, owner)

    def publish(self, records: Sequence[AcceptedRecord]) -> None:
        """Hand newly accepted records to their sessions and subscribers; never blocks."""
        for record in records:
            for sub in [*self.session(record.device, record.camera).publish(record), *self._all]:
                sub.offer(record)

    def close(self) -> None:
        for sub in [*self._all, *(s for x in self._sessions.values() for s in x.subscribers)]:
            sub.close()
