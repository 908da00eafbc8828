"""Schema, evidence, prompts, parsing and projector: pure functions on hand-made values."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from support_explain import PRIOR, ScriptedLlm

from vau.cloud.explain import category as cat
from vau.cloud.explain import prompts
from vau.cloud.explain.evidence import (
    FASTER,
    EventEvidence,
    FrameEvidence,
    claims_view_change,
    decide,
    evidence_lines,
    facts,
    region_name,
    region_shares,
    unfaithful_numbers,
)
from vau.cloud.explain.explainer import (
    Explainer,
    InvalidReplyError,
    cut_loop,
    looped,
    parse_reply,
    tidy_title,
    trim_sentence,
)
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.projector import FrameTokenizer, build_projector
from vau.cloud.explain.schema import Explanation
from vau.cloud.explain.settings import CameraContext, ExplainSettings
from vau.cloud.metrics import CloudMetrics

BASE = dict(
    title="t", summary="s", anomaly=True, category="other", start=1.0, end=2.0, confidence=0.5,
    threat_level=1, llm="m", visual_tokens=False, fallback=False,
)  # fmt: skip


def _event(frames: tuple[FrameEvidence, ...] = ()) -> EventEvidence:
    return EventEvidence("cam-0", "ev-1", 2.0, 6.0, 0.92, 4.0, PRIOR, frames, 0.1)


def test_explanation_when_end_before_start_or_extra_key_then_rejected() -> None:
    assert Explanation.model_validate(BASE).fields()["schema_version"] == 1
    with pytest.raises(ValidationError):
        Explanation.model_validate(BASE | {"end": 0.5})
    with pytest.raises(ValidationError):
        Explanation.model_validate(BASE | {"colour": "red"})
    with pytest.raises(ValidationError):
        Explanation.model_validate(BASE | {"threat_level": 3})
    with pytest.raises(ValueError, match="not in"):
        Explanation.model_validate(BASE | {"category": "Aliens"}).check_category(("Arson",))


def test_region_name_when_16x16_grid_then_nine_named_thirds() -> None:
    g = (16, 16)
    assert region_name(0, g) == "upper left"
    assert region_name(15, g) == "upper right"
    assert region_name(8 * 16 + 8, g) == "centre"
    assert region_name(8 * 16 + 0, g) == "centre left"
    assert region_name(255, g) == "lower right"
    assert region_name(15 * 16 + 7, g) == "lower centre"
    shares = region_shares([FrameEvidence(1.0, 0.5, (0, 1, 255, 17), g)])
    assert shares[0] == ("upper left", 0.75) and shares[1] == ("lower right", 0.25)


def test_region_shares_when_frames_carry_hot_patches_then_hot_counted_not_kept() -> None:
    g = (16, 16)
    kept = (0, 1, 2, 16, 17)  # upper left: what changed
    hot_frames = [FrameEvidence(1.0, 0.5, kept, g, (255, 254)), FrameEvidence(2.0, 0.6, kept, g)]
    assert region_shares(hot_frames) == (("lower right", 1.0),)
    assert region_shares([FrameEvidence(1.0, 0.5, kept, g)]) == (("upper left", 1.0),)
    hot_lines = evidence_lines(facts(_event(tuple(hot_frames))))
    assert "The most anomalous patches were in the lower right (100%) of the frame." in hot_lines
    old_lines = evidence_lines(facts(_event((FrameEvidence(1.0, 0.5, kept, g),))))
    assert "Most change was in the upper left (100%) of the frame." in old_lines


def test_decide_when_peak_and_duration_vary_then_rules_not_llm_set_fields() -> None:
    s = ExplainSettings(cameras={"cam-0": CameraContext(normal="a path", category="Vandalism")})
    f = facts(_event())
    d = decide(f, "cam-0", s)
    assert (d.anomaly, d.category, d.threat_level, d.confidence) == (True, "Vandalism", 2, 0.92)
    low = facts(EventEvidence("cam-9", "e", 1.0, 2.0, 0.6, 1.5, PRIOR))
    assert decide(low, "cam-9", s).threat_level == 1 and decide(low, "cam-9", s).category == "other"
    quiet = facts(EventEvidence("cam-9", "e", 1.0, 2.0, 0.3, 1.5, PRIOR))
    assert not decide(quiet, "cam-9", s).anomaly and decide(quiet, "cam-9", s).threat_level == 0


def test_prompt_when_built_then_holds_context_prior_evidence_decision_question() -> None:
    s = ExplainSettings(cameras={"cam-0": CameraContext(normal="People walk by.")})
    frames = (FrameEvidence(3.0, 0.8, (254, 255), (16, 16)),)
    f = facts(_event(frames))
    msgs = prompts.messages("cam-0", "People walk by.", PRIOR, f, decide(f, "cam-0", s))
    text = msgs[1]["content"]
    for part in ('Camera "cam-0".', "People walk by.", PRIOR, "peaked at 0.92 at 4.0s",
                 "lower right (100%)", "against 0.10 before", "Decided: an anomaly",
                 prompts.QUESTION):  # fmt: skip
        assert part in text
    assert len(text) < 1200  # short: SmolLM2 is tiny
    assert "It looks like no kind the edge knows" in text  # no observed category given
    seen = prompts.messages("cam-0", "", PRIOR, f, decide(f, "cam-0", s), observed="Smoke")
    assert "It looks like: Smoke." in seen[1]["content"]
    assert "Where: in the lower right." in text  # the largest region, said once more


def test_prompt_when_the_whole_view_changed_then_where_is_the_whole_view() -> None:
    everywhere = tuple(range(256))
    frames = tuple(
        FrameEvidence(2.0 + k, 0.9, everywhere, (16, 16), hot=everywhere) for k in range(4)
    )
    f = facts(_event(frames))
    assert f.scene.view_change
    text = prompts.user_text(
        "cam-0", "", PRIOR, f, decide(f, "cam-0", ExplainSettings()), "?", False
    )
    assert "Where: the whole view." in text and "Where: in the" not in text
    nowhere = facts(_event())  # no frame: no region to name, no line
    assert prompts.where_text(nowhere) == ""


def test_parse_reply_when_invalid_then_reason_names_the_check() -> None:
    ev = "peak 0.92 at 4.0s"
    ok = parse_reply('{"title": "Peak at 4.0s", "summary": "The score peaked at 0.92."}', ev)
    assert ok.title == "Peak at 4.0s"
    cases = {
        "no json": "json",
        '{"title": "x"': "json",
        '{"title": "ok title", "summary": "s"}': "schema",
        '{"title": "Alert", "summary": "A man at [location] ran."}': "placeholder",
        '{"title": "Alert", "summary": "It peaked at 4.0s.\\") }}]}]]."}': "markup",
        '{"title": "Alert", "summary": "Three people at 9.5s fought."}': "unfaithful",
        '{"title": "Camera 4.0.4.0.0", "summary": "The camera 4.0.4.0.0.4."}': "garbled",
        '{"title": "Camera x.com/4/4/4", "summary": "The camera peaked at 4.0s."}': "garbled",
        '{"title": "Alert", "summary": "A man ran. A man ran. A man ran."}': "looped",
        '{"title": "Camera moved, category \'other\',", "summary": "Camera at 4.0s."}': "echo",
        '{"title": "Fireball (Arrested, Threat High)", "summary": "It peaked at 4.0s."}': "echo",
        '{"title": "Alert", "summary": "Peak at 4.0s \u0441\u0435\u0434\u0435\u043d."}': "script",
    }
    said = "The most anomalous patches were in the upper left (100%) of the frame."
    with pytest.raises(InvalidReplyError) as err:
        parse_reply('{"title": "Abandonment", "summary": "A person destroyed a home."}', said)
    assert err.value.reason == "uninformative"
    assert parse_reply('{"title": "Alert", "summary": "Something in the upper left."}', said)
    view = f"Most of the view changed at once, over the whole frame (camera moved). {said}"
    assert parse_reply('{"title": "Tamper", "summary": "The whole view changed."}', view)
    assert parse_reply('{"title": "Lights", "summary": "The view went darker."}', view)
    moved = "The camera was moved, covered or defocused: most of the view changed at once."
    assert parse_reply(f'{{"title": "Camera tampered", "summary": "{moved}"}}', view)
    with pytest.raises(InvalidReplyError, match="uninformative"):  # names the camera, says
        # nothing of it (`make demo`'s tamper had "The camera cam-0." from a real first reply)
        parse_reply('{"title": "Camera", "summary": "The camera front-door."}', view)
    with pytest.raises(InvalidReplyError, match="uninformative"):  # true of its hottest patches,
        # but says nothing of the view as a whole
        parse_reply('{"title": "Anomaly", "summary": "Something in the upper left."}', view)
    with pytest.raises(InvalidReplyError, match="uninformative"):  # names the camera, says
        # nothing happened to it (a real SmolLM2 retry on a tamper)
        harmless = "This video shows how a camera can be tampered with without causing any harm."
        parse_reply(f'{{"title": "Ascend", "summary": "{harmless}"}}', view)
    fast = f"{said} {FASTER}"  # what changed is the speed: saying so is informative
    assert parse_reply('{"title": "Fast", "summary": "Things moved faster than usual."}', fast)
    with pytest.raises(InvalidReplyError, match="uninformative"):
        parse_reply('{"title": "Fast", "summary": "Things moved faster than usual."}', said)
    for text, reason in cases.items():
        with pytest.raises(InvalidReplyError) as err:
            parse_reply(text, ev)
        assert err.value.reason == reason
    assert unfaithful_numbers("peaked at 0.92, 40%", "0.92 (40%)") == set()
    assert parse_reply('{"title": "Café at 4.0s", "summary": "Peaked at 0.92 \u2014 fast."}', ev)


@pytest.mark.parametrize(
    ("reply", "extra"),
    [
        ("from 8.5s to 17.0 s (8.5 seconds)", set()),
        ("in the upper left (19%), 50 percent of it", set()),
        ("12 frames, 19 of them", set()),  # a bare number: any of the evidence's
        ("from 19.0s to 8.5 seconds past", {19.0}),  # 19 is a share, not a time
        ("at 12 s", {12.0}),  # 12 is a count of frames
        ("12% of the view", {12.0}),
        ("8.5% of it", {8.5}),  # a time, not a share
        ("moving down at 0.25 view widths per second", set()),
        ("moving down at 0.25 frames per second", {0.25}),  # a real held-out reply: wrong unit
        ("at 19 view widths per second", {19.0}),  # a share, not a speed
        ("from 8.5s to 17.0d", {17.0}),  # a delivered retry: "d" is no unit of the evidence
        ("from 8.5secs to 17.0sec", set()),
        ("12x the usual", {12.0}),
    ],
)
def test_unfaithful_numbers_when_a_time_share_or_rate_is_not_one_in_the_evidence(
    reply: str, extra: set[float]
) -> None:
    evidence = (
        "The anomaly score rose from 8.5s to 17.0s (8.5 seconds). The most anomalous patches were"
        " in the upper left (19%) of the frame. 12 frames were sent; 50% of each frame changed."
        " The anomalous region moved down at 0.25 view widths per second."
    )
    assert unfaithful_numbers(reply, evidence) == extra


@pytest.mark.parametrize(
    ("reply", "claims"),
    [
        ("Anomaly: the view was changed, from centre left to upper right.", True),
        ("Something appeared to grow: the view changed, from 4.0s to 7.5s.", True),
        ("The camera was covered.", True),
        ("The view as a whole did not change.", False),  # the template's own sentence
        ("Nothing in the view changed but the lower left.", False),
        ("12 frames were sent; 50% of each frame changed.", False),  # an evidence sentence
        ("Something in the scene moved right.", False),  # a thing moved, not the view
    ],
)
def test_a_reply_saying_the_view_changed_is_unfaithful_unless_the_edge_measured_it(
    reply: str, claims: bool
) -> None:
    assert claims_view_change(reply, "The anomaly score rose from 4.0s to 7.5s.") is claims
    assert not claims_view_change(reply, "Most of the view changed at once (camera moved).")


def test_explainer_when_a_reply_invents_a_view_change_then_it_is_refused() -> None:
    frames = (FrameEvidence(3.0, 0.8, (254, 255), (16, 16)),)
    llm = ScriptedLlm(
        ["Hidden", "The view was changed in the lower right.", "Alert", "In the lower right."]
    )
    r = Explainer(ExplainSettings(), llm).explain(_event(frames))
    assert r.outcome == "retry" and r.rejected == ("unfaithful",)
    assert "view" not in r.explanation.summary


def test_explainer_when_the_title_ends_in_a_colon_then_it_is_delivered_without() -> None:
    frames = (FrameEvidence(3.0, 0.8, (254, 255), (16, 16)),)
    llm = ScriptedLlm(["Anomaly in the lower right:", "Something appeared in the lower right."])
    r = Explainer(ExplainSettings(), llm).explain(_event(frames))
    assert r.outcome == "llm" and r.explanation.title == "Anomaly in the lower right"
    assert tidy_title("Alert: -") == "Alert" and tidy_title("::") == "::"  # never emptied


def test_explainer_when_first_reply_unfaithful_then_retry_then_fallback_counted() -> None:
    s = ExplainSettings()
    metrics = ExplainMetrics(CloudMetrics().registry)
    good = ScriptedLlm(["Anomaly on cam-0", "The score peaked at 0.92 at 4.0s."])
    r = Explainer(s, good, metrics).explain(_event())
    assert r.outcome == "llm" and not r.explanation.fallback and r.rejected == ()
    held = good.allowed[0]
    assert held is not None and {"0.92", "4.0", "0"} <= held.numbers  # and cam-0's 0
    retry = ScriptedLlm(["Alert", "It lasted 99 minutes.", "Alert", "The score peaked at 0.92."])
    r = Explainer(s, retry, metrics).explain(_event())
    assert r.outcome == "retry" and "rejected (unfaithful)" in retry.prompts[2][1]["content"]
    assert r.rejected == ("unfaithful",)
    bad = ScriptedLlm(["A", "[x]"])
    r = Explainer(s, bad, metrics).explain(_event())
    assert r.outcome == "fallback" and r.explanation.fallback and r.rejected == ("schema", "schema")
    assert r.explanation.title.startswith("Anomaly") and "0.92" in r.explanation.summary
    assert metrics.value("vau_cloud_explanations_total", {"outcome": "fallback"}) == 1
    assert metrics.value("vau_cloud_llm_invalid_replies_total", {"reason": "unfaithful"}) == 1
    assert metrics.value("vau_cloud_llm_invalid_replies_total", {"reason": "schema"}) == 2
    assert metrics.value("vau_cloud_explain_seconds_count") == 3


def test_trim_sentence_cuts_at_a_full_stop_never_at_a_decimal_point() -> None:
    assert trim_sentence("It moved from 2.5s to 7.5s") == "It moved from 2.5s to 7.5s"
    assert trim_sentence("It moved left. Then from 2.5s to 7") == "It moved left."
    assert trim_sentence("A change at 4.0s! Then the score rose to 0") == "A change at 4.0s!"
    assert trim_sentence(" It ended at 7.5s. ") == "It ended at 7.5s."


def test_explainer_when_a_summary_ends_in_a_decimal_without_full_stop_then_kept_whole() -> None:
    event = EventEvidence("cam-0", "ev-1", 2.5, 7.5, 0.92, 4.0, PRIOR, (), 0.1)
    llm = ScriptedLlm(["Anomaly on cam-0", "The score rose from 2.5s to 7.5s"])
    r = Explainer(ExplainSettings(), llm).explain(event)
    assert r.outcome == "llm" and r.explanation.summary == "The score rose from 2.5s to 7.5s"


def test_cut_loop_keeps_the_full_sentences_before_a_loop_else_leaves_it_to_be_refused() -> None:
    went_round = (
        "Something appeared in the lower centre, from 3.5s to 6.5s. In the lower centre it moved "
        "right. Then in the lower centre"
    )
    assert cut_loop(went_round) == "Something appeared in the lower centre, from 3.5s to 6.5s."
    once = "It moved left in the lower left. It stayed."  # twice is no loop
    assert cut_loop(once) == once
    no_sentence = "People in the lower centre, people in the lower edge, people in the lower centre"
    assert cut_loop(no_sentence) == no_sentence and looped(no_sentence)


def test_explainer_when_a_summary_goes_round_in_a_loop_then_its_first_sentences_pass() -> None:
    event = EventEvidence("cam-0", "ev-1", 2.5, 7.5, 0.92, 4.0, PRIOR, (), 0.1)
    loop = "The score rose from 2.5s to 7.5s." + " It peaked at 0.92." * 3 + " It peaked"
    r = Explainer(ExplainSettings(), ScriptedLlm(["Anomaly on cam-0", loop])).explain(event)
    assert (
        r.outcome == "llm"
        and r.explanation.summary == "The score rose from 2.5s to 7.5s. It peaked at 0.92."
    )
    assert r.replies[0].endswith('It peaked at 0.92."}')  # the reply as kept, not as generated


def test_build_projector_when_kind_known_then_shapes_else_raises() -> None:
    x = torch.randn(5, 384)
    assert build_projector("linear", 384, 576)(x).shape == (5, 576)
    assert build_projector("mlp2x_gelu", 384, 576)(x).shape == (5, 576)
    with pytest.raises(ValueError, match="unknown projector kind"):
        build_projector("qformer", 384, 576)
    tok = FrameTokenizer("linear", 384, 576)
    out = tok([torch.randn(10, 384), torch.randn(3, 384)], torch.randn(7, 576))
    assert out.shape == (4, 576)  # content + context token per frame


def test_parse_reply_refuses_a_kind_the_observed_category_does_not_support() -> None:
    said = "The most anomalous patches were in the lower left (60%) of the frame."
    person = '{"title": "Person in the lower left", "summary": "A person in the lower left."}'
    assert parse_reply(person, said, frozenset({"intruder"})).title.startswith("Person")
    with pytest.raises(InvalidReplyError) as err:
        parse_reply(person, said, frozenset())  # observed: unknown
    assert err.value.reason == "kind" and "intruder" in str(err.value)
    with pytest.raises(InvalidReplyError, match="kind"):
        parse_reply(person, said, frozenset({"smoke"}))
    assert parse_reply(person, said)  # no observed category given: not checked


def test_parse_reply_takes_a_kind_word_the_facts_use_as_faithful_not_as_a_kind() -> None:
    said = (
        "The most anomalous patches were in the lower left (60%) of the frame. "
        "Things in the view moved faster than is usual for this camera."
    )
    faster = '{"title": "Fast motion", "summary": "Things moved faster in the lower left."}'
    assert parse_reply(faster, said, frozenset()).title == "Fast motion"  # observed: unknown
    running = '{"title": "Running", "summary": "People running in the lower left."}'
    with pytest.raises(InvalidReplyError, match="kind"):
        parse_reply(running, said, frozenset())


def test_parse_reply_allows_the_camera_name_but_takes_no_place_from_it() -> None:
    said = "The most anomalous patches were in the lower centre (60%) of the frame."
    named = '{"title": "Alert on cam-0", "summary": "Something in the lower centre."}'
    assert parse_reply(named, said, camera="cam-0").title == "Alert on cam-0"
    left = '{"title": "Alert", "summary": "Something in the lower left of gate-left."}'
    with pytest.raises(InvalidReplyError, match="unfaithful"):
        parse_reply(left, said, camera="gate-left")


def test_explainer_when_the_event_looks_like_a_known_kind_then_the_prompt_says_so() -> None:
    frames = tuple(
        FrameEvidence(2.0 + k, 0.9, (220, 221, 236), (16, 16), hot=(220, 221)) for k in range(4)
    )
    ev = _event(frames)
    x = cat.features(ev, facts(ev))
    spread = [0.01 * (k - 4.5) for k in range(10)]  # around x: x is typical of its kind
    rows = [x + d for d in spread] + [x + 5.0 + d for d in spread]
    model = cat.fit(rows, ["smoke"] * 10 + ["tamper"] * 10, {})
    llm = ScriptedLlm(["Haze in the lower right", "A haze rose in the lower right."])
    r = Explainer(ExplainSettings(), llm, category=model).explain(ev)
    assert "It looks like: Smoke." in llm.prompts[0][1]["content"]
    assert r.outcome == "llm" and r.explanation.observed_category == "Smoke"


def test_explainer_when_the_event_looks_like_running_then_a_person_may_be_named() -> None:
    frames = tuple(
        FrameEvidence(2.0 + k, 0.9, (220, 221, 236), (16, 16), hot=(220, 221)) for k in range(4)
    )
    ev = _event(frames)
    x = cat.features(ev, facts(ev))
    spread = [0.01 * (k - 4.5) for k in range(10)]
    rows = [x + d for d in spread] + [x + 5.0 + d for d in spread]
    model = cat.fit(rows, ["running"] * 10 + ["tamper"] * 10, {})
    llm = ScriptedLlm(["Person running", "A person ran in the lower right."])
    r = Explainer(ExplainSettings(), llm, category=model).explain(ev)
    assert r.outcome == "llm" and r.explanation.observed_category == "Running"
    assert r.explanation.summary == "A person ran in the lower right."
    allowed = llm.allowed[0]
    assert allowed is not None and {"person", "running"}.isdisjoint(allowed.unsaid)
    assert {"haze", "smoke", "tampered"} <= allowed.unsaid  # the decoding cannot name those


def test_explainer_when_no_kind_is_observed_then_the_decoding_may_name_none_the_facts_lack() -> (
    None
):
    llm = ScriptedLlm(["Anomaly in the lower right", "Something appeared in the lower right."])
    Explainer(ExplainSettings(), llm).explain(_event((FrameEvidence(3.0, 0.8, (254,), (16, 16)),)))
    allowed = llm.allowed[0]
    assert (
        allowed is not None and {"person", "haze", "smoke", "faster", "covered"} <= allowed.unsaid
    )
    everywhere = tuple(range(256))
    frames = tuple(
        FrameEvidence(2.0 + k, 0.9, everywhere, (16, 16), hot=everywhere) for k in range(4)
    )
    llm = ScriptedLlm(["View changed", "The camera view was covered."])
    r = Explainer(ExplainSettings(), llm).explain(_event(frames))
    assert r.explanation.observed_category == "unknown" and r.explanation.view_change
    allowed = llm.allowed[0]  # the view-change fact says "covered or defocused": faithful words
    assert allowed is not None and "person" in allowed.unsaid
    assert {"covered", "defocused"}.isdisjoint(allowed.unsaid)


def test_parse_reply_when_only_the_camera_name_says_a_place_then_it_is_uninformative() -> None:
    # a real text-only reply: "right" is the camera's, the facts' place is the lower left
    evidence = "The most anomalous patches were in the lower left (60%), lower right (40%)."
    reply = '{"title": "Camera vtest-right", "summary": "The camera vtest-right was busy."}'
    with pytest.raises(InvalidReplyError) as err:
        parse_reply(reply, evidence, camera="vtest-right")
    assert err.value.reason == "uninformative"
    said = '{"title": "Camera vtest-right", "summary": "A person appeared in the lower left."}'
    assert parse_reply(said, evidence, camera="vtest-right").summary.endswith("lower left.")


def test_looped_when_a_place_is_named_twice_then_no_loop_and_three_times_a_loop() -> None:
    assert not looped("A person appeared in the lower left, moving in the lower left.")
    assert looped("The camera vtest-right. Camera vtest-right. Camera vtest-right. Camera")
    assert looped("(20.0) (20.0) (20.0) (20.")
