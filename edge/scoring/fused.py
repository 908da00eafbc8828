"""The `fused` scorer: the TETG head and the camera's normality model, calibrated alike.

The head's probability is calibrated like any part of the normality model — on the same camera's
held-out normal frames, as a logit (`normality.fit.head_logit`) — so its 0.6 means what the
normality model's 0.6 means: the same distance past the edge of this camera's normal. The fused
score is the largest calibrated part (`model.combine`, the static part weighted up, the global part
left out): an anomaly that either sees is raised, and each part's false alarms are bounded by its
own calibration. Before a model exists (online warm-up) the head's raw probability is the score.
When the head was changed after the model was learnt, its calibration no longer applies and its raw
probability is used (logged once).
"""

from __future__ import annotations

from vau.edge.analysers import Analysis
from vau.edge.normality.fit import head_logit
from vau.edge.normality.model import combine
from vau.edge.normality.online import OnlineNormality
from vau.edge.scoring.base import Judgement


class FusedScorer:
    name = "fused"

    def __init__(self, source: OnlineNormality) -> None:
        self._source = source

    def judge(self, analysis: Analysis) -> Judgement:
        scored = self._source.observe(analysis)
        if scored is None:
            return Judgement(score=analysis.score, components=(("head", analysis.score),))
        head = self._head(analysis.score)
        parts = {"head": head, **scored.parts}
        return Judgement(
            score=combine(parts),
            normality=scored.score,
            components=tuple(parts.items()),
            anomaly_map=scored.anomaly_map,
            hot=scored.hot,
        )

    def _head(self, p: float) -> float:
        calib = self._source.head_calibration()
        return p if calib is None else float(calib.score(head_logit(p)))

    def settle(self, t: float, event_open: bool) -> None:
        self._source.settle(t, event_open)

    def close(self) -> None:
        self._source.close()
