"""Live sources: a camera or network stream read by a thread into a newest-wins buffer, with
jittered exponential backoff when the stream fails.

Stopping: `close()` or the run's stop event ends connecting, reconnecting and waiting for a frame
within about STOP_POLL_S; an FFmpeg open still blocked (up to OPEN_TIMEOUT_S on a host that does
not answer) is left to finish on its own thread, which releases what it opened. The first
connection gives up after `source.first_connect_timeout_s` (a mistyped URL is a user error); a
stream that has delivered frames reconnects up to `source.reconnect_attempts` times (0 = for ever).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable

import cv2

from vau.edge import capture as cap_mod
from vau.edge.capture import (
    FrameSource,
    SourceCancelledError,
    SourceError,
    SourceKind,
    SourceSpec,
    grab,
    try_open,
)
from vau.edge.metrics import FRAMES_DROPPED, FRAMES_READ, SOURCE_RECONNECTS, SOURCE_UP
from vau.edge.sampling import FrameBuffer
from vau.edge.settings import SourceSettings
from vau.edge.types import U8, Frame

log = logging.getLogger("vau.edge.sources")

JITTER = 0.2  # backoff delays vary by +-20 %
STOP_POLL_S = 0.1  # how often waits look at the stop request

Opened = tuple[cv2.VideoCapture, U8]


def backoff_delay(
    attempt: int, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before reconnect `attempt` (1-based): initial * 2^(attempt-1), jittered
    by +-JITTER, never above `maximum`."""
    base = min(maximum, initial * 2.0 ** min(attempt - 1, 64))
    jitter = (rng or random).uniform(1.0 - JITTER, 1.0 + JITTER)
    return min(maximum, base * jitter)


class OpenAttempt:
    """One `try_open` on its own daemon thread, so that a stop need not wait for it.

    `wait(stopping)` returns the opened capture, or None when the open failed or `stopping()`
    turned true first; in that case a capture opened later is released by the thread itself.
    """

    def __init__(self, spec: SourceSpec) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._opened: Opened | None = None
        self._abandoned = False
        threading.Thread(
            target=self._open, args=(spec,), name="vau-source-open", daemon=True
        ).start()

    def wait(self, stopping: Callable[[], bool]) -> Opened | None:
        while not self._done.wait(STOP_POLL_S):
            if stopping():
                with self._lock:
                    self._abandoned = not self._done.is_set()
                    if self._abandoned:
                        return None
        return self._opened

    def _open(self, spec: SourceSpec) -> None:
        opened = try_open(spec)
        with self._lock:
            if self._abandoned and opened is not None:
                opened[0].release()
                opened = None
            self._opened = opened
            self._done.set()


