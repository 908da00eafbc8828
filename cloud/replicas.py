"""Which replica does the singleton work: the roles of `vau.cloud.storage.leases` held over time.

`Roles` asks the store's leases for every role it does not hold, at start and then every
`replicas.lease_check_s`, and checks that the ones it holds are still its own. Each change calls
the role's listeners on the event loop (`on_change(role, listener)`): a component starts its
singleton work when its role is taken and stops it when the role is lost, so at most one replica
runs it at a time (up to one check period of overlap when a live replica's database session
breaks: the work is idempotent or bounded; docs/storage.md). Every take and every loss is counted
(`vau_cloud_lease_acquired_total{role}`, `vau_cloud_lease_lost_total{role}`) and logged.
All lease calls run on one worker thread (a database connection stays on its thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from vau.cloud.metrics import CloudMetrics
from vau.cloud.storage.factory import Storage, store_errors
from vau.cloud.storage.leases import Leases

log = logging.getLogger("vau.cloud.replicas")
Listener = Callable[[bool], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Replica:
    """What the explainer needs to know of the replica it runs in: its name (the owner of its
    claims), how long a claim holds, where claim outcomes are counted, and whether it holds the
    `retention` role. The default is a lone process (claims always its own)."""

    name: str = "local"
    claim_s: float = 300.0
    counted: Callable[[str], None] = lambda outcome: None
    retains: Callable[[], bool] = lambda: True


class Roles:
    def __init__(
        self, storage: Storage, roles: Iterable[str], check_s: float, metrics: CloudMetrics
    ) -> None:
        self.storage, self.roles, self.check_s = storage, tuple(roles), check_s
        self.metrics = metrics
        self.held: set[str] = set()
        self._listeners: dict[str, list[Listener]] = {r: [] for r in self.roles}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vau-leases")
        self._leases: Leases | None = None
        self._task: asyncio.Task[None] | None = None

    def holds(self, role: str) -> bool:
        return role in self.held

    def on_change(self, role: str, listener: Listener) -> None:
        """Call `listener(True)` when this replica takes `role`, `listener(False)` on a loss."""
        self._listeners[role].append(listener)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def start(self) -> None:
        """Open the leases and try every role once (so a lone replica holds them at once)."""
        self._leases = await self._call(self.storage.leases)
        await self.round()
        self._task = asyncio.create_task(self._run(), name="vau-leases")

    async def stop(self) -> None:
        """Stop checking and give every role back (closing the session frees them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._leases is not None:
            await self._call(self._leases.close)
        for role in sorted(self.held):
            self.metrics.lease_held.labels(role).set(0)
            log.info("lease released: %s", role)
        self.held.clear()
        self._pool.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            await self.round()

    async def round(self) -> None:
        """Check the held roles, then try to take the free ones; tell listeners of changes."""
        try:
            still, taken = await self._call(self._round)
        except store_errors() as exc:
            log.warning("lease check failed (%s); retrying in %.1f s", exc, self.check_s)
            return
        for role in sorted(self.held - still):
            self.held.discard(role)
            self.metrics.lease_lost.labels(role).inc()
            self.metrics.lease_held.labels(role).set(0)
            log.warning("lease lost: %s (its database session ended); stopping that work", role)
            await self._tell(role, False)
        for role in sorted(taken):
            self.held.add(role)
            self.metrics.lease_acquired.labels(role).inc()
            self.metrics.lease_held.labels(role).set(1)
            log.info("lease acquired: %s (%s)", role, self.storage.description)
            await self._tell(role, True)

    def _round(self) -> tuple[set[str], set[str]]:
        assert self._leases is not None
        still = self._leases.check(self.held)
        taken: set[str] = set()
        try:
            for role in self.roles:
                if role not in still and self._leases.acquire(role):
                    taken.add(role)
        except store_errors() as exc:  # the database is unreachable: try again next round
            log.warning("cannot take a free role (%s); retrying in %.1f s", exc, self.check_s)
        return still, taken

    async def _tell(self, role: str, held: bool) -> None:
        for listener in self._listeners[role]:
            try:
                await listener(held)
            except Exception:
                log.exception("the %s role's listener failed (held=%s)", role, held)


def replica_name() -> str:
    """This process, as the owner of its explanation claims and in logs: host/pid."""
    return f"{socket.gethostname()}/{os.getpid()}"


def replica_of(roles: Roles, claim_s: float) -> Replica:
    """The explainer's view of this replica: claims counted in the roles' metrics, retention
    while it holds the `retention` role."""
    claims = roles.metrics.explain_claims
    return Replica(
        replica_name(), claim_s, lambda outcome: claims.labels(outcome).inc(),
        lambda: roles.holds("retention"),
    )  # fmt: skip
