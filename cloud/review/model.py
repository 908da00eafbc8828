"""The review page's domain values: a filter as parsed from a query string, an event's frames as
read from its stored window, and their JSON shapes.

Times: `since` / `until` filter on the event's last change (`updated`, UNIX seconds, the order
events are listed in); `start` / `end` / `t` are seconds since the camera's stream started, as the
edge sends them. Ids and limits are checked by the Query service's own rules (`query.model`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vau.cloud.query.model import EventView, QueryError, list_limit, optional_id
from vau.cloud.storage.event_repository import StoredWindow

FILTER_KEYS = ("device", "camera", "since", "until", "limit")


@dataclass(frozen=True, slots=True)
class EventFilter:
    device: str | None
    camera: str | None
    since: float | None  # UNIX seconds, inclusive
    until: float | None  # UNIX seconds, inclusive
    limit: int

    def contains(self, updated: float) -> bool:
        return (self.since is None or updated >= self.since) and (
            self.until is None or updated <= self.until
        )


@dataclass(frozen=True, slots=True)
class FrameCells:
    """One frame the edge sent for the event: its scores and where, on the patch grid."""

    seq: int
    t: float  # seconds since stream start
    score: float  # the frame's anomaly score
    smoothed: float  # what the edge's event tracker followed
    normality: float | None  # None: the edge has no normality model
    kept: tuple[int, ...]  # patch indices SETS kept (changed most), ascending
    hot: tuple[int, ...]  # the most anomalous patches, most anomalous first; () = none


@dataclass(frozen=True, slots=True)
class EventDetail:
    view: EventView
    window: StoredWindow | None  # None: the event is open or its window has not arrived
    grid: tuple[int, int] | None  # (rows, cols); None when no frame was found
    frames: tuple[FrameCells, ...]  # oldest first


def parse_filter(query: Mapping[str, str]) -> EventFilter:
    """A query string's filter; QueryError("invalid") naming the parameter otherwise."""
    unknown = sorted(set(query) - set(FILTER_KEYS))
    if unknown:
        raise QueryError(
            "invalid", f"unknown parameter {unknown[0]!r}; use {', '.join(FILTER_KEYS)}"
        )
    since, until = _time(query, "since"), _time(query, "until")
    if since is not None and until is not None and since > until:
        raise QueryError("invalid", "since is after until; swap them")
    return EventFilter(
        device=optional_id(query.get("device", ""), "device"),
        camera=optional_id(query.get("camera", ""), "camera"),
        since=since,
        until=until,
        limit=_limit(query.get("limit", "")),
    )


def _limit(text: str) -> int:
    if not text:
        return list_limit(0)
    if not text.isdigit() or int(text) < 1:
        raise QueryError("invalid", f"limit {text[:20]!r} must be a whole number from 1")
    return list_limit(int(text))


def _time(query: Mapping[str, str], key: str) -> float | None:
    """UNIX seconds or an ISO 8601 time (UTC unless it names its offset)."""
    text = query.get(key, "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            value = math.nan
        else:
            value = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(value):
        raise QueryError("invalid", f"{key} {text[:40]!r} must be UNIX seconds or an ISO 8601 time")
    return value


def event_json(v: EventView) -> dict[str, Any]:
    e = v.event
    return {
        "device": e.device,
        "camera": e.camera,
        "event_id": e.event_id,
        "state": e.state,
        "start": e.start,
        "end": e.end,
        "peak": e.peak,
        "peak_t": e.peak_t,
        "prior": e.prior,
        "updated": e.updated,
        "title": None if v.explanation is None else v.explanation.title,
        "explanation": None if v.explanation is None else v.explanation.fields(),
    }


def detail_json(d: EventDetail) -> dict[str, Any]:
    w = d.window
    return {
        "event": event_json(d.view),
        "window": None
        if w is None
        else {"start": w.start, "end": w.end, "frame_seqs": list(w.frame_seqs)},
        "grid": None if d.grid is None else list(d.grid),
        "frames": [
            {
                "seq": f.seq,
                "t": f.t,
                "score": f.score,
                "smoothed": f.smoothed,
                "normality": f.normality,
                "kept": list(f.kept),
                "hot": list(f.hot),
            }
            for f in d.frames
        ],
    }
