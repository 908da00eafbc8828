"""What the projector learns to say: captions for event windows, written or read.

Two sources, one shape (`Caption`: a title and a summary, the two fields the LLM writes):

- **Synthetic** (`synthetic_caption`): the synthesiser knows the kind it drew; the caption says it
  ("A person appeared", "A haze rose", ...) and takes where, which way and when from the event's
  own facts, so every place, direction and number in it is one the prompt's evidence holds: the
  projector is never taught to write what the faithfulness check refuses. With the event's
  observed category (the prompt's "It looks like" line, the only kind a reply may name), the
  caption follows it: the kind when the classifier saw it, no kind ("Something unusual
  appeared") when it said unknown, and no caption when it named another kind (no true caption
  obeys that line). The tuned kinds (`vau.edge.synth.KINDS`) have captions, and the tuning-only
  probe kinds have the no-kind one (what the explainer should write of a kind it does not
  know); the held-out kinds stay unseen.
- **Public caption data** (`load_captions`), so a deployment can train on real footage with the
  same command: UCA's form (`{video: {"timestamps": [[s, e], ...], "sentences": [...]}}`, the
  UCF-Crime Annotation release) and the LLaVA conversation form HIVAU-70k is distributed in
  (`[{"video": ..., "conversations": [{"from": "human", ...}, {"from": "gpt", "value": ...}],
  "timestamps": [s, e]}]`; without timestamps: the whole video). Each becomes a `CaptionSpan`
  (a video file, a span, a caption).

`KIND_WORDS` are the words that name each tuned kind in a text: the evaluation counts which kind
an explanation's text names (what the visual tokens are for: the facts say where, not what).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vau.cloud.explain.category import LABELS
from vau.cloud.explain.evidence import Facts, words
from vau.cloud.explain.schema import UNKNOWN

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
TITLE_MAX = 80


class CaptionError(ValueError):
    """A caption file that cannot be read; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Caption:
    title: str
    summary: str


@dataclass(frozen=True, slots=True)
class CaptionSpan:
    video: Path
    start: float | None  # None: from the beginning
    end: float | None  # None: to the end
    caption: Caption


@dataclass(frozen=True, slots=True)
class _Kind:
    noun: str  # the title's subject
    did: str  # the summary's subject and verb
    view: bool  # the kind is a view change: no region in the caption


_KINDS = {
    "intruder": _Kind("Person", "A person appeared", False),
    "running": _Kind("People running", "People moved much faster than usual", False),
    "smoke": _Kind("Haze", "A haze rose", False),
    "tamper": _Kind("Camera tampered", "The camera was moved, covered or defocused", True),
}
_UNSEEN = _Kind("Anomaly", "Something unusual appeared", False)  # observed category unknown
KIND_WORDS = {
    "intruder": frozenset({"person"}),
    "running": frozenset({"running", "faster"}),
    "smoke": frozenset({"haze", "smoke"}),
    "tamper": frozenset({"tampered", "covered", "defocused"}),
}


def captioned_kinds() -> tuple[str, ...]:
    return tuple(_KINDS)


def synthetic_caption(kind: str, f: Facts, observed: str | None = None) -> Caption | None:
    """The caption of an event of a tuned `kind` from its facts; None for any other kind but the
    probe kinds. With `observed` (the event's observed category) it names the kind only when that
    is the kind's class, no kind when it is unknown; None when it is another class. A probe kind
    (`vau.edge.synth.PROBE_KINDS`, tuning-only, never a class) is captioned with no kind, where
    and when from its facts, unless the classifier named a class for it (no true caption obeys
    that line)."""
    from vau.edge.synth import PROBE_KINDS  # the synthesiser's names; not needed to explain

    k = _KINDS.get(kind)
    if k is None and kind not in PROBE_KINDS:
        return None
    if observed not in (None, UNKNOWN) and (k is None or observed != LABELS.get(kind)):
        return None
    if k is None or observed == UNKNOWN:
        k = _UNSEEN
    s = f.scene
    span = f"from {f.start:.1f}s to {f.end:.1f}s"
    if k.view or s.view_change or not s.where:
        title = k.noun if k.view or not s.view_change else f"{k.noun}: view changed"
        how = ": most of the view changed at once" if s.view_change else ""
        return Caption(title, f"{k.did}{how}, {span}.")
    where = s.where[0][0]
    moving = "" if s.movement == "none" else f", moving {_way(s.movement)}"
    return Caption(f"{k.noun} in the {where}", f"{k.did} in the {where}{moving}, {span}.")


