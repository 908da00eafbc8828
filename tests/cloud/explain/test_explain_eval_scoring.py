"""How `vau-cloud eval-explanations` scores one clip's explanation against what was drawn."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from support_explain import ScriptedLlm

from vau.cloud.explain import edge_cache
from vau.cloud.explain.chain import CloudEvent, explain_all
from vau.cloud.explain.eval_cli import (
    ClipEvents,
    _Condition,
    _Tally,
    _tally,
    evaluate,
    score_clip,
)
from vau.cloud.explain.evidence import EventEvidence
from vau.cloud.explain.explainer import Explainer, ExplainResult
from vau.cloud.explain.schema import Explanation
from vau.cloud.explain.settings import ExplainSettings
from vau.edge.types import EventState, EventUpdate


def event(start: float, end: float) -> CloudEvent:
    update = EventUpdate("ev", EventState.END, start, end, 0.9, start + 1, "prior")
    return CloudEvent(update, EventEvidence("cam", "ev", start, end, 0.9, start + 1, "p"), ())


def result(**fields: Any) -> ExplainResult:
    base = dict(
        title="t", summary="s", anomaly=True, category="other", start=4.0, end=8.0,
        confidence=0.9, threat_level=1, llm="m", visual_tokens=False, fallback=True,
    )  # fmt: skip
    return ExplainResult(Explanation.model_validate(base | fields), "fallback", (), 0.1)


def clip(kind: str, truth: dict[str, Any], events: list[CloudEvent]) -> ClipEvents:
    return ClipEvents(kind, "cam", f"clips/cam/{kind}_00.avi", (4.0, 8.0), truth, events)


def test_the_clips_event_is_the_one_overlapping_its_span_most() -> None:
    c = clip("intruder", {}, [event(0.0, 4.5), event(5.0, 9.0), event(9.0, 12.0)])
    assert c.matched() == 1
    assert clip("intruder", {}, [event(9.0, 12.0)]).matched() is None


def test_fields_are_scored_only_where_the_drawing_says_something() -> None:
    truth = {"where": ["lower left"], "movement": "right", "view_change": False, "share": 0.05}
    tally = _Tally()
    good = result(where=("lower left", "centre"), movement="right", observed_category="Intrusion")
    score_clip(clip("intruder", truth, [event(4, 8)]), good, tally, heldout=False)
    bad = result(where=("upper right",), movement="none", view_change=True)
    score_clip(clip("intruder", truth, [event(4, 8)]), bad, tally, heldout=False)
    report = tally.report()
    assert {k: report[k]["accuracy"] for k in ("where", "movement", "view_change", "category")} == {
        "where": 0.5,
        "movement": 0.5,
        "view_change": 0.5,
        "category": 0.5,
    }
    assert report["span_iou"] == 1.0
    running = _Tally()  # nothing drawn: only the view change is known
    none = {"where": None, "movement": None, "view_change": False, "share": 0.0}
    score_clip(clip("running", none, [event(4, 8)]), result(), running, heldout=False)
    r = running.report()
    assert r["where"]["n"] == 0 and r["movement"]["n"] == 0 and r["view_change"]["n"] == 1


def test_a_held_out_kind_is_right_only_when_unknown() -> None:
    tally = _Tally()
    truth = {"where": [], "movement": "none", "view_change": True, "share": 0.9}
    score_clip(clip("lights", truth, [event(4, 8)]), result(), tally, heldout=True)
    score_clip(
        clip("lights", truth, [event(4, 8)]),
        result(observed_category="Camera Tamper"),
        tally,
        heldout=True,
    )
    assert tally.report()["category"] == {"accuracy": 0.5, "n": 2}
    assert np.isclose(tally.report()["span_iou"], 1.0)


def test_a_probe_kind_is_right_only_when_unknown_and_is_reported_as_its_own_group() -> None:
    """The tuning-only probe kinds are no class of the classifier (its outlier class)."""
    truth = {"where": ["upper left"], "movement": "none", "view_change": False, "share": 0.01}
    cond = _Condition(Explainer(ExplainSettings(), ScriptedLlm([])))
    for observed in ("unknown", "Intrusion"):
        explained = [result(observed_category=observed)]
        _tally(cond, clip("graffiti", truth, [event(4, 8)]), explained, False, 0)
    groups = cond.report()["groups"]
    assert groups["probe"]["category"] == {"accuracy": 0.5, "n": 2}
    assert groups["tuned"]["clips"] == 0 and groups["heldout"]["clips"] == 0


def test_a_condition_reports_why_replies_were_refused_and_tokens_per_second() -> None:
    llm = ScriptedLlm(["Alert", "It lasted 99 minutes.", "A", "[x]"])
    cond = _Condition(Explainer(ExplainSettings(), llm))
    ev = EventEvidence("cam", "ev", 4.0, 8.0, 0.92, 5.0, "p")
    update = EventUpdate("ev", EventState.END, 4.0, 8.0, 0.92, 5.0, "prior")
    c = clip("intruder", {}, [CloudEvent(update, ev, ())])
    _tally(cond, c, explain_all(c.events, cond.explainer), False, 0)
    report = cond.report()
    assert report["first_try_valid"] == 0.0 and report["fallback"] == 1.0
    assert report["rejected"] == {"unfaithful": 1, "schema": 1}
    # and per kind and group, apart: a tuning kind's writer is not a held-out kind's
    for part in (report["kinds"]["intruder"], report["groups"]["tuned"]):
        assert part["first_try_valid"] == {"accuracy": 0.0, "n": 1}
        assert part["rejected"] == {"unfaithful": 1, "schema": 1}
    assert report["groups"]["heldout"]["first_try_valid"] == {"accuracy": None, "n": 0}
    words = sum(len(r.split()) for r in cond.results[0].replies)  # the scripted LLM's tokens
    assert report["tokens_per_s"] == round(words / cond.results[0].seconds, 2)


def test_evaluate_reads_the_edge_cache_and_writes_every_reply_with_why_it_was_refused(
    tmp_path: Path,
) -> None:
    """The edge's runs come from the cache (no footage here: the edge cannot have run); each
    explained event becomes one JSON line with its raw replies and refusal reasons; `kinds`
    leaves the other kinds' clips unexplained."""
    manifest, models = tmp_path / "manifest.jsonl", tmp_path / "models"
    manifest.write_text('{"path": "clips/cam/intruder_00.avi"}\n')
    models.mkdir()
    cache = tmp_path / "edge.pkl"
    clips = [clip("intruder", {}, [event(4.0, 8.0)]), clip("smoke", {}, [event(1.0, 3.0)])]
    edge_cache.save(cache, edge_cache.key(manifest, models, None), clips)
    llm = ScriptedLlm(["Alert", "It lasted 99 minutes.", "A", "[x]"])
    conditions = {"text": _Condition(Explainer(ExplainSettings(), llm))}
    out = io.StringIO()
    report = evaluate(
        manifest, models, None, conditions, (), cache=cache, replies=out, kinds=("intruder",)
    )
    assert report["conditions"]["text"]["explanations"] == 1
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["condition"] == "text" and line["kind"] == "intruder"
    assert line["group"] == "tuned" and line["own_event"] is True
    assert line["outcome"] == "fallback" and line["rejected"] == ["unfaithful", "schema"]
    assert len(line["replies"]) == 2 and "99 minutes" in line["replies"][0]
