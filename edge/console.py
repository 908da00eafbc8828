"""What a person sees: log format (text on a terminal, JSON lines otherwise) and the status line."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO

from vau.edge.pipeline import RunStats

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, plus any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(fmt: str, level: int = logging.INFO, stream: IO[str] | None = None) -> None:
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter() if use_json else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class StatusLine:
    """A single refreshing line on a terminal; does nothing when stderr is not a terminal."""

    def __init__(self, stream: IO[str] | None = None, every_s: float = 0.5) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._every = every_s
        self._last = 0.0

    def __call__(self, stats: RunStats) -> None:
        now = time.monotonic()
        if not self._enabled or now - self._last < self._every:
            return
        self._last = now
        ms = stats.times.ms_per_frame()
        state = f"event {stats.open_event}" if stats.open_event else "no event"
        line = (
            f"frames {stats.frames} | {stats.fps():.1f} fps | encoder {ms['encoder']:.0f} ms | "
            f"score {stats.last_score:.2f} | {state} | events {stats.events_new}"
        )
        self._stream.write("\r\x1b[2K" + line)
        self._stream.flush()

    def finish(self) -> None:
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()
