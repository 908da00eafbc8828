"""Admission control: how many streams, one per device, and how fast each device may send.

- At most `max_streams` devices stream at once; one more -> RESOURCE_EXHAUSTED ("streams").
- One active stream per device: a newer stream stops the older one (its TCP connection may be
  half-dead), which ends with ABORTED; counted in `vau_cloud_streams_superseded_total`.
- A stream whose token is revoked while it is open is stopped like a superseded one, but ends
  with UNAUTHENTICATED (see `auth.CredentialWatch`).
- Rate: a token bucket per device (`per_device_records_per_s`, `burst`), kept across its streams.
  A record that finds the bucket empty is still taken, and the device gets FlowControl{pause_ms}
  (the time the bucket needs to refill `min(burst, max_in_flight)` records). During the pause,
  up to `max_in_flight` more records are tolerated (they were on the wire before the pause
  arrived); one more -> RESOURCE_EXHAUSTED ("rate").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from vau.cloud.metrics import CloudMetrics
from vau.cloud.records import AdmissionError, AuthError, PauseOut, StreamStoppedError
from vau.cloud.settings import LimitSettings

StopReason = Literal["superseded", "shutdown", "revoked"]
REVOKED = "the device's token was revoked or rotated; connect again with its current token"
SUPERSEDE_WAIT_S = 2.0  # then the old handler is cancelled (e.g. blocked writing to a dead peer)


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    stamp: float  # loop time of the last refill

    def take(self, now: float) -> float:
        """Take one token (the balance may go negative); seconds until the balance is >= 0."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate) - 1.0
        self.stamp = now
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass(slots=True)
class RateGate:
    """The per-stream view of a device's bucket."""

    bucket: TokenBucket
    allowance: int  # records tolerated during a pause
    refill: float  # tokens a pause should restore
    paused_until: float = 0.0
    over: int = 0

    def admit(self, now: float) -> PauseOut | None:
        """None to go on, a pause to send, or AdmissionError("rate")."""
        if self.bucket.take(now) == 0.0:
            return None
        if now < self.paused_until:
            self.over += 1
            if self.over > self.allowance:
                raise AdmissionError("rate", "device kept sending during FlowControl pause")
            return None
        wait = (self.refill - self.bucket.tokens) / self.bucket.rate
        self.paused_until, self.over = now + wait, 0
        return PauseOut(max(1, math.ceil(wait * 1000)), "rate")


@dataclass(slots=True)
class Lease:
    """One admitted stream. `stopped` is set when the server wants it to end."""

    device: str
    bucket: TokenBucket
    handler: asyncio.Task[object] | None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    reason: StopReason | None = None

    def stop(self, reason: StopReason) -> None:
        self.reason = self.reason or reason
        self.stopped.set()

    def check(self) -> None:
        if self.reason == "revoked":
            raise AuthError("unauthenticated", REVOKED)
        if self.reason is not None:
            raise StreamStoppedError(self.reason)


class Admission:
    def __init__(self, limits: LimitSettings, metrics: CloudMetrics) -> None:
        self.limits, self.metrics = limits, metrics
        self._leases: dict[str, Lease] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._closing = False

    @property
    def active(self) -> int:
        return len(self._leases)

    async def claim(self, device: str) -> Lease:
        """Admit a stream of `device`, stopping its older stream; AdmissionError when full."""
        if self._closing:
            raise StreamStoppedError("shutdown")
        old = self._leases.get(device)
        if old is None and len(self._leases) >= self.limits.max_streams:
            raise AdmissionError("streams", f"server at max_streams={self.limits.max_streams}")
        lease = Lease(device, self._bucket(device), asyncio.current_task())
        self._leases[device] = lease
        self.metrics.streams_active.set(len(self._leases))
        if old is not None:
            self.metrics.streams_superseded.inc()
            try:
                await _end(old)
            except BaseException:  # cancelled while waiting: this stream never started
                self.release(lease)
                raise
        return lease

    def release(self, lease: Lease) -> None:
        if self._leases.get(lease.device) is lease:
            del self._leases[lease.device]
        self.metrics.streams_active.set(len(self._leases))
        lease.finished.set()

    def gate(self, lease: Lease) -> RateGate:
        refill = float(min(self.limits.burst, self.limits.max_in_flight))
        return RateGate(lease.bucket, self.limits.max_in_flight, refill)

    def stop_task(self, handler: asyncio.Task[object] | None, reason: StopReason) -> None:
        """Ask the stream admitted from `handler` (if it was admitted yet) to end."""
        for lease in self._leases.values():
            if lease.handler is handler:
                lease.stop(reason)

    def stop_all(self) -> None:
        """Refuse new streams; ask every open one to finish its batch and end (UNAVAILABLE)."""
        self._closing = True
        for lease in list(self._leases.values()):
            lease.stop("shutdown")

    def _bucket(self, device: str) -> TokenBucket:
        found = self._buckets.get(device)
        if found is None:
            if len(self._buckets) > 4 * self.limits.max_streams:
                self._forget_idle()
            lim, now = self.limits, asyncio.get_running_loop().time()
            found = TokenBucket(lim.per_device_records_per_s, lim.burst, lim.burst, now)
            self._buckets[device] = found
        return found

    def _forget_idle(self) -> None:
        for device in [d for d in self._buckets if d not in self._leases]:
            del self._buckets[device]


async def _end(old: Lease) -> None:
    """Stop `old` and wait until its handler has returned (its last commit is then durable)."""
    old.stop("superseded")
    try:
        await asyncio.wait_for(old.finished.wait(), SUPERSEDE_WAIT_S)
    except TimeoutError:
        if old.handler is not None:
            old.handler.cancel()
        with contextlib.suppress(TimeoutError):  # its queued commit still precedes our reads
            await asyncio.wait_for(old.finished.wait(), SUPERSEDE_WAIT_S)


class AskRefusedError(Exception):
    """An Ask beyond its identity's or the server's limit: RESOURCE_EXHAUSTED, retry later."""

    def __init__(self, reason: Literal["identity", "server"], detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


class AskAdmission:
    """Per-identity admission for Query.Ask. Answers come from the explainer's one LLM worker, in
    order, between the explanations of ended events: each identity may have `per_identity` Asks
    in flight and the server `total`; one more is refused at once (never queued), so a flood
    from one identity adds at most `total` answers' time to anyone else's explanation."""

    def __init__(
        self, per_identity: int, total: int, on_refuse: Callable[[str], None] = lambda _: None
    ) -> None:
        self.per_identity, self.total, self._on_refuse = per_identity, total, on_refuse
        self._in_flight: dict[str, int] = {}

    @property
    def in_flight(self) -> int:
        return sum(self._in_flight.values())

    def admit(self, identity: str) -> Callable[[], None]:
        """Take a slot for `identity`; the function that gives it back (once). AskRefusedError."""
        if self._in_flight.get(identity, 0) >= self.per_identity:
            self._refuse(
                "identity",
                f"{self.per_identity} Ask(s) of this identity are being answered; wait for "
                "them before asking more (limits.ask_per_identity)",
            )
        if self.in_flight >= self.total:
            self._refuse("server", f"{self.total} Asks are being answered; retry in a few seconds")
        self._in_flight[identity] = self._in_flight.get(identity, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                left = self._in_flight.pop(identity) - 1
                if left:
                    self._in_flight[identity] = left

        return release

    def _refuse(self, reason: Literal["identity", "server"], detail: str) -> NoReturn:
        self._on_refuse(reason)
        raise AskRefusedError(reason, detail)
