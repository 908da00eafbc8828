"""ATS — Anomaly-focused Temporal Sampler (Holmes-VAU, CVPR 2025), and event windows.

Treat (score + tau) as probability mass over an event's frames, take `n` points evenly spaced on the
cumulative axis and map each back to a frame: dense anomalous stretches get many frames, normal
stretches still get a few for context. With <= n frames, or total score < 1, sample uniformly.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from vau.edge.settings import AtsSettings
from vau.edge.types import F32, I64, EventState, EventUpdate, FrameScore, Window


def uniform(length: int, n: int) -> I64:
    """n evenly spaced indices over [0, length), unique and ascending (all when length <= n)."""
    if length <= n:
        return np.arange(length, dtype=np.int64)
    return np.unique(np.linspace(0, length - 1, n).round().astype(np.int64))


def ats_sample(scores: F32, n: int, tau: float = 0.1) -> I64:
    """Indices into `scores` chosen by ATS: unique, ascending, in [0, len(scores))."""
    length = int(scores.shape[0])
    if length <= n or float(scores.sum()) < 1.0:
        return uniform(length, n)
    mass = np.clip(scores, 0.0, None).astype(np.float64) + tau
    cdf = np.cumsum(mass) / mass.sum()
    points = (np.arange(n, dtype=np.float64) + 0.5) / n
    idx = np.searchsorted(cdf, points, side="left")
    return np.unique(np.clip(idx, 0, length - 1)).astype(np.int64)


class WindowBuilder:
    """Remembers recent frame scores; turns each ended event into a Window of ATS-chosen frames."""

    def __init__(self, cfg: AtsSettings, history_frames: int = 36_000) -> None:
        self._cfg = cfg
        self._history: deque[FrameScore] = deque(maxlen=history_frames)

    def observe(self, score: FrameScore) -> None:
        self._history.append(score)

    def on_event(self, update: EventUpdate) -> Window | None:
        if update.state is not EventState.END or update.end is None:
            return None
        frames = [s for s in self._history if update.start <= s.t <= update.end]
        if not frames:
            return None
        scores = np.array([s.smoothed for s in frames], dtype=np.float32)
        chosen = ats_sample(scores, self._cfg.frames, self._cfg.tau)
        return Window(
            event_id=update.id,
            start=update.start,
            end=update.end,
            seqs=tuple(frames[i].seq for i in chosen),
            prior=update.prior,
        )
