"""Words a reply may use: an English dictionary, and whatever the LLM was shown.

A small writer sometimes runs out of sense mid-sentence and into words no language has: "moving
down andupa towards the edge", "stayed still: aphylococcus", "Ahleeball, a possibility of the
view ..." — 16 of 315 replies to the tuning sets' events. The number, place and kind checks pass
them (nothing in them is a number, a place or a kind), and the operator gets an alert that reads
as broken. A reply with a word that is in no dictionary and in nothing the model was shown is
refused like any invalid reply (`nonword`: one retry, then the template).

The dictionary is the system's word lists (`explain.dictionaries`, by default
`settings.DICTIONARIES`: on Debian and Ubuntu the `wamerican` and `wbritish` packages; "centre"
is British, "color" American), read once. Without any list the check is off, and the explainer
says so once at start. Words are runs of letters (any alphabet's: "café" is one word),
lowercased; the letters a contraction leaves after its apostrophe ("we'll" -> "we", "ll") are
words too.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CONTRACTED = frozenset({"s", "t", "d", "ll", "ve", "re", "m"})  # after an apostrophe
_LETTERS = re.compile(r"[^\W\d_]+")


def words(text: str) -> set[str]:
    """The runs of letters in `text`, lowercased. Not `evidence.words` (ASCII letters only, right
    for the place and kind words it looks for): that one reads "café" as "caf", a non-word."""
    return set(_LETTERS.findall(text.lower()))


@dataclass(frozen=True, slots=True)
class Vocabulary:
    words: frozenset[str]
    sources: tuple[str, ...]  # the lists it was read from

    def unknown(self, text: str, shown: str = "") -> list[str]:
        """The words of `text` that are in no list, not in `shown` (what the model was shown)
        and no contraction's ending, sorted."""
        odd = words(text) - self.words - CONTRACTED
        return sorted(odd - words(shown)) if odd else []


def load(paths: Sequence[Path]) -> Vocabulary | None:
    """The words of every list in `paths` that exists (one word a line); None when none does."""
    found = tuple(p for p in paths if p.is_file())
    return _read(found) if found else None


@functools.cache
def _read(paths: tuple[Path, ...]) -> Vocabulary:
    out: set[str] = set()
    for p in paths:
        out |= words(p.read_text("utf-8", errors="replace"))
    log.info("vocabulary: %d words from %s", len(out), ", ".join(map(str, paths)))
    return Vocabulary(frozenset(out), tuple(str(p) for p in paths))
