"""Frame sources: a camera index, a video file or an RTSP/HTTP stream, read with OpenCV.

`open_source` classifies the URI and opens it, probing the first frame, so a wrong source fails at
start-up with a `SourceError` saying what to fix. Files yield every frame, `t` = position in the
video. Live sources (`vau.edge.live`) run a reader thread into a newest-wins `FrameBuffer`, stamp
frames with a monotonic clock and reconnect with jittered exponential backoff. `sampled` thins to a
target fps.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

import cv2

from vau.edge.capture import (
    FALLBACK_FPS,
    FrameSource,
    SourceCancelledError,
    SourceError,
    SourceKind,
    SourceSpec,
    classify,
    grab,
    redact_uri,
    try_open,
)
from vau.edge.live import LiveSource, backoff_delay
from vau.edge.metrics import FRAMES_DROPPED, FRAMES_READ
from vau.edge.sampling import FrameBuffer, Sampler, sampled
from vau.edge.settings import SourceSettings
from vau.edge.types import U8, Frame

__all__ = [
    "FALLBACK_FPS",
    "FileSource",
    "FrameBuffer",
    "FrameSource",
    "LiveSource",
    "Sampler",
    "SourceCancelledError",
    "SourceError",
    "SourceKind",
    "SourceSpec",
    "backoff_delay",
    "classify",
    "file_seconds",
    "open_source",
    "redact_uri",
    "sampled",
]

log = logging.getLogger(__name__)


class FileSource(FrameSource):
    """Every frame of a video file; `t` is the frame's position in the video."""

    live = False

    def __init__(self, spec: SourceSpec, camera: str) -> None:
        super().__init__(spec, camera)
        path = Path(str(spec.target))
        if not path.is_file():
            raise SourceError(f"no such file {path}; check --source (file, camera index or URL)")
        opened = try_open(spec)
        if opened is None:
            raise SourceError(
                f"cannot decode {path}: not a video OpenCV can read (corrupt, empty or an "
                "unsupported codec); check --source or convert it with ffmpeg"
            )
        self._cap = opened[0]
        self._pending: U8 | None = opened[1]
        self._start(self._cap, opened[1])
        self._count = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        self._index = 0
        self._last_t = -math.inf

    def __next__(self) -> Frame:
        image = self._pending if self._pending is not None else self._read()
        self._pending = None
        if image is None:
            self.close()
            raise StopIteration
        frame = Frame(self._index, self._timestamp(), time.time(), image)
        self._index += 1
        FRAMES_READ.labels(camera=self._camera).inc()
        return frame

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cap.release()

    def _read(self) -> U8 | None:
        if self._closed:
            return None
        image = grab(self._cap)
        if image is not None:
            return image
        if self._index < self._count:
            FRAMES_DROPPED.labels(camera=self._camera, reason="decode").inc()
            log.warning(
                "%s: frame %d of %d could not be decoded; stopping there (file corrupt or "
                "truncated?)", self.describe(), self._index, self._count
            )  # fmt: skip
        return None

    def _timestamp(self) -> float:
        """POS_MSEC of the frame just read when sane (finite, increasing), else index / fps."""
        pos = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        sane = math.isfinite(pos) and pos >= 0.0 and (self._index == 0 or pos > self._last_t)
        t = pos if sane else max(self._index / self._fps, self._last_t + 1.0 / self._fps)
        self._last_t = t
        return t


def file_seconds(path: Path) -> float | None:
    """A video file's length as its container states it (frames / fps); None when it does not."""
    cap = cv2.VideoCapture(str(path))
    try:
        count, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    ok = count > 0 and fps > 0 and math.isfinite(count / fps)
    return count / fps if ok else None


def open_source(
    cfg: SourceSettings,
    camera: str,
    sample_path: Path | None = None,
    stop: threading.Event | None = None,
) -> FrameSource:
    """Open the source `cfg.uri` names; raises SourceError saying what to fix, or
    SourceCancelledError when `stop` is set before a live source connects (a live source also ends
    its frames on `stop`)."""
    spec = classify(cfg.uri, sample_path)
    source: FrameSource
    if spec.kind is SourceKind.FILE:
        source = FileSource(spec, camera)
    else:
        source = LiveSource(spec, cfg, camera, stop)
    log.info("opened %s: %dx%d at %.2f fps", source.describe(), *source.size, source.fps)
    return source
