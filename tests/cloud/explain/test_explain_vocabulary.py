"""A reply with a word in no dictionary is refused (`nonword`), retried, and never delivered.

The words below that are in no dictionary ("andupa", "aphylococcus", "Ahleeball") are ones
SmolLM2 wrote into real replies to the tuning sets' events. `ScriptedLlm` stands in for which
reply the model returns; the word lists are real files (small ones written here, and the system's
own where it has them).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from support_explain import PRIOR, ScriptedLlm

from vau.cloud.explain.evidence import EventEvidence
from vau.cloud.explain.explainer import Explainer, InvalidReplyError, parse_reply
from vau.cloud.explain.facts import FrameEvidence
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.settings import DICTIONARIES, ExplainSettings
from vau.cloud.explain.vocabulary import load
from vau.cloud.metrics import CloudMetrics

SAID = "The most anomalous patches were in the lower right (100%) of the frame."
WORDS = "a\nalert\nappeared\nin\nlower\nmoving\nright\nsomething\nthe\ndown\nperson\n"


def _lists(tmp_path: Path) -> tuple[Path, ...]:
    path = tmp_path / "words"
    path.write_text(WORDS, "utf-8")
    return (path,)


def _event() -> EventEvidence:
    frames = (FrameEvidence(3.0, 0.8, (254, 255), (16, 16)),)
    return EventEvidence("cam-0", "ev-1", 2.0, 6.0, 0.92, 4.0, PRIOR, frames, 0.1)


def test_a_reply_with_a_word_in_no_list_and_not_shown_is_refused_as_nonword(
    tmp_path: Path,
) -> None:
    vocab = load(_lists(tmp_path))
    assert vocab is not None
    odd = '{"title": "Alert", "summary": "Something appeared in the lower right andupa."}'
    with pytest.raises(InvalidReplyError) as err:
        parse_reply(odd, SAID, vocabulary=vocab)
    assert err.value.reason == "nonword" and "andupa" in str(err.value)
    # a word of the evidence or of the prompt is no invented word; nor is a contraction's end
    ok = '{"title": "Alert", "summary": "Patches in the lower right: a person\'s frame."}'
    assert parse_reply(ok, SAID, vocabulary=vocab, shown="person").title == "Alert"
    assert parse_reply(odd, SAID, vocabulary=vocab, shown="andupa")
    assert parse_reply(odd, SAID)  # no vocabulary: not checked


def test_explainer_retries_a_nonword_reply_and_delivers_the_plain_one(tmp_path: Path) -> None:
    s = ExplainSettings(dictionaries=_lists(tmp_path))
    metrics = ExplainMetrics(CloudMetrics().registry)
    llm = ScriptedLlm(
        [
            "Alert",
            "Something appeared in the lower right: aphylococcus.",
            "Alert",
            "Something appeared in the lower right.",
        ]
    )
    r = Explainer(s, llm, metrics).explain(_event())
    assert r.outcome == "retry" and r.rejected == ("nonword",)
    assert "aphylococcus" not in r.explanation.summary
    assert "plain English words" in llm.prompts[2][1]["content"]
    assert metrics.value("vau_cloud_llm_invalid_replies_total", {"reason": "nonword"}) == 1
    assert metrics.value("vau_cloud_explain_vocabulary_words") == len(WORDS.split())
    twice = ScriptedLlm(["Alert", "Ahleeball in the lower right."])
    r = Explainer(s, twice, metrics).explain(_event())
    assert r.outcome == "fallback" and r.rejected == ("nonword", "nonword")
    assert "Ahleeball" not in r.explanation.summary and "lower right" in r.explanation.summary


def test_without_any_word_list_the_check_is_off_and_the_explainer_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = ExplainSettings(dictionaries=(tmp_path / "missing",))
    metrics = ExplainMetrics(CloudMetrics().registry)
    metrics.vocabulary.set(1)
    with caplog.at_level(logging.WARNING, "vau.cloud.explain.explainer"):
        ex = Explainer(s, ScriptedLlm(["Alert", "Ahleeball in the lower right."]), metrics)
    assert ex.vocabulary is None and metrics.value("vau_cloud_explain_vocabulary_words") == 0
    assert "no word list" in caplog.text and "wamerican" in caplog.text
    assert ex.explain(_event()).outcome == "llm"


@pytest.mark.skipif(
    load(DICTIONARIES) is None,
    reason="no system word list (apt install wamerican wbritish; .ci/run installs them)",
)
def test_the_system_word_lists_pass_plain_replies_and_refuse_what_smollm2_invented() -> None:
    vocab = load(DICTIONARIES)
    assert vocab is not None
    plain = [  # delivered replies of the tuning sets' events, British spelling included
        "A person appeared in the lower left, moving right, from 3.5s to 7.5s.",
        "Camera blocking: camera moved, covered or defocused, from 8.0s to 16.5s.",
        "Haze in the centre left, spreading; it's grey and we'll watch the colour change.",
    ]
    assert [vocab.unknown(t, "defocused") for t in plain] == [[], [], []]
    invented = "Something unusual appeared in the centre, moving down andupa: aphylococcus."
    assert vocab.unknown(invented) == ["andupa", "aphylococcus"]
