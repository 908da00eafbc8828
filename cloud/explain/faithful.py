"""Faithful by construction: while the in-process model writes, it can write no number and no
place or direction word that the facts lack, and no word of a kind the observed category is not.

- `NumberGuard`: a number may start or go on only as the beginning of a number the facts hold,
  and end only where it is one of them.
- `WordGuard`: the tokens that are a banned word, with or without a leading space or a capital
  (" left", "Up"), are masked: the place or direction words (`evidence.PLACE_WORDS`) the facts do
  not use, and the words of the kinds the reply may not name (`captions.KIND_WORDS`: " person"
  when the observed category is unknown). A word split over several tokens ("cent" "re") is not
  caught here; the check after still is.

The checks after generation (`evidence.unfaithful_numbers`, `unfaithful_places`) stay and still
refuse; with the guards the model mostly cannot fail them, so neither the retry nor the template
is spent on a miscopied "6.3d" or a "moving up and down" the facts never said (docs/explain.md).
A number is what the check counts as one (`evidence.NUMBER_RUN`: digits with an
optional decimal part, not right after a letter), compared as a value ("4" is "4.0").

Per step the guard decodes what was generated so far and looks only at the tokens that hold a
digit or begin with one or a point (70 of SmolLM2's 49,152); when a number is open, every other
token would close it, so they are all allowed or all masked at once.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch
from transformers import LogitsProcessor

from vau.cloud.explain.captions import KIND_WORDS
from vau.cloud.explain.evidence import NUMBER_RUN, PLACE_WORDS

GUARDED = PLACE_WORDS.union(*KIND_WORDS.values())  # the words a WordGuard can mask

WINDOW = 24  # characters of context a number can reach back into


class TokenTexts:
    """Each token's text, and the tokens a number guard must look at, for one tokenizer."""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        n = min(vocab_size, len(tokenizer))
        self.texts = [str(tokenizer.decode([i])) for i in range(n)]
        self.watched = [  # hold a digit, or begin with one or a point
            i for i, t in enumerate(self.texts) if any(c.isdigit() for c in t) or t[:1] == "."
        ]
        self.words: dict[str, list[int]] = {}  # guarded word -> the tokens that are exactly it
        for i, t in enumerate(self.texts):
            w = t.strip().lower()
            if w in GUARDED:
                self.words.setdefault(w, []).append(i)


class NumberGuard(LogitsProcessor):
    """Masks the tokens that would write a number outside `allowed` (batch 1)."""

    def __init__(
        self, tokenizer: Any, table: TokenTexts, allowed: Collection[str], start: int
    ) -> None:
        self.tokenizer, self.table, self.start = tokenizer, table, start
        self.allowed = frozenset(allowed)
        self.values = {float(a) for a in self.allowed}

    def _complete(self, number: str) -> bool:
        return float(number) in self.values

    def _prefix(self, partial: str) -> bool:
        return any(a.startswith(partial) for a in self.allowed)

    def fits(self, before: str, token: str) -> bool:
        """Whether writing `token` after `before` keeps every number that it touches allowed."""
        window = before[-WINDOW:] + token
        new = len(window) - len(token)
        for m in NUMBER_RUN.finditer(window):
            if window[m.end() : new] not in ("", "."):
                continue  # closed before the token (only a point between leaves it open)
            rest = window[m.end() :]
            if rest == "":  # still open
                ok = self._complete(m.group()) or self._prefix(m.group())
            elif rest == ".":  # a decimal point or the sentence's full stop
                ok = self._complete(m.group()) or self._prefix(m.group() + ".")
            else:
                ok = self._complete(m.group())
            if not ok:
                return False
        return True

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        text = str(self.tokenizer.decode(input_ids[0, self.start :], skip_special_tokens=True))
        open_number = _open(text)
        keep = torch.zeros(scores.shape[-1], dtype=torch.bool, device=scores.device)
        if open_number is None or self.fits(text, " "):
            keep[:] = True  # a token without digits closes nothing that is not allowed
        for i in self.table.watched:
            if i < keep.shape[0]:
                keep[i] = self.fits(text, self.table.texts[i])
        if bool(keep.any()):
            scores[:, ~keep] = -float("inf")
        return scores


def _open(text: str) -> str | None:
    """The number being written at the end of `text` (digits and points after a non-letter), or
    None."""
    k = len(text)
    while k > 0 and (text[k - 1].isdigit() or text[k - 1] == "."):
        k -= 1
    run = text[k:].lstrip(".")
    if not run or not run[0].isdigit() or (k > 0 and text[k - 1].isalpha()):
        return None
    return run


class WordGuard(LogitsProcessor):
    """Masks the tokens that are one of the `banned` words (any batch)."""

    def __init__(self, table: TokenTexts, banned: Collection[str]) -> None:
        ids = [i for w, tokens in table.words.items() if w in banned for i in tokens]
        self.banned = torch.tensor(ids, dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.banned.numel():
            keep = self.banned[self.banned < scores.shape[-1]].to(scores.device)
            scores[:, keep] = -float("inf")
        return scores
