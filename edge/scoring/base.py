"""One interface for frame scorers: the model stage's output -> the frame's anomaly score.

`head` (the TETG head, supervised), `normality` (the camera's own normality model, label-free) and
`fused` (both, calibrated on the camera's normal footage) each live in one file; `factory` picks one
from `normality.scorer`. A scorer may keep per-stream state (the online normality model learns and
adapts); the pipeline tells it after each frame whether an event is open (`settle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vau.edge.analysers import Analysis
from vau.edge.types import F32


@dataclass(frozen=True, eq=False)
class Judgement:
    """One frame's scores."""

    score: float  # the final score in [0, 1], what the event tracker smooths
    normality: float | None = None  # the normality model's calibrated score; None without one
    components: tuple[tuple[str, float], ...] = ()  # calibrated parts, e.g. ("head", 0.1)
    anomaly_map: F32 | None = None  # (N,) per patch: > 1 is beyond the edge of normal
    hot: tuple[int, ...] = ()  # most anomalous patches, most anomalous first


class FrameScorer(Protocol):
    @property
    def name(self) -> str: ...

    def judge(self, analysis: Analysis) -> Judgement: ...

    def settle(self, t: float, event_open: bool) -> None:
        """After the event tracker saw the frame at `t`: whether an event is open now."""
        ...

    def close(self) -> None: ...
