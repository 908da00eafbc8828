"""Edge records of one event -> language-space facts, and the deterministic decisions on them.

Pure functions. The edge has no classifier yet, so the category is the camera's configured one (or
"other"); the anomaly flag and threat level follow from the score curve, never from the LLM.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from vau.cloud.explain.schema import OTHER
from vau.cloud.explain.settings import ExplainSettings

_ROWS = ("upper", "centre", "lower")
_COLS = ("left", "centre", "right")
_NUMBER = re.compile(r"(?<![A-Za-z])-?\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class FrameEvidence:
    t: float  # seconds since stream start
    score: float  # smoothed anomaly score
    indices: tuple[int, ...]  # kept (changed) patch indices on the grid
    grid: tuple[int, int]  # (rows, cols)
    hot: tuple[int, ...] = ()  # the edge's most anomalous patches, most anomalous first; () = none


@dataclass(frozen=True, slots=True)
class EventEvidence:
    camera: str
    event_id: str
    start: float
    end: float | None  # None: still open (early trigger)
    peak: float
    peak_t: float
    prior: str
    frames: tuple[FrameEvidence, ...] = ()
    baseline: float | None = None  # the camera's mean score before the event (score summaries)


@dataclass(frozen=True, slots=True)
class Facts:
    start: float
    end: float
    duration: float
    peak: float
    peak_t: float
    mean_inside: float | None
    baseline: float | None
    regions: tuple[tuple[str, float], ...]  # (name, share of the patches counted), largest first
    hot: bool  # regions count the edge's hot patches (where the anomaly is), else the kept ones
    changed: float | None  # mean share of the frame's patches the edge kept as changed
    frames: int
    ended: bool


@dataclass(frozen=True, slots=True)
class Decision:
    anomaly: bool
    category: str
    threat_level: int
    confidence: float


def region_name(index: int, grid: tuple[int, int]) -> str:
    """The 3x3 named region ("upper left", "centre", ...) of a patch index on a rows x cols grid."""
    rows, cols = grid
    r, c = divmod(index, cols)
    name_r, name_c = _ROWS[min(2, r * 3 // rows)], _COLS[min(2, c * 3 // cols)]
    return "centre" if name_r == name_c == "centre" else f"{name_r} {name_c}"


def region_shares(frames: Sequence[FrameEvidence]) -> tuple[tuple[str, float], ...]:
    """Share per named region of the patches that say where the event is, largest first (ties by
    name): the hot patches (where the anomaly is) when any frame carries them, else all kept
    patches (what changed)."""
    use_hot = any(f.hot for f in frames)
    counts: Counter[str] = Counter()
    for f in frames:
        counts.update(region_name(i, f.grid) for i in (f.hot if use_hot else f.indices))
    total = sum(counts.values())
    if total == 0:
        return ()
    return tuple(sorted(((n, c / total) for n, c in counts.items()), key=lambda x: (-x[1], x[0])))


def facts(ev: EventEvidence) -> Facts:
    end = ev.end if ev.end is not None else max([ev.peak_t, *(f.t for f in ev.frames)])
    inside = [f.score for f in ev.frames if ev.start <= f.t <= end]
    changed = [len(f.indices) / (f.grid[0] * f.grid[1]) for f in ev.frames]
    return Facts(
        start=ev.start,
        end=end,
        duration=max(0.0, end - ev.start),
        peak=ev.peak,
        peak_t=ev.peak_t,
        mean_inside=sum(inside) / len(inside) if inside else None,
        baseline=ev.baseline,
        regions=region_shares(ev.frames),
        hot=any(f.hot for f in ev.frames),
        changed=sum(changed) / len(changed) if changed else None,
        frames=len(ev.frames),
        ended=ev.end is not None,
    )


def decide(f: Facts, camera: str, settings: ExplainSettings) -> Decision:
    """Anomaly = peak >= threshold; category = the camera's configured one or "other"; threat 0
    when normal, 2 for a high peak or a long event, else 1; confidence = the peak score."""
    anomaly = f.peak >= settings.threshold
    ctx = settings.cameras.get(camera)
    category = ctx.category if ctx is not None and ctx.category else OTHER
    if not anomaly:
        threat = 0
    elif f.peak >= settings.high_threshold or f.duration >= settings.long_event_s:
        threat = 2
    else:
        threat = 1
    return Decision(anomaly, category, threat, round(min(1.0, max(0.0, f.peak)), 2))


def evidence_lines(f: Facts) -> list[str]:
    """The facts as short sentences; every number an explanation may quote appears here."""
    span = f"from {f.start:.1f}s to {f.end:.1f}s" if f.ended else f"since {f.start:.1f}s"
    lines = [
        f"The anomaly score rose {span} ({f.duration:.1f} seconds).",
        f"The score peaked at {f.peak:.2f} at {f.peak_t:.1f}s.",
    ]
    if f.mean_inside is not None:
        before = f" against {f.baseline:.2f} before" if f.baseline is not None else ""
        lines.append(f"The mean score during the event was {f.mean_inside:.2f}{before}.")
    if f.regions:
        top = ", ".join(f"{name} ({share:.0%})" for name, share in f.regions[:3])
        what = "The most anomalous patches were" if f.hot else "Most change was"
        lines.append(f"{what} in the {top} of the frame.")
    if f.changed is not None:
        lines.append(f"{f.frames} frames were sent; {f.changed:.0%} of each frame changed.")
    return lines


def numbers(text: str) -> set[float]:
    """Every number written in `text` (percent signs dropped), as floats."""
    return {float(m) for m in _NUMBER.findall(text)}


def unfaithful_numbers(reply: str, evidence: str) -> set[float]:
    """Numbers in `reply` that the evidence does not contain (empty = faithful)."""
    return numbers(reply) - numbers(evidence)
