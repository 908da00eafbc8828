"""The ingest log's writer handle on one dedicated thread, with group commit across streams.

The event loop never waits on fsync: every store call runs on the store's own thread. Commits from
concurrent streams that arrive while a transaction is in progress are merged into the next one
(one fsync for all of them); each stream still gets its own `CommitResult`, and acks only after
the transaction that holds its records has committed.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from vau.cloud.records import AcceptedRecord
from vau.cloud.storage.factory import Storage
from vau.cloud.storage.ingest_log import CommitResult, StoredRecord

T = TypeVar("T")
P = ParamSpec("P")

_Pending = tuple[Sequence[AcceptedRecord], "asyncio.Future[CommitResult]"]


class AsyncStore:
    """Create and use on one event loop; `close()` after the server has stopped."""

    def __init__(self, storage: Storage) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vau-store")
        self._store = self._pool.submit(storage.ingest_log).result()
        self.description = storage.description
        self.on_commit: list[Callable[[Sequence[AcceptedRecord]], None]] = []  # sync, never block
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def commit(self, records: Sequence[AcceptedRecord]) -> CommitResult:
        """Durable when this returns (possibly in one transaction with other streams' records)."""
        future: asyncio.Future[CommitResult] = asyncio.get_running_loop().create_future()
        self._pending.append((records, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                results = await self._run(
                    self._store.commit_many, [records for records, _ in group], time.time()
                )
            except Exception as exc:  # each waiting stream fails on its own
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():  # a cancelled stream's records are durable all the same
                    future.set_result(result)
            accepted = [r for result in results for r in result.accepted]
            for hook in self.on_commit if accepted else ():
                hook(accepted)

    async def resume_after(self, device: str, epoch: int, cameras: Sequence[str]) -> dict[str, int]:
        return await self._run(self._store.resume_after, device, epoch, cameras)

    async def records(
        self, device: str, camera: str, epoch: int, after_seq: int = 0, limit: int = 1000
    ) -> list[StoredRecord]:
        return await self._run(self._store.records, device, camera, epoch, after_seq, limit)

    async def stats(self) -> dict[str, Any]:
        return await self._run(self._store.stats)

    def close(self) -> None:
        """Checkpoint and close on the store thread, after every queued write."""
        self._pool.submit(self._store.close).result()
        self._pool.shutdown(wait=True)
