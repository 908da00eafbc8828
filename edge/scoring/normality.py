"""The `normality` scorer: the camera's normality model alone (label-free).

Its score is the largest calibrated part (`model.combine`; the global part is reported, not fused).
With online learning the model may not exist yet: while the camera warms up, frames score 0 and
carry no normality.
"""

from __future__ import annotations

from vau.edge.analysers import Analysis
from vau.edge.normality.online import OnlineNormality
from vau.edge.scoring.base import Judgement


class NormalityScorer:
    name = "normality"

    def __init__(self, source: OnlineNormality) -> None:
        self._source = source

    def judge(self, analysis: Analysis) -> Judgement:
        scored = self._source.observe(analysis)
        if scored is None:
            return Judgement(score=0.0)
        return Judgement(
            score=scored.score,
            normality=scored.score,
            components=tuple(scored.parts.items()),
            anomaly_map=scored.anomaly_map,
            hot=scored.hot,
        )

    def settle(self, t: float, event_open: bool) -> None:
        self._source.settle(t, event_open)

    def close(self) -> None:
        self._source.close()
