"""Which frames reach the encoder: the two drop policies between a source and the model.

`FrameBuffer` hands live frames from a reader thread to the consumer, bounded, newest frame wins
(drops are 'overrun'). `Sampler` keeps the frames that land on a fixed time grid of 1 / target
fps (drops are 'sampling'); it reads only each frame's `t`, so it is deterministic for files (a
10 fps file sampled at 2 fps keeps t = 0.0, 0.5, 1.0, ...) and works the same on a live source's
monotonic clock.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from typing import Protocol

from vau.edge.metrics import FRAMES_DROPPED
from vau.edge.pixels import PixelMeter
from vau.edge.types import Frame

_SLOT_TOLERANCE = 1e-3  # share of a slot a frame may come early and still fill it (float noise)


class FrameBuffer:
    """Bounded hand-off from a reader thread to a consumer; when full the oldest frame is dropped.

    `get` returns the oldest waiting frame, None once closed and drained (or on timeout); if
    closed with an error, that error is raised after the waiting frames are drained.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.dropped = 0
        self._frames: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._error: Exception | None = None

    def __len__(self) -> int:
        with self._cond:
            return len(self._frames)

    @property
    def closed(self) -> bool:
        """True once `close` was called (frames may still wait to be drained)."""
        with self._cond:
            return self._closed

    def put(self, frame: Frame) -> bool:
        """Add `frame`; True when an older waiting frame had to be discarded to make room."""
        with self._cond:
            if self._closed:
                return False
            overrun = len(self._frames) >= self.capacity
            if overrun:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(frame)
            self._cond.notify()
            return overrun

    def get(self, timeout: float | None = None) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._frames or self._closed, timeout)
            if self._frames:
                return self._frames.popleft()
            if self._error is not None:
                raise self._error
            return None

    def close(self, error: Exception | None = None) -> None:
        with self._cond:
            if not self._closed:
                self._closed, self._error = True, error
            self._cond.notify_all()


class TimedFrames(Protocol):
    """What `sampled` needs of a source: frames in time order and the native frame rate."""

    @property
    def fps(self) -> float: ...

    def __iter__(self) -> Iterator[Frame]: ...


class Sampler:
    """Decides, frame by frame, which frames to keep to hit `target_fps`.

    Slots lie at origin + k / target_fps, origin being the first frame's t. A frame is kept when
    its t reaches the next open slot; the slot after it is then the first slot past that t, so a
    gap in the stream (a reconnect, a stall) does not cause a burst of catch-up frames.
    """

    def __init__(self, target_fps: float, native_fps: float | None = None) -> None:
        if not target_fps > 0:
            raise ValueError(f"target fps must be positive, got {target_fps}")
        self.target_fps = target_fps
        self.keep_all = native_fps is not None and target_fps >= native_fps
        self.kept = 0
        self.skipped = 0
        self._period = 1.0 / target_fps
        self._tolerance = _SLOT_TOLERANCE * self._period
        self._origin: float | None = None
        self._slot = 0

    def keep(self, t: float) -> bool:
        """True when the frame at `t` (seconds) is kept; counts both outcomes."""
        if self.keep_all or self._origin is None or t >= self._slot_time() - self._tolerance:
            if self._origin is None:
                self._origin = t
            self._slot = self._slot_after(t)
            self.kept += 1
            return True
        self.skipped += 1
        return False

    def _slot_time(self) -> float:
        assert self._origin is not None
        return self._origin + self._slot * self._period

    def _slot_after(self, t: float) -> int:
        assert self._origin is not None
        return math.floor((t - self._origin + self._tolerance) / self._period) + 1


def sampled(
    source: TimedFrames, target_fps: float, camera: str, meter: PixelMeter | None = None
) -> Iterator[Frame]:
    """The frames of `source` that the sampler keeps, each with what the pixels of every frame
    since the previous one kept say (`meter`, a new `pixels.PixelMeter` by default: speed, view
    change and still pixels); the others count as dropped ('sampling')."""
    sampler = Sampler(target_fps, source.fps)
    meter = meter or PixelMeter()
    dropped = FRAMES_DROPPED.labels(camera=camera, reason="sampling")
    for frame in source:
        meter.add(frame.image, frame.t)
        if sampler.keep(frame.t):
            reading = meter.take()
            yield replace(
                frame,
                flow=reading.flow,
                pixel_change=reading.pixel_change,
                brightness=reading.brightness,
                detail=reading.detail,
                still=reading.still,
            )
        else:
            dropped.inc()
