"""The samples `train-projector` makes of one synthetic event: the prompt carries the observed
category the explainer would give, the caption obeys it, and the unknown twin is the same event as
a deployment without that class sees it."""

from __future__ import annotations

import numpy as np

from vau.cloud.explain.evidence import EventEvidence
from vau.cloud.explain.facts import FrameEvidence
from vau.cloud.explain.projector_cli import event_samples
from vau.cloud.explain.schema import UNKNOWN
from vau.cloud.explain.settings import ExplainSettings

GRID = (16, 16)
TOKENS = tuple(np.full((4, 384), i, np.float32) for i in range(4))


def _moving_right() -> EventEvidence:
    def blob(col: int) -> tuple[int, ...]:
        return tuple((12 + r) * 16 + col + c for r in range(2) for c in range(2))

    frames = tuple(
        FrameEvidence(2.0 + i, 0.8, blob(1 + 3 * i), GRID, hot=blob(1 + 3 * i)) for i in range(4)
    )
    return EventEvidence("cam-0", "ev-1", 2.0, 6.5, 0.9, 4.0, "", frames, 0.1)


def _user(sample_messages: list[dict[str, str]]) -> str:
    return next(m["content"] for m in sample_messages if m["role"] == "user")


def test_an_event_the_classifier_named_is_one_sample_that_names_its_kind() -> None:
    (only,) = event_samples("intruder", _moving_right(), TOKENS, "Intrusion", ExplainSettings())
    assert only.caption.title.startswith("Person in the")
    assert "It looks like: Intrusion." in _user(only.messages)
    assert only.frames == TOKENS and only.label == "intruder"


def test_its_unknown_twin_is_the_same_window_with_no_kind_in_prompt_or_caption() -> None:
    named, twin = event_samples(
        "intruder", _moving_right(), TOKENS, "Intrusion", ExplainSettings(), unknown_twin=True
    )
    assert named.caption.title.startswith("Person in the")
    assert twin.caption.summary.startswith("Something unusual appeared in the")
    assert "Intrusion" not in _user(twin.messages) and "It looks like no kind" in _user(
        twin.messages
    )
    assert twin.frames == named.frames


def test_an_event_already_unknown_has_no_twin_and_a_probe_named_a_class_only_its_twin() -> None:
    s, ev = ExplainSettings(), _moving_right()
    assert len(event_samples("flood", ev, TOKENS, UNKNOWN, s, unknown_twin=True)) == 1
    assert event_samples("flood", ev, TOKENS, "Smoke", s) == []  # no true caption says haze
    (twin,) = event_samples("flood", ev, TOKENS, "Smoke", s, unknown_twin=True)
    assert twin.caption.summary.startswith("Something unusual appeared in the")
    assert event_samples("fire", ev, TOKENS, UNKNOWN, s, unknown_twin=True) == []  # held out