class LiveSource(FrameSource):
    """A camera or network stream read by a thread into a newest-wins buffer.

    `t` is seconds on the monotonic clock since the first frame and keeps running across
    reconnects, so downstream sees an outage as a jump in `t`; `seq` counts every frame read,
    so gaps in `seq` are frames dropped on overrun. Once reconnecting is given up, `next()`
    raises the SourceError. `run_stop` (the run's stop request) ends connecting and waiting for
    frames like `close()` does: a stop before the first frame raises SourceCancelledError.
    """

    live = True

    def __init__(
        self,
        spec: SourceSpec,
        cfg: SourceSettings,
        camera: str,
        run_stop: threading.Event | None = None,
    ) -> None:
        super().__init__(spec, camera)
        self._cfg = cfg
        self._stop = threading.Event()
        self._run_stop = run_stop or self._stop
        self._buffer = FrameBuffer(cfg.buffer_frames)
        self._seq = 0
        cap, image = self._open_first()
        self._start(cap, image)
        self._origin = time.monotonic()
        self._publish(image)
        self._thread = threading.Thread(
            target=self._run, args=(cap,), name=f"vau-source-{camera}", daemon=True
        )
        self._thread.start()

    def __next__(self) -> Frame:
        while not self._closed and not self._stopping():
            frame = self._buffer.get(STOP_POLL_S)
            if frame is None and self._buffer.closed:
                frame = self._buffer.get(0)  # one put just before closing; or the reader's error
                if frame is None:
                    break
            if frame is not None:
                return frame
        raise StopIteration

    def close(self) -> None:
        """Stop the reader; waits at most about one read timeout for a blocked read."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._buffer.close()
        self._thread.join(cap_mod.READ_TIMEOUT_S + 1.0)
        if self._thread.is_alive():
            log.warning("%s: reader still blocked in a read; it exits on its own", self.describe())

    def _stopping(self) -> bool:
        return self._stop.is_set() or self._run_stop.is_set()

    def _stopped_within(self, seconds: float) -> bool:
        """Wait up to `seconds`; True as soon as a stop is requested."""
        deadline = time.monotonic() + seconds
        while not self._stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._stop.wait(min(left, STOP_POLL_S))
        return True

    def _attempt(self) -> Opened | None:
        """One open, None when it fails or a stop is requested meanwhile."""
        opened = OpenAttempt(self._spec).wait(self._stopping)
        if opened is not None and self._stopping():
            opened[0].release()
            return None
        return opened

    def _open_first(self) -> Opened:
        timeout = self._cfg.first_connect_timeout_s
        give_up_at = time.monotonic() + timeout if timeout else math.inf
        opened = self._attempt()
        if opened is None and self._spec.kind is SourceKind.CAMERA and not self._stopping():
            raise SourceError(
                f"camera {self._spec.target} could not be opened; list devices with "
                "`v4l2-ctl --list-devices` or pass --source"
            )
        if opened is None and not self._stopping():
            shown = f"{timeout:g} s" if timeout else "ever"
            log.warning("%s: cannot connect; retrying for up to %s", self.describe(), shown)
            opened = self._reconnect(give_up_at)
        if opened is None:
            raise SourceCancelledError(f"stopped while connecting to {self.describe()}")
        SOURCE_UP.labels(camera=self._camera).set(1)
        return opened

    def _reconnect(self, give_up_at: float = math.inf) -> Opened | None:
        """Reopen with backoff; None when stopped, SourceError once it is time to give up."""
        SOURCE_UP.labels(camera=self._camera).set(0)
        cfg, failures = self._cfg, 0
        while True:
            delay = backoff_delay(failures + 1, cfg.reconnect_initial_s, cfg.reconnect_max_s)
            if self._stopped_within(min(delay, max(0.0, give_up_at - time.monotonic()))):
                return None
            SOURCE_RECONNECTS.labels(camera=self._camera).inc()
            opened = self._attempt()
            if opened is not None:
                log.info("%s: connected after %d attempt(s)", self.describe(), failures + 1)
                return opened
            if self._stopping():
                return None
            failures += 1
            self._give_up_if_due(failures, give_up_at)
            log.warning("%s: reconnect attempt %d failed", self.describe(), failures)

    def _give_up_if_due(self, failures: int, give_up_at: float) -> None:
        cfg = self._cfg
        if cfg.reconnect_attempts and failures >= cfg.reconnect_attempts:
            raise SourceError(
                f"{self.describe()} unreachable after {failures} reconnect attempt(s); check "
                "the URL, the network, the camera's credentials, or --source"
            )
        if time.monotonic() >= give_up_at:
            raise SourceError(
                f"{self.describe()}: no connection within {cfg.first_connect_timeout_s:g} s "
                f"({failures + 1} attempts); check the URL (host, port, path), that the camera "
                "is on and reachable, and its credentials (or raise "
                "source.first_connect_timeout_s)"
            )

    def _run(self, cap: cv2.VideoCapture) -> None:
        try:
            self._pump(cap)
        except SourceError as exc:
            log.error("%s", exc)
            self._buffer.close(exc)
        except Exception as exc:  # a reader must not die silently: surface it to the consumer
            log.exception("%s: reader failed", self.describe())
            self._buffer.close(SourceError(f"{self.describe()}: reader failed: {exc}"))
        finally:
            SOURCE_UP.labels(camera=self._camera).set(0)
            self._buffer.close()

    def _pump(self, cap: cv2.VideoCapture) -> None:
        self._cap = cap  # owned by the reader thread from here on
        try:
            while not self._stop.is_set():
                image = grab(self._cap)
                if image is not None:
                    self._publish(image)
                elif not self._recover():
                    return
        finally:
            self._cap.release()

    def _recover(self) -> bool:
        log.warning("%s: read failed; reconnecting", self.describe())
        self._cap.release()
        opened = self._reconnect()
        if opened is None:
            return False
        self._cap = opened[0]
        SOURCE_UP.labels(camera=self._camera).set(1)
        self._publish(opened[1])
        return True

    def _publish(self, image: U8) -> None:
        t = time.monotonic() - self._origin
        frame = Frame(self._seq, t, time.time(), image)
        self._seq += 1
        FRAMES_READ.labels(camera=self._camera).inc()
        if self._buffer.put(frame):
            FRAMES_DROPPED.labels(camera=self._camera, reason="overrun").inc()
