"""OpenCV capture primitives shared by file and live sources: what a URI names, how to open it,
how to read one frame, and the FrameSource interface both kinds of source implement."""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from vau.edge.types import U8, Frame

log = logging.getLogger("vau.edge.sources")

STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})
FALLBACK_FPS = 25.0  # when the container or device reports no usable frame rate
MAX_SANE_FPS = 240.0
OPEN_TIMEOUT_S = 10.0  # FFmpeg network streams: connect / open
READ_TIMEOUT_S = 5.0  # FFmpeg network streams: one blocked read
_SECRET_QUERY_KEYS = frozenset(
    {"password", "passwd", "pass", "pwd", "token", "access_token", "auth", "key", "apikey",
     "api_key", "secret", "signature", "sig", "user", "username"}
)  # fmt: skip


class SourceError(Exception):
    """The source cannot deliver frames; the message says what to check."""


class SourceCancelledError(Exception):
    """A stop was requested while a live source was still connecting (like asyncio.CancelledError:
    a request, not a failure)."""


class SourceKind(StrEnum):
    CAMERA = "camera"
    STREAM = "stream"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class SourceSpec:
    kind: SourceKind
    target: int | str  # camera index, file path or URL (may hold credentials: never log it)

    def describe(self) -> str:
        target = redact_uri(self.target) if isinstance(self.target, str) else str(self.target)
        return f"{self.kind} {target}"


def classify(uri: str, sample_path: Path | None = None) -> SourceSpec:
    """Decide what `uri` names: camera index, network stream, the bundled sample or a file."""
    text = uri.strip()
    if text.isascii() and text.isdigit():
        return SourceSpec(SourceKind.CAMERA, int(text))
    if urlsplit(text).scheme.lower() in STREAM_SCHEMES:
        return SourceSpec(SourceKind.STREAM, text)
    if text == "sample":
        if sample_path is None:
            raise SourceError(
                "source 'sample' needs the bundled footage; run `vau-models pull --only footage` "
                "or pass --source PATH"
            )
        return SourceSpec(SourceKind.FILE, str(sample_path))
    return SourceSpec(SourceKind.FILE, str(Path(text).expanduser()))


def redact_uri(uri: str) -> str:
    """`uri` without `user:pass@` and with secret-looking query values masked, for logs."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return uri
    host = parts.netloc.rpartition("@")[2]
    query = "&".join(_redact_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, parts.fragment))


def _redact_pair(pair: str) -> str:
    key, sep, _value = pair.partition("=")
    return f"{key}=***" if sep and key.lower() in _SECRET_QUERY_KEYS else pair


class FrameSource(ABC, Iterator[Frame]):
    """An iterator of Frames over one source; a context manager; `close()` is idempotent.

    `live`: frames come from a clock, not a file; `fps`: native frame rate (container or device,
    else FALLBACK_FPS); `size`: (width, height); `describe()`: kind and URI without credentials.
    """

    live: ClassVar[bool]

    def __init__(self, spec: SourceSpec, camera: str) -> None:
        self._spec = spec
        self._camera = camera
        self._fps = FALLBACK_FPS
        self._size = (0, 0)
        self._closed = False

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def describe(self) -> str:
        return self._spec.describe()

    def __iter__(self) -> Self:
        return self

    @abstractmethod
    def __next__(self) -> Frame: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _start(self, cap: cv2.VideoCapture, image: U8) -> None:
        self._fps = native_fps(cap, self.describe())
        self._size = (int(image.shape[1]), int(image.shape[0]))


def capture(spec: SourceSpec) -> cv2.VideoCapture:
    if spec.kind is SourceKind.STREAM:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(OPEN_TIMEOUT_S * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(READ_TIMEOUT_S * 1000),
        ]  # fmt: skip
        return cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG, params)
    return cv2.VideoCapture(spec.target)


def try_open(spec: SourceSpec) -> tuple[cv2.VideoCapture, U8] | None:
    """An opened capture and its first frame, or None when either fails."""
    cap = capture(spec)
    image = grab(cap) if cap.isOpened() else None
    if image is not None:
        return cap, image
    cap.release()
    return None


def native_fps(cap: cv2.VideoCapture, what: str) -> float:
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    if math.isfinite(fps) and 0.0 < fps <= MAX_SANE_FPS:
        return fps
    log.info("%s reports no usable frame rate (%s); assuming %.0f fps", what, fps, FALLBACK_FPS)
    return FALLBACK_FPS


def grab(cap: cv2.VideoCapture) -> U8 | None:
    """The next frame as (H, W, 3) BGR uint8 (grey and BGRA devices converted), or None."""
    ok, image = cap.read()
    if not ok or image is None:
        return None
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.asarray(image, dtype=np.uint8)
