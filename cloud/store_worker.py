"""`StoreWorker`: the lifecycle shared by the cloud's background workers that tail or prune the
store (the event projector, ingest retention, the explainer).

A worker runs `_run` as one task on the server's loop and does its store work on ONE thread of its
own, in order (`_call`): SQLite connections stay on the thread that opened them. `start` opens the
worker's handles on that thread (`_open`), then starts the task; `stop` sets `_stopping` and
`_wake`, awaits the task, closes the handles on the thread (`_close`) and shuts the thread down.
`_run` loops until `_stopping` and sleeps on `_wake` (or on `_stopping`) between passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class StoreWorker:
    """`start`/`stop` on the server's loop; subclasses give `_run`, and `_open`/`_close` (run on
    the worker thread) where they hold handles."""

    def __init__(self, thread_name: str, task_name: str) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=thread_name)
        self._task_name = task_name
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def start(self) -> None:
        await self._call(self._open)
        self._launch()

    def _launch(self) -> None:
        """Start `_run` (for a worker that opens nothing at start, in place of `start`)."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self._task_name)

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._call(self._close)
        self._pool.shutdown(wait=True)

    async def _run(self) -> None:
        raise NotImplementedError  # the worker's loop, until `_stopping`

    # ----- on the worker thread -----------------------------------------------------------

    def _open(self) -> None:
        """Open the worker's handles (nothing by default)."""

    def _close(self) -> None:
        """Close the worker's handles (nothing by default)."""
