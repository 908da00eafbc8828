"""`vau-edge eval`'s report on hand-made traces: what the pooled and the per-camera AUC say."""

from __future__ import annotations

from pathlib import Path

from vau.edge.evaluate import ClipTrace, score_report
from vau.edge.manifest import Clip
from vau.edge.settings import EventSettings


def trace(
    camera: str, kind: str, scores: list[float], span: tuple[float, float] | None
) -> ClipTrace:
    """A clip of `camera` scored `scores` at 0.5 s a frame; its span, if any, in seconds."""
    spans = (span,) if span else ()
    clip = Clip(Path(f"{camera}-{kind}.avi"), spans, kind, "test", camera)
    t = [0.5 * k for k in range(len(scores))]
    return ClipTrace(clip, t, {"fused": scores}, lookahead=0)


def test_when_cameras_score_on_different_scales_then_each_separates_but_pooled_does_not() -> None:
    """Camera a's normal frames score 0.1 and its intruder 0.3; camera b's normal frames score
    0.5 (as high as an anomaly on a) and its intruder 0.7. Within each camera every span frame
    is above every other frame (1.0); pooled with one threshold, a's span frames sit under b's
    normal ones."""
    traces = [
        trace("a", "normal", [0.1] * 8, None),
        trace("a", "intruder", [0.1, 0.1, 0.3, 0.3, 0.3, 0.1, 0.1, 0.1], (1.0, 2.5)),
        trace("b", "normal", [0.5] * 8, None),
        trace("b", "intruder", [0.5, 0.5, 0.7, 0.7, 0.7, 0.5, 0.5, 0.5], (1.0, 2.5)),
    ]
    report = score_report(traces, "fused", EventSettings(), heldout=())
    assert report["camera_auc"] == {
        "a": {"tuned": 1.0, "heldout": None},
        "b": {"tuned": 1.0, "heldout": None},
    }
    pooled = report["pooled_auc"]["tuned"]
    assert pooled is not None and pooled < 0.9  # b's normal frames tie with or beat a's span
    assert report["auc"]["intruder"] == pooled
