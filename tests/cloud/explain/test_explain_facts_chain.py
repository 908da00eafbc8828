"""The facts through the real chain: edge-encoded records, validated as the cloud accepts them ->
the stored-frame adapter -> the explainer -> the MQTT payload; and the faithfulness check."""

from __future__ import annotations

from typing import Any

from support_explain import ScriptedLlm, event_records

from vau.cloud.explain.evidence import Earlier, EventEvidence, FrameEvidence, frame_evidence
from vau.cloud.explain.explainer import Explainer
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.schema import Explanation
from vau.cloud.explain.settings import ExplainSettings
from vau.cloud.metrics import CloudMetrics
from vau.cloud.mqtt.topics import EXPLANATION_KEYS, explanation_payload
from vau.cloud.records import EventChange, TokenFrame

CENTRE = (7 * 16 + 7, 7 * 16 + 8, 8 * 16 + 7, 8 * 16 + 8)  # the middle of a 16x16 grid
SCATTERED = tuple(range(0, 256, 2))  # every other patch: half the view past normal
UNUSABLE = ["A", "[x]"]  # a title too short and a placeholder: the template answers


def _evidence(hot: tuple[int, ...]) -> EventEvidence:
    """The event's evidence from its records, as the service assembles it."""
    records = event_records("ev-1", 1, hot=hot)
    end = [r.body for r in records if isinstance(r.body, EventChange) and r.body.end is not None]
    frames = [frame_evidence(r.t, r.body) for r in records if isinstance(r.body, TokenFrame)]
    e = end[0]
    return EventEvidence(
        "cam-0", e.event_id, e.start, e.end, e.peak, e.peak_t, e.prior, tuple(frames), 0.1
    )


def _explain(hot: tuple[int, ...], replies: list[str]) -> dict[str, Any]:
    result = Explainer(ExplainSettings(), ScriptedLlm(replies)).explain(_evidence(hot))
    return result.explanation.fields()


def test_chain_when_hot_patches_in_the_centre_then_payload_says_where_and_no_view_change() -> None:
    fields = _explain(CENTRE, ["Anomaly in the centre", "The score peaked at 0.92 in the centre."])
    e = Explanation.model_validate(fields)
    assert e.where == ("centre",) and e.movement == "none" and not e.view_change
    assert not e.fallback
    assert "The anomalous patches were 2% of the view's patches." in e.evidence
    assert "The anomalous region did not move." in e.evidence
    payload = explanation_payload("dev-a", "cam-0", "ev-1", fields, "a-1", 1.0)
    assert set(EXPLANATION_KEYS) <= payload.keys()
    assert payload["where"] == ["centre"] and payload["view_change"] is False


def test_chain_when_hot_patches_everywhere_and_reply_unusable_then_template_says_view_change() -> (
    None
):
    fields = _explain(SCATTERED, UNUSABLE)
    e = Explanation.model_validate(fields)
    assert e.view_change and e.fallback and e.movement == "none"
    assert e.title == "View change over the whole frame, 2.0s-6.0s"
    assert e.summary.startswith(
        "View change over the whole frame from 2.0 s to 6.0 s, sudden onset."
    )
    assert any("over the whole frame" in line for line in e.evidence)


def _event() -> EventEvidence:
    hot = (11 * 16 + 1, 12 * 16 + 2)  # lower left
    frames = tuple(FrameEvidence(t, 0.9, hot, (16, 16), hot) for t in (2.5, 4.0, 5.5))
    return EventEvidence("cam-0", "ev-1", 2.0, 6.0, 0.92, 4.0, "", frames, 0.1)


def test_explainer_when_reply_names_a_place_the_facts_do_not_then_retry_then_fallback_counted() -> (
    None
):
    metrics = ExplainMetrics(CloudMetrics().registry)
    s = ExplainSettings()
    wrong = ["Anomaly in the upper right", "Someone moved left in the upper right."]
    r = Explainer(s, ScriptedLlm(wrong), metrics).explain(_event())
    assert r.outcome == "fallback" and r.explanation.where == ("lower left",)
    assert r.explanation.title == "Anomaly in the lower left, 2.0s-6.0s"
    assert metrics.invalid.labels("unfaithful")._value.get() == 2
    right = ["Anomaly in the lower left", "Something stayed in the lower left of the view."]
    assert Explainer(s, ScriptedLlm(right), metrics).explain(_event()).outcome == "llm"


def test_explainer_when_history_given_then_recurrence_stated() -> None:
    earlier = [Earlier("ev-0", 1.0, ("lower left",))]
    r = Explainer(ExplainSettings(), ScriptedLlm(["A"]), history=lambda ev: earlier).explain(
        _event()
    )
    assert (
        "Something similar happened earlier on this camera: event ev-0 at 1.0s, in the lower left."
        in r.explanation.evidence
    )
    none = Explainer(ExplainSettings(), ScriptedLlm(["A"]), history=lambda ev: []).explain(_event())
    assert "Nothing similar happened earlier on this camera." in none.explanation.evidence
    unknown = Explainer(ExplainSettings(), ScriptedLlm(["A"])).explain(_event())
    assert not any("earlier on this camera" in x for x in unknown.explanation.evidence)