def _way(movement: str) -> str:
    return "in mixed directions" if movement == "mixed" else movement


def named_kinds(text: str) -> set[str]:
    """The tuned kinds whose words `text` uses."""
    said = words(text)
    return {kind for kind, ws in KIND_WORDS.items() if said & ws}


# --- public caption data ----------------------------------------------------------------------


def title_of(sentence: str) -> str:
    """A caption sentence's first clause, cut at a word to fit a title."""
    head = sentence.strip().split(". ")[0].rstrip(".")
    if len(head) <= TITLE_MAX:
        return head
    return head[: TITLE_MAX - 3].rsplit(" ", 1)[0] + "..."


def _caption(sentence: str) -> Caption:
    text = " ".join(sentence.split())
    return Caption(title_of(text), text[:400])


def find_video(videos: Path, name: str) -> Path:
    """`name` under `videos`, as given or with a video suffix (UCA names carry none)."""
    given = videos / name
    if given.is_file():
        return given
    for suffix in VIDEO_SUFFIXES:
        path = videos / f"{name}{suffix}"
        if path.is_file():
            return path
    raise CaptionError(f"video {name!r} is not in {videos} (tried {', '.join(VIDEO_SUFFIXES)})")


def load_captions(path: Path, videos: Path) -> list[CaptionSpan]:
    """UCA or LLaVA-conversation (HIVAU-70k) caption data -> spans of videos under `videos`."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CaptionError(f"cannot read captions {path}: {exc}") from None
    if isinstance(data, dict):
        return [s for name, entry in data.items() for s in _uca(path, videos, name, entry)]
    if isinstance(data, list):
        return [_conversation(path, videos, i, entry) for i, entry in enumerate(data)]
    raise CaptionError(f"{path}: want UCA's object or a list of conversations, got {type(data)}")


def _uca(path: Path, videos: Path, name: str, entry: Any) -> list[CaptionSpan]:
    if not isinstance(entry, dict):
        raise CaptionError(f"{path}: entry {name!r} is not an object")
    stamps, sentences = entry.get("timestamps"), entry.get("sentences")
    if not isinstance(stamps, list) or not isinstance(sentences, list):
        raise CaptionError(f"{path}: entry {name!r} needs 'timestamps' and 'sentences' lists")
    if len(stamps) != len(sentences):
        raise CaptionError(
            f"{path}: entry {name!r} has {len(stamps)} timestamps and {len(sentences)} sentences"
        )
    video = find_video(videos, name)
    return [
        CaptionSpan(video, *_span(path, name, stamp), _caption(str(sentence)))
        for stamp, sentence in zip(stamps, sentences, strict=True)
    ]


def _conversation(path: Path, videos: Path, index: int, entry: Any) -> CaptionSpan:
    if not isinstance(entry, dict) or "video" not in entry:
        raise CaptionError(f"{path}: item {index} has no 'video'")
    turns = entry.get("conversations")
    answers = [
        t.get("value", "")
        for t in turns or []
        if isinstance(t, dict) and t.get("from") in ("gpt", "assistant")
    ]
    if not answers or not str(answers[-1]).strip():
        raise CaptionError(f"{path}: item {index} has no answer ('from': 'gpt') to learn")
    stamp = entry.get("timestamps")
    start, end = (None, None) if stamp is None else _span(path, f"item {index}", stamp)
    return CaptionSpan(find_video(videos, str(entry["video"])), start, end, _caption(answers[-1]))


def _span(path: Path, name: str, stamp: Sequence[Any]) -> tuple[float, float]:
    try:
        start, end = float(stamp[0]), float(stamp[1])
    except (TypeError, ValueError, IndexError):
        raise CaptionError(f"{path}: {name}: a timestamp must be [start, end] seconds") from None
    if not 0 <= start < end:
        raise CaptionError(f"{path}: {name}: timestamp [{start}, {end}] is not a span")
    return start, end
