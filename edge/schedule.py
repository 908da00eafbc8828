"""Frames of many cameras into one model stage, fairly.

Each camera's frames are read by its own `Feed`: a thread that pulls the camera's frame iterator
(decoding, and for a live source its newest-wins buffer and reconnects) into a small queue. A file
waits for room, so nothing is dropped; a live source keeps its own newest-wins buffer, which counts
what it drops (`vau_edge_frames_dropped_total{camera}`), so a slow model stage costs a live camera
frames, never the others their turn.

`fair_batches` takes the ready frames round robin, starting one camera further on each batch, so a
camera that always has a frame ready cannot starve one that has a frame now and then. A batch holds
what is ready (it never waits to fill), at most `per_camera` frames of one camera.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from vau.edge.types import Frame

log = logging.getLogger(__name__)

QUEUE_FRAMES = 2  # frames read ahead per camera
IDLE_WAIT_S = 0.05  # how long the scheduler sleeps when no camera has a frame


@dataclass(frozen=True, slots=True)
class Arrival:
    """A frame as the scheduler received it."""

    camera: int  # index of the camera in the scheduler's list
    frame: Frame
    arrived: float  # monotonic time it left its source


class Ready(Protocol):
    """What `fair_batches` needs of a camera's feed."""

    index: int

    @property
    def ended(self) -> bool: ...

    def poll(self) -> Arrival | None: ...


class Feed:
    """One camera's frames, read on a thread. `error` holds what ended it, if it failed."""

    def __init__(
        self, index: int, name: str, frames: Iterable[Frame], ready: threading.Event
    ) -> None:
        self.index = index
        self.name = name
        self.error: Exception | None = None
        self.decode_s = 0.0  # time spent waiting on the source (decoding, live pacing)
        self._frames = frames
        self._ready = ready
        self._queue: queue.Queue[Arrival | None] = queue.Queue(QUEUE_FRAMES)
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name=f"vau-feed-{name}", daemon=True)
        self._thread.start()

    @property
    def ended(self) -> bool:
        """True once the source is exhausted (or failed, or was stopped) and its queue is empty."""
        return self._ended

    def poll(self) -> Arrival | None:
        """The next frame if one is ready, else None (see `ended`)."""
        if self._ended:
            return None
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            return None
        if item is None:
            self._ended = True
        return item

    def stop(self) -> None:
        """Stop reading; frames already queued are dropped."""
        self._stop.set()
        self._ended = True
        while True:  # unblock a reader waiting for room
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        it = iter(self._frames)
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                frame = next(it, None)
                self.decode_s += time.perf_counter() - t0
                if frame is None:
                    break
                self._put(Arrival(self.index, frame, time.monotonic()))
        except Exception as exc:  # the camera fails, not the process: the scheduler decides
            self.error = exc
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # a generator's `with` blocks release the source now, on this thread
            self._put(None)

    def _put(self, item: Arrival | None) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            self._ready.set()
            return


def fair_batches(
    feeds: Sequence[Ready],
    ready: threading.Event,
    size: int,
    per_camera: int,
    stop: threading.Event,
) -> Iterator[list[Arrival]]:
    """Batches of ready frames, round robin over the feeds, until every feed has ended or `stop`
    is set. A feed is skipped once its camera has had `per_camera` frames in the batch."""
    start = 0
    while not stop.is_set() and not all(f.ended for f in feeds):
        ready.clear()
        batch = _gather(feeds, start, size, per_camera)
        start = (start + 1) % max(len(feeds), 1)
        if batch:
            yield batch
        else:
            ready.wait(IDLE_WAIT_S)


def _gather(feeds: Sequence[Ready], start: int, size: int, per_camera: int) -> list[Arrival]:
    batch: list[Arrival] = []
    taken = [0] * len(feeds)
    order = [feeds[(start + i) % len(feeds)] for i in range(len(feeds))]
    progress = True
    while progress and len(batch) < size:
        progress = False
        for feed in order:
            if len(batch) == size or taken[feed.index] >= per_camera:
                continue
            arrival = feed.poll()
            if arrival is not None:
                batch.append(arrival)
                taken[feed.index] += 1
                progress = True
    return batch
