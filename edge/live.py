"""Live sources: a camera or network stream read by a thread into a newest-wins buffer, with
jittered exponential backoff when the stream fails."""

from __future__ import annotations

import logging
import random
import threading
import time

import cv2

from vau.edge import capture as cap_mod
from vau.edge.capture import FrameSource, SourceError, SourceKind, SourceSpec, grab, try_open
from vau.edge.metrics import FRAMES_DROPPED, FRAMES_READ, SOURCE_RECONNECTS, SOURCE_UP
from vau.edge.sampling import FrameBuffer
from vau.edge.settings import SourceSettings
from vau.edge.types import U8, Frame

log = logging.getLogger("vau.edge.sources")

JITTER = 0.2  # backoff delays vary by +-20 %


def backoff_delay(
    attempt: int, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before reconnect `attempt` (1-based): initial * 2^(attempt-1), jittered
    by +-JITTER, never above `maximum`."""
    base = min(maximum, initial * 2.0 ** min(attempt - 1, 64))
    jitter = (rng or random).uniform(1.0 - JITTER, 1.0 + JITTER)
    return min(maximum, base * jitter)


class LiveSource(FrameSource):
    """A camera or network stream read by a thread into a newest-wins buffer.

    `t` is seconds on the monotonic clock since the first frame and keeps running across
    reconnects, so downstream sees an outage as a jump in `t`; `seq` counts every frame read,
    so gaps in `seq` are frames dropped on overrun. Once reconnecting is given up, `next()`
    raises the SourceError.
    """

    live = True

    def __init__(self, spec: SourceSpec, cfg: SourceSettings, camera: str) -> None:
        super().__init__(spec, camera)
        self._cfg = cfg
        self._stop = threading.Event()
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
        frame = None if self._closed else self._buffer.get()
        if frame is None:
            raise StopIteration
        return frame

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

    def _open_first(self) -> tuple[cv2.VideoCapture, U8]:
        opened = try_open(self._spec)
        if opened is None and self._spec.kind is SourceKind.CAMERA:
            raise SourceError(
                f"camera {self._spec.target} could not be opened; list devices with "
                "`v4l2-ctl --list-devices` or pass --source"
            )
        if opened is None:
            log.warning("%s: cannot connect; retrying", self.describe())
            opened = self._reconnect()
        if opened is None:
            raise SourceError(f"{self.describe()}: closed while connecting")
        SOURCE_UP.labels(camera=self._camera).set(1)
        return opened

    def _reconnect(self) -> tuple[cv2.VideoCapture, U8] | None:
        """Reopen with backoff; None when stopped, SourceError after too many failures."""
        SOURCE_UP.labels(camera=self._camera).set(0)
        cfg, failures = self._cfg, 0
        while True:
            delay = backoff_delay(failures + 1, cfg.reconnect_initial_s, cfg.reconnect_max_s)
            if self._stop.wait(delay):
                return None
            SOURCE_RECONNECTS.labels(camera=self._camera).inc()
            opened = try_open(self._spec)
            if opened is not None:
                log.info("%s: connected after %d attempt(s)", self.describe(), failures + 1)
                return opened
            failures += 1
            if cfg.reconnect_attempts and failures >= cfg.reconnect_attempts:
                raise SourceError(
                    f"{self.describe()} unreachable after {failures} reconnect attempt(s); check "
                    "the URL, the network, the camera's credentials, or --source"
                )
            log.warning("%s: reconnect attempt %d failed", self.describe(), failures)

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
