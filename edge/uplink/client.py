"""The uplink: one gRPC stream per device that drains the outbox to the cloud, in order, resumably.

Each connection says hello, learns from the cloud where each camera resumes (the highest sequence
it has accepted), and sends the outbox's records after that point, at most `max_in_flight` unacked.
Acks are cumulative per camera and delete records from the outbox. Any failure ends the stream; the
next connection (after a jittered exponential backoff) resumes from the cloud's answer, so nothing
acked is sent again and nothing unacked is lost.

Failover: with several cloud addresses (`uplink.cloud = "a:1,b:2"`, replicas sharing one
database), a failed stream moves the uplink to the next address at once (counted in
`vau_edge_uplink_failovers_total` and logged); the backoff grows only once every address has
failed in a row. The next replica's hello answer comes from the same dedup rows, so the move loses
and repeats nothing. One address behaves exactly as before.

The count of consecutive failures that sets the backoff starts again from 0 once a stream proved
healthy: its hello was answered and the cloud then acked a record on it, or it stayed up for
`reconnect_max_s` (an idle stream). A cloud that answers hellos but fails every commit keeps
the backoff growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import grpc

from vau.edge import metrics
from vau.edge.live import backoff_delay
from vau.edge.settings import UplinkSettings
from vau.edge.uplink import codec
from vau.edge.uplink.channel import STREAM_METHOD, addresses, call_metadata, open_channel
from vau.edge.uplink.outbox import Outbox

log = logging.getLogger(__name__)

BATCH = 32  # records read from the outbox per query
IDLE_POLL_S = 0.5  # re-check the outbox this often even without a wake-up
HELLO_TIMEOUT_S = 10.0
REJECT_KEYS = ("vau-reject-camera", "vau-reject-seq", "vau-reject-reason")


class StreamEndedError(Exception):
    """This stream ended; the uplink reconnects (after the longest backoff when `fatal`)."""

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal  # retrying soon cannot help: credentials or identity are wrong


# Retrying soon cannot fix these: the device's credentials or identity are wrong.
_CONFIG_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@dataclass
class _Flight:
    """Per connection: what was sent and not yet acked, per camera, in order."""

    limit: int
    cursor: dict[str, int] = field(default_factory=dict)  # highest seq sent per camera
    unacked: dict[str, deque[int]] = field(default_factory=dict)
    paused_until: float = 0.0

    def count(self) -> int:
        return sum(len(q) for q in self.unacked.values())

    def sent(self, camera: str, seq: int) -> None:
        self.cursor[camera] = seq
        self.unacked.setdefault(camera, deque()).append(seq)

    def acked(self, camera: str, seq: int) -> int:
        q = self.unacked.get(camera, deque())
        n = 0
        while q and q[0] <= seq:
            q.popleft()
            n += 1
        return n


class Uplink:
    """Runs in its own event loop (see UplinkThread); `wake()` is safe from any thread."""

    def __init__(
        self, cfg: UplinkSettings, device_id: str, cameras: list[str], outbox: Outbox,
        version: str = "0.1.0",
    ) -> None:  # fmt: skip
        self._cfg = cfg
        self._device = device_id
        self._cameras = cameras
        self._outbox = outbox
        self._version = version
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connected = False
        self.addresses = addresses(cfg)  # failover order
        self.current = 0  # index of the address the next stream goes to
        self.failures = 0  # consecutive failed streams: the backoff's attempt number
        self._up_since: float | None = None  # monotonic time of this stream's hello answer

    def wake(self) -> None:
        """New records are in the outbox (called from the pipeline thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self.failures = 0
        while not stop.is_set():
            self._up_since = None
            try:
                await self._connection(stop)
                self.failures = 0
            except StreamEndedError as exc:
                self._failed(exc.fatal)
                log.log(logging.ERROR if exc.fatal else logging.WARNING,
                        "uplink: %s; reconnecting (attempt %d)", exc, self.failures)  # fmt: skip
            except Exception:  # a disk error or a bug must not stop the uplink for good
                self._failed(False)
                log.exception("uplink: unexpected error; reconnecting (attempt %d)", self.failures)
            self._set_connected(False)
            if stop.is_set():
                break
            metrics.UPLINK_RECONNECTS.inc()
            self._fail_over()
            rounds = (max(self.failures, 1) - 1) // len(self.addresses) + 1  # all addresses failed
            delay = backoff_delay(rounds, self._cfg.reconnect_initial_s,
                                  self._cfg.reconnect_max_s)  # fmt: skip
            await _wait(stop, delay)

    def _failed(self, fatal: bool) -> None:
        """Count a failed stream; one that had stayed up `reconnect_max_s` was healthy, so the
        count starts again from it. Fatal (credentials, identity): straight to the ceiling."""
        up = self._up_since
        if up is not None and time.monotonic() - up >= self._cfg.reconnect_max_s:
            self.failures = 0
        self.failures = 64 if fatal else self.failures + 1

    def _fail_over(self) -> None:
        """Move to the next address (several configured); counted and logged."""
        if len(self.addresses) < 2:
            return
        was = self.addresses[self.current]
        self.current = (self.current + 1) % len(self.addresses)
        metrics.UPLINK_FAILOVERS.inc()
        log.warning("uplink: stream to %s failed; failing over to %s", was,
                    self.addresses[self.current])  # fmt: skip

    async def _connection(self, stop: asyncio.Event) -> None:
        channel = open_channel(self._cfg, self.addresses[self.current])
        try:
            call = channel.stream_stream(
                STREAM_METHOD, request_serializer=None, response_deserializer=None
            )(metadata=call_metadata(self._cfg))
            await self._session(call, stop)
        except grpc.aio.AioRpcError as exc:
            await self._set_aside(exc)
            raise StreamEndedError(_describe(exc), exc.code() in _CONFIG_CODES) from None
        except TimeoutError:
            raise StreamEndedError(f"no answer to hello within {HELLO_TIMEOUT_S:.0f}s") from None
        finally:
            await channel.close(grace=None)

    async def _set_aside(self, exc: grpc.aio.AioRpcError) -> None:
        """A record the cloud refused as invalid is dropped (counted), or it would block forever."""
        meta = dict(exc.trailing_metadata() or ())
        camera, seq = str(meta.get("vau-reject-camera", "")), str(meta.get("vau-reject-seq", ""))
        if exc.code() != grpc.StatusCode.INVALID_ARGUMENT or not camera or not seq.isdigit():
            return
        reason = str(meta.get("vau-reject-reason", "invalid"))
        if int(seq) and await asyncio.to_thread(self._outbox.reject, camera, int(seq), reason):
            metrics.UPLINK_REJECTED.labels(reason).inc()

    async def _session(self, call: grpc.aio.StreamStreamCall, stop: asyncio.Event) -> None:
        hello = codec.hello(self._device, self._cameras, self._outbox.epoch, self._version)
        await call.write(codec.serialize(hello))
        async with asyncio.timeout(HELLO_TIMEOUT_S):
            resume = await self._read(call)
        if not isinstance(resume, codec.Resume):
            raise StreamEndedError(f"expected the cloud's hello answer, got {resume!r}")
        flight = await self._resume(resume)
        self._up_since = time.monotonic()
        self._set_connected(True)
        log.info("uplink connected to %s as %s; resuming after %s",
                 self.addresses[self.current], resume.device_id, resume.after)  # fmt: skip
        reader = asyncio.create_task(self._acks(call, flight))
        stopper = asyncio.create_task(stop.wait())
        sender = asyncio.create_task(self._send(call, flight, stop))
        tasks = (reader, sender, stopper)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this session is cancelled: no task outlives it, none unawaited
            for task in tasks:
                task.cancel()
            ended = await asyncio.gather(*tasks, return_exceptions=True)
            call.cancel()
        errors = [e for e in ended if isinstance(e, Exception)]  # a cancelled task's is not one
        if errors:  # what ended the stream (reader and sender can both fail as it dies)
            raise errors[0]

    async def _resume(self, resume: codec.Resume) -> _Flight:
        limit = min(self._cfg.max_in_flight, resume.max_in_flight or self._cfg.max_in_flight)
        flight = _Flight(limit=limit)
        epoch = self._outbox.epoch
        for camera in self._cameras:
            after = resume.after.get(camera, 0)
            flight.cursor[camera] = after
            if after:  # acked before the last stream died: drop them here too
                await asyncio.to_thread(self._outbox.ack, camera, epoch, after)
        return flight

    async def _send(
        self, call: grpc.aio.StreamStreamCall, flight: _Flight, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            wait = flight.paused_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            room = flight.limit - flight.count()
            sent = await self._send_some(call, flight, room) if room > 0 else 0
            if sent == 0:
                self._wakeup.clear()
                await _wait(self._wakeup, IDLE_POLL_S)

    async def _send_some(self, call: grpc.aio.StreamStreamCall, flight: _Flight, room: int) -> int:
        sent = 0
        for camera in self._cameras:
            batch = await asyncio.to_thread(
                self._outbox.pending, camera, flight.cursor.get(camera, 0), min(room - sent, BATCH)
            )
            for rec in batch:
                data = codec.serialize(codec.record_message(camera, rec.epoch, rec.seq, rec.body))
                await call.write(data)
                flight.sent(camera, rec.seq)
                metrics.UPLINK_BYTES.inc(len(data))
                metrics.UPLINK_RECORDS_SENT.labels(camera, rec.kind).inc()
                sent += 1
            if sent >= room:
                break
        return sent

    async def _acks(self, call: grpc.aio.StreamStreamCall, flight: _Flight) -> None:
        while True:
            msg = await self._read(call)
            if isinstance(msg, codec.Acked):
                self.failures = 0  # a commit made it through: this stream is healthy
                flight.acked(msg.camera, msg.seq)
                await asyncio.to_thread(self._outbox.ack, msg.camera, msg.epoch, msg.seq)
                self._wakeup.set()
            elif isinstance(msg, codec.Pause):
                log.warning("uplink: cloud asks to pause %.1fs (%s)", msg.seconds, msg.reason)
                flight.paused_until = time.monotonic() + msg.seconds

    async def _read(
        self, call: grpc.aio.StreamStreamCall
    ) -> codec.Resume | codec.Acked | codec.Pause | None:
        data = await call.read()
        if data is grpc.aio.EOF:
            raise StreamEndedError("the cloud closed the stream")
        return codec.parse_cloud(bytes(data))

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        metrics.UPLINK_CONNECTED.set(1 if up else 0)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` pass, whichever comes first."""
    # asyncio.timeout, not wait_for: on 3.11 wait_for can hang a task that is being cancelled.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


def _describe(exc: grpc.aio.AioRpcError) -> str:
    """One line for the log: status, details and the cloud's reject metadata if any."""
    trailing = dict(exc.trailing_metadata() or ())
    reject = {k: trailing[k] for k in REJECT_KEYS if k in trailing}
    extra = f" {reject}" if reject else ""
    return f"{exc.code().name}: {exc.details()}{extra}"
