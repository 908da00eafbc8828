"""The `head` scorer: the TETG head's probability, as the model stage computed it."""

from __future__ import annotations

from vau.edge.analysers import Analysis
from vau.edge.scoring.base import Judgement


class HeadScorer:
    name = "head"

    def judge(self, analysis: Analysis) -> Judgement:
        return Judgement(score=analysis.score, components=(("head", analysis.score),))

    def settle(self, t: float, event_open: bool) -> None:
        pass

    def close(self) -> None:
        pass
