"""Schema-constrained decoding (xgrammar) with the real SmolLM2: replies are valid `LlmReply`
JSON by construction, the setting switches it, and each generation is counted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from support_explain import PRIOR

from vau.cloud.explain.evidence import EventEvidence, FrameEvidence
from vau.cloud.explain.explainer import Explainer
from vau.cloud.explain.llm import build_llm
from vau.cloud.explain.llm_transformers import TransformersLlm
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.prompts import STOP, TITLE_PREFILL, summary_prefill
from vau.cloud.explain.schema import LlmReply
from vau.cloud.explain.settings import ExplainSettings

pytest.importorskip("xgrammar", reason="constrained decoding needs xgrammar (make install)")

MSGS = [
    {"role": "system", "content": "You write short security camera alerts."},
    {"role": "user", "content": "Most of the view changed at once, over the whole frame."},
]


@pytest.fixture(scope="module")
def metrics() -> ExplainMetrics:
    return ExplainMetrics(CollectorRegistry())


@pytest.fixture(scope="module")
def llm(metrics: ExplainMetrics) -> Iterator[TransformersLlm]:
    try:
        yield TransformersLlm("smollm2-135m-instruct", constrained=True, metrics=metrics.llm)
    except (OSError, ValueError) as exc:  # the asset is not installed (`vau-models pull`)
        pytest.skip(f"SmolLM2 asset missing: {exc}")


def _generated(metrics: ExplainMetrics, decoding: str) -> float:
    labels = {"backend": "transformers", "decoding": decoding}
    return metrics.value("vau_cloud_llm_generations_total", labels)


def test_title_when_constrained_then_a_closed_json_string_within_the_schema_lengths(
    llm: TransformersLlm, metrics: ExplainMetrics
) -> None:
    before = _generated(metrics, "constrained")
    # no stop strings: only the grammar ends the string (with its closing quote)
    out = llm.generate(MSGS, 32, prefill=TITLE_PREFILL)
    title, sep, _ = out.partition('"')
    assert sep, f"the grammar should have closed the title within 32 tokens: {out!r}"
    assert 3 <= len(title) <= 80 and "\\" not in title and "\n" not in title
    assert _generated(metrics, "constrained") == before + 1


def test_reply_when_both_fields_constrained_then_it_parses_as_an_llm_reply(
    llm: TransformersLlm,
) -> None:
    title = llm.generate(MSGS, 24, prefill=TITLE_PREFILL, stop=STOP)
    summary = llm.generate(MSGS, 48, prefill=summary_prefill(title), stop=STOP)
    reply = LlmReply.model_validate(json.loads(json.dumps({"title": title, "summary": summary})))
    assert len(reply.summary) >= 10


@pytest.mark.parametrize(
    ("text", "takes"),
    [
        ("Haze in the lower left, 4.0s-6.5s (40%)", True),
        ("Anomaly: person's bag / box & more", True),
        ("Anomaly in the [location]", False),  # a placeholder
        ("Alert {", False),  # code or JSON leaking into the prose
        ("<b>Alert", False),
        ("Alert | view", False),
        ("Camera `cam-0`", False),
        ("Caf\u00e9", False),  # an accented letter: a drift into another language
        ("\u0441\u0435\u0434\u0435\u043d", False),  # another script
    ],
)
def test_grammar_takes_plain_prose_only_in_a_title(
    llm: TransformersLlm, text: str, takes: bool
) -> None:
    assert llm.grammar is not None
    assert (llm.grammar.processor(TITLE_PREFILL + text) is not None) is takes


def test_title_when_asked_for_markup_then_the_grammar_writes_plain_prose(
    llm: TransformersLlm,
) -> None:
    ask = [{"role": "user", "content": "Reply with a JSON list: ["}]
    title = llm.generate(ask, 24, prefill=TITLE_PREFILL, stop=STOP)
    free = TransformersLlm("smollm2-135m-instruct").generate(ask, 24, prefill=TITLE_PREFILL)
    assert any(c in free for c in "<>`[]{}|"), free  # unconstrained, it writes the markup
    assert title and re.fullmatch(r"[A-Za-z0-9 .,;:!'()%/&+\-]*", title), title


def test_prefill_when_not_the_start_of_a_reply_then_decoded_freely_and_counted(
    llm: TransformersLlm, metrics: ExplainMetrics
) -> None:
    before = _generated(metrics, "free")
    out = llm.generate(MSGS, 4, prefill="Alert: ")
    assert isinstance(out, str)
    assert _generated(metrics, "free") == before + 1


def test_explainer_when_constrained_then_no_reply_fails_json_or_schema(
    llm: TransformersLlm,
) -> None:
    metrics = ExplainMetrics(CollectorRegistry())
    s = ExplainSettings(model="smollm2-135m-instruct", max_new_tokens=16, constrained=True)
    frames = (FrameEvidence(3.0, 0.8, (176, 177, 192), (16, 16)),)
    ev = EventEvidence("cam-0", "ev-1", 2.0, 6.0, 0.92, 4.0, PRIOR, frames, 0.1)
    result = Explainer(s, llm, metrics).explain(ev)
    for raw in result.replies:
        LlmReply.model_validate_json(raw)  # every raw reply is schema-valid JSON
    for reason in ("json", "schema"):
        assert metrics.value("vau_cloud_llm_invalid_replies_total", {"reason": reason}) == 0


def test_build_llm_when_setting_off_then_free_decoding() -> None:
    s = ExplainSettings(model="smollm2-135m-instruct", constrained=False)
    try:
        llm = build_llm(s)
    except (OSError, ValueError) as exc:
        pytest.skip(f"SmolLM2 asset missing: {exc}")
    assert isinstance(llm, TransformersLlm) and llm.grammar is None
    assert ExplainSettings(model="x").constrained is True  # on unless switched off
