"""Where pipeline results go. A sink receives frames, event changes and windows, in stream order.

`JsonlSink` writes the scripts' contract: one JSON object per line, `kind` = frame | event | window.
The uplink (cloud) is another sink with the same three methods.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Protocol

from vau.edge.types import EffectiveTokens, EventUpdate, FrameScore, Window


class Sink(Protocol):
    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None: ...
    def event(self, update: EventUpdate) -> None: ...
    def window(self, window: Window) -> None: ...
    def close(self) -> None: ...


def frame_record(tokens: EffectiveTokens, score: FrameScore) -> dict[str, Any]:
    return {
        "kind": "frame",
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
    }


def event_record(update: EventUpdate) -> dict[str, Any]:
    return {
        "kind": "event",
        "id": update.id,
        "state": update.state.value,
        "start": round(update.start, 4),
        "end": None if update.end is None else round(update.end, 4),
        "peak": round(update.peak, 6),
        "peak_t": round(update.peak_t, 4),
        "prior": update.prior,
    }


def window_record(window: Window) -> dict[str, Any]:
    return {
        "kind": "window",
        "event": window.event_id,
        "start": round(window.start, 4),
        "end": round(window.end, 4),
        "seqs": list(window.seqs),
    }


class JsonlSink:
    """Line-buffered so a reader (`tail -f`) sees each record as it happens."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("w", encoding="utf-8", buffering=1)

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None:
        self._write(frame_record(tokens, score))

    def event(self, update: EventUpdate) -> None:
        self._write(event_record(update))

    def window(self, window: Window) -> None:
        self._write(window_record(window))

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
