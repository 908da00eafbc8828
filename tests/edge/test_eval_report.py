"""`vau-edge eval`'s report on hand-made traces: what the pooled and the per-camera AUC say."""

from __future__ import annotations

from pathlib import Path

from vau.edge.evaluate import ClipTrace, eval_report, fusion_check, score_report
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


def scored(kind: str, fused: list[float], static: list[float], span: bool) -> ClipTrace:
    clip = Clip(Path(f"{kind}.avi"), ((1.0, 2.5),) if span else (), kind, "test", "cam-0")
    t = [0.5 * k for k in range(len(fused))]
    return ClipTrace(clip, t, {"fused": fused, "static": static}, lookahead=0)


def test_the_report_says_which_kinds_a_part_alone_ranks_better_than_the_fused_score() -> None:
    """A bag: the static part puts its span frames above every other frame, the fused score
    below a normal frame's noise. A fire: the fused score does better than the part."""
    traces = [
        scored("normal", [0.1, 0.5, 0.1, 0.2, 0.1, 0.1], [0.0] * 6, span=False),
        scored("abandoned", [0.1, 0.1, 0.3, 0.3, 0.3, 0.1], [0.0, 0.0, 0.4, 0.4, 0.4, 0.0], True),
        scored("fire", [0.1, 0.1, 0.9, 0.9, 0.9, 0.1], [0.0, 0.0, 0.0, 0.3, 0.3, 0.0], True),
    ]
    report = eval_report("made", traces, EventSettings(), heldout=("abandoned", "fire"))
    check = report["fusion"]
    bag, fire = check["kinds"]["abandoned"], check["kinds"]["fire"]
    assert bag["best_alone"] == "static" and bag["best_alone_auc"] == 1.0
    assert not bag["fused_at_least_each"] and bag["gap"] == round(1.0 - bag["fused"], 4)
    assert fire["fused_at_least_each"] and fire["gap"] == 0.0 and fire["fused"] == 1.0
    assert check["short"] == ["abandoned"]
    assert set(check["pooled"]) == {"tuned", "heldout"} and check["pooled"]["tuned"] is None
    assert fusion_check({k: v for k, v in report["scorers"].items() if k != "fused"}) == {}
