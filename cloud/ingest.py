"""One device stream, from Hello to its end: authenticate, admit, resume, then batches of
records -> validate -> one store transaction -> session hand-off -> cumulative acks.

An ack is written only after the commit that made its records durable returns. Records before a
bad one in the same batch are committed and acked first, then the stream ends with the error, so
the edge can set the bad record aside and resume right after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from vau.cloud.admission import Admission, Lease, RateGate
from vau.cloud.auth import Authenticator, Credential
from vau.cloud.metrics import CloudMetrics
from vau.cloud.records import (
    AcceptedRecord,
    AckOut,
    AdmissionError,
    CloudOut,
    EdgeIn,
    Hello,
    HelloReply,
    Malformed,
    RecordRejected,
    WireRecord,
)
from vau.cloud.sessions import SessionRegistry
from vau.cloud.settings import BatchSettings, LimitSettings
from vau.cloud.validate import Validator
from vau.cloud.writer import AsyncStore

log = logging.getLogger("vau.cloud.ingest")
Write = Callable[[CloudOut], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _End:
    """The request stream ended (cleanly when `error` is None)."""

    error: BaseException | None = None


Item = EdgeIn | _End


@dataclass(frozen=True, slots=True)
class IngestDeps:
    validator: Validator
    auth: Authenticator
    admission: Admission
    store: AsyncStore
    sessions: SessionRegistry
    metrics: CloudMetrics
    limits: LimitSettings
    batch: BatchSettings
    on_stream: Callable[[str, bool], None] | None = None  # (device, connected); must not block


class IngestStream:
    def __init__(
        self, deps: IngestDeps, cred: Credential, requests: AsyncIterator[EdgeIn], write: Write
    ) -> None:
        self.d, self.cred, self.requests, self.write = deps, cred, requests, write
        # Bounded by what a compliant edge may have unacked; beyond, HTTP/2 flow control holds
        # the sender. Memory per stream <= max_in_flight * max_message_bytes.
        self.queue: asyncio.Queue[Item] = asyncio.Queue(deps.limits.max_in_flight)

    async def run(self) -> None:
        """Serve the stream until the device closes it; domain errors end it (see servicer)."""
        principal = self.d.auth.authenticate(self.cred)
        first = await self._first_message()
        if first is None:
            return
        hello = self.d.validator.hello(first)
        device = self.d.auth.authorize(principal, hello.device_id)
        lease = await self.d.admission.claim(device)
        reader = asyncio.create_task(self._read())
        if self.d.on_stream is not None:
            self.d.on_stream(device, True)
        try:
            resume = await self.d.store.resume_after(device, hello.epoch, hello.cameras)
            lim = self.d.limits
            await self.write(HelloReply(device, resume, lim.max_in_flight, lim.max_message_bytes))
            await _Pump(self, lease, hello, self.d.admission.gate(lease)).run()
        finally:
            reader.cancel()
            self.d.admission.release(lease)
            if self.d.on_stream is not None:
                self.d.on_stream(device, False)

    async def _first_message(self) -> Hello | None:
        try:
            async with asyncio.timeout(self.d.limits.hello_timeout_s):
                first = await anext(self.requests, None)
        except TimeoutError:
            raise RecordRejected("hello", detail="no Hello within hello_timeout_s") from None
        if first is None or isinstance(first, Hello):
            return first
        reason = "decode" if isinstance(first, Malformed) else "hello"
        raise RecordRejected(reason, detail="the first message must be a Hello")

    async def _read(self) -> None:
        try:
            async for item in self.requests:
                await self.queue.put(item)
        except Exception as exc:  # the transport failed; the pump ends the stream
            await self.queue.put(_End(exc))
        else:
            await self.queue.put(_End())


class _Pump:
    def __init__(self, stream: IngestStream, lease: Lease, hello: Hello, gate: RateGate) -> None:
        self.s, self.d, self.lease, self.hello, self.gate = stream, stream.d, lease, hello, gate
        self.device = lease.device

    async def run(self) -> None:
        while True:
            items = await self._next_batch()
            if await self._process(items):
                return
            self.lease.check()

    async def _next_batch(self) -> list[Item]:
        items = [await self._first()]
        q, limit = self.s.queue, self.d.batch.max_records
        deadline = asyncio.get_running_loop().time() + self.d.batch.max_wait_ms / 1000
        while len(items) < limit and not isinstance(items[-1], _End):
            try:
                items.append(q.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            try:
                async with asyncio.timeout_at(deadline):
                    items.append(await q.get())
            except TimeoutError:
                break
        return items

    async def _first(self) -> Item:
        """The next item, or StreamStoppedError when the server ends the stream first."""
        get = asyncio.ensure_future(self.s.queue.get())
        stop = asyncio.ensure_future(self.lease.stopped.wait())
        try:
            await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        self.lease.check()
        raise AssertionError("stop event set without a reason")

    async def _process(self, items: list[Item]) -> bool:
        """Validate and commit a batch; True when the stream ended cleanly."""
        accepted: list[AcceptedRecord] = []
        failure: Exception | None = None
        end: _End | None = None
        now = time.time()
        for item in items:
            if isinstance(item, _End):
                end = item
                break
            try:
                accepted.append(await self._accept(item, now))
            except (RecordRejected, AdmissionError) as exc:
                failure = exc
                break
        if accepted:
            await self._commit(accepted)
        if failure is not None:
            raise failure
        if end is not None and end.error is not None:
            raise end.error
        return end is not None

    async def _accept(self, item: EdgeIn, now: float) -> AcceptedRecord:
        self.d.metrics.received.inc()
        if isinstance(item, Malformed):
            raise RecordRejected("decode", detail=item.detail)
        if not isinstance(item, WireRecord):
            raise RecordRejected("hello", detail="Hello is allowed once, as the first message")
        pause = self.gate.admit(asyncio.get_running_loop().time())
        if pause is not None:
            self.d.metrics.flow.inc()
            await self.s.write(pause)
        return self.d.validator.record(item, self.device, self.hello, now)

    async def _commit(self, accepted: list[AcceptedRecord]) -> None:
        m = self.d.metrics
        result = await self.d.store.commit(accepted)
        m.commit_seconds.observe(result.seconds)
        m.accepted.inc(len(result.accepted))
        m.duplicates.inc(result.duplicates)
        try:
            self.d.sessions.publish(result.accepted)
        except Exception:  # a consumer bug must never fail ingest; the store has the records
            log.exception("session hand-off failed for %s", self.device)
        last: dict[str, int] = {}  # cumulative: the highest seq per camera
        for r in accepted:
            last[r.camera] = max(last.get(r.camera, 0), r.seq)
        for camera, seq in last.items():
            await self.s.write(AckOut(camera, self.hello.epoch, seq))
            m.acks.inc()
