"""Faithful by construction: the in-process model cannot write a number or a place word the
facts lack."""

from __future__ import annotations

from typing import Any, cast

import pytest
import torch
from transformers import AutoTokenizer

from vau.cloud.explain.evidence import (
    allowed,
    allowed_numbers,
    unfaithful_numbers,
    unfaithful_places,
)
from vau.cloud.explain.faithful import NumberGuard, TokenTexts, WordGuard
from vau.cloud.explain.llm import resolve_model
from vau.cloud.explain.llm_transformers import TransformersLlm

FACTS = "The anomaly score rose from 4.0s to 6.5s (2.5 seconds). 40% of each frame changed."
ALLOWED = allowed_numbers([FACTS])


def test_allowed_numbers_are_the_facts_and_their_whole_forms() -> None:
    assert allowed_numbers([FACTS]) == {"4.0", "4", "6.5", "2.5", "40"}


@pytest.mark.parametrize(
    ("before", "token", "fits"),
    [
        ("from ", "4", True),  # the start of 4.0
        ("to ", "7", False),  # no fact starts with 7
        ("to 6.", "5", True),
        ("to 6.", "3", False),  # 6.3 is not a fact
        ("to 6", " ", False),  # 6 would end here, and 6 is not a fact
        ("at 4", "s", True),  # 4 is 4.0
        ("x 40", "0", False),  # 400
        ("end 6.5", ".", True),  # the full stop after a fact
        ("camera", "7", True),  # after a letter digits are a name, not a number
    ],
)
def test_a_token_fits_only_where_every_number_it_touches_is_a_fact(
    before: str, token: str, fits: bool
) -> None:
    assert NumberGuard(None, None, ALLOWED, 0).fits(before, token) is fits  # type: ignore[arg-type]


def guarded(tok: Any, table: TokenTexts, text: str) -> torch.Tensor:
    """The guard's scores (0 kept, -inf masked) for the token after `text`."""
    ids = cast(torch.LongTensor, torch.tensor([tok(text, add_special_tokens=False)["input_ids"]]))
    return NumberGuard(tok, table, ALLOWED, 0)(
        ids, cast(torch.FloatTensor, torch.zeros(1, len(tok)))
    )


def test_an_open_number_masks_every_token_that_would_end_it_wrongly() -> None:
    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))
    table = TokenTexts(tok, len(tok))
    scores = guarded(tok, table, "to 6.")
    open_ = [table.texts[i] for i in torch.nonzero(scores[0] > -1).flatten().tolist()]
    assert open_ and all(t.startswith("5") for t in open_), open_  # only 6.5 may follow
    scores = guarded(tok, table, "the end.")
    assert scores[0, tok.convert_tokens_to_ids("Ġthe")] == 0  # words stay free
    starts = {t: bool(scores[0, tok.convert_tokens_to_ids(t)] == 0) for t in "0123456789"}
    assert {t for t, ok in starts.items() if ok} == {"2", "4", "6"}  # 2.5, 4.0 / 40, 6.5


def test_place_and_kind_words_the_reply_may_not_write_are_masked_with_any_case_or_space() -> None:
    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))
    table = TokenTexts(tok, len(tok))
    ok = allowed(
        "The most anomalous patches were in the lower left (100%) of the frame.",
        unsaid=frozenset({"person", "smoke", "lower"}),
    )
    assert ok.places == {"lower", "left"}
    assert ok.unsaid == {"person", "smoke"}  # "lower" is the facts' own word: never banned
    scores = WordGuard(table, ok.banned)(
        cast(torch.LongTensor, torch.zeros(1, 1, dtype=torch.long)),
        cast(torch.FloatTensor, torch.zeros(1, len(tok))),
    )

    def score(text: str) -> float:
        return float(scores[0, tok(text, add_special_tokens=False)["input_ids"][0]])

    assert all(score(t) < 0 for t in (" up", " Up", "up", " down", " right", " upper"))
    assert all(score(t) < 0 for t in (" person", " Person", " smoke"))
    assert all(score(t) == 0 for t in (" left", " lower", " Left", " people", " haze"))


@pytest.mark.slow
def test_the_real_model_asked_for_other_numbers_and_places_writes_only_the_facts() -> None:
    llm = TransformersLlm("smollm2-135m-instruct")
    facts = f"{FACTS} It was in the lower left."
    numbers = [{"role": "user", "content": "Repeat exactly: the clock showed 7.25 and then 93."}]
    places = [{"role": "user", "content": "Say which way it went: up or down?"}]
    for ask, unfaithful in ((numbers, unfaithful_numbers), (places, unfaithful_places)):
        free = llm.generate(ask, 24)
        assert unfaithful(free, facts), free  # unguarded, it writes what it was asked about
        held = llm.generate(ask, 24, allowed=allowed(facts))
        assert not unfaithful_numbers(held, facts) and not unfaithful_places(held, facts), held
