"""A scorer that scores with another and shows each frame's analysis and judgement to a callback.

For the commands that need more than the pipeline's records (learn keeps the patches, eval the
head's raw probability, bench-bandwidth the anomaly maps) without wiring the stages again.
"""

from __future__ import annotations

from collections.abc import Callable

from vau.edge.analysers import Analysis
from vau.edge.scoring.base import FrameScorer, Judgement


class Tap:
    def __init__(self, inner: FrameScorer, see: Callable[[Analysis, Judgement], None]) -> None:
        self._inner, self._see = inner, see

    @property
    def name(self) -> str:
        return self._inner.name

    def judge(self, analysis: Analysis) -> Judgement:
        judged = self._inner.judge(analysis)
        self._see(analysis, judged)
        return judged

    def settle(self, t: float, event_open: bool) -> None:
        self._inner.settle(t, event_open)

    def close(self) -> None:
        self._inner.close()
