"""Where pipeline results go. A sink receives frames, event changes and windows, in stream order.

`JsonlSink` writes the scripts' contract: one JSON object per line, `kind` = frame | event | window,
each with its `camera`. The cameras of one process share one `JsonlFile`, each through its own
`JsonlSink`. The uplink (cloud) is another sink with the same three methods.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any, Protocol

from vau.edge.types import EffectiveTokens, EventUpdate, FrameScore, Window


class Sink(Protocol):
    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None: ...
    def event(self, update: EventUpdate) -> None: ...
    def window(self, window: Window) -> None: ...
    def close(self) -> None: ...


def frame_record(camera: str, tokens: EffectiveTokens, score: FrameScore) -> dict[str, Any]:
    return {
        "kind": "frame",
        "camera": camera,
        "seq": tokens.seq,
        "t": round(tokens.t, 4),
        "score": round(score.score, 6),
        "smoothed": round(score.smoothed, 6),
        "kept": tokens.kept,
        "patches": tokens.patches,
        "keyframe": tokens.keyframe,
        "indices": tokens.indices.tolist(),
        "normality": None if score.normality is None else round(score.normality, 6),
        "hot": list(score.hot),
        "components": {k: round(v, 6) for k, v in score.components},
        "pixel_change": None if score.pixel_change is None else round(score.pixel_change, 4),
        "brightness": None if score.brightness is None else round(score.brightness, 4),
        "detail": None if score.detail is None else round(score.detail, 4),
    }


def event_record(camera: str, update: EventUpdate) -> dict[str, Any]:
    return {
        "kind": "event",
        "camera": camera,
        "id": update.id,
        "state": update.state.value,
        "start": round(update.start, 4),
        "end": None if update.end is None else round(update.end, 4),
        "peak": round(update.peak, 6),
        "peak_t": round(update.peak_t, 4),
        "prior": update.prior,
    }


def window_record(camera: str, window: Window) -> dict[str, Any]:
    return {
        "kind": "window",
        "camera": camera,
        "event": window.event_id,
        "start": round(window.start, 4),
        "end": round(window.end, 4),
        "seqs": list(window.seqs),
    }


class JsonlFile:
    """One JSONL file, line-buffered so a reader (`tail -f`) sees each record as it happens.

    Shared by the cameras of a process; records are written whole, one line at a time."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("w", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(line)

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


class JsonlSink:
    """One camera's records into a `JsonlFile` (closing the sink leaves the file to its owner)."""

    def __init__(self, file: JsonlFile, camera: str) -> None:
        self._file = file
        self._camera = camera

    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None:
        self._file.write(frame_record(self._camera, tokens, score))

    def event(self, update: EventUpdate) -> None:
        self._file.write(event_record(self._camera, update))

    def window(self, window: Window) -> None:
        self._file.write(window_record(self._camera, window))

    def close(self) -> None:
        pass
