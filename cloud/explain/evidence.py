"""Edge records of one event -> language-space facts, and the deterministic decisions on them.

Pure functions. The edge has no classifier yet, so the category is the camera's configured one (or
"other"); the anomaly flag and threat level follow from the score curve, never from the LLM. What
and where (regions, movement, view change, onset, growth, recurrence) come from `facts.py`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vau.cloud.explain.facts import (
    Earlier,
    FrameEvidence,
    SceneFacts,
    region_shares,
    scene_facts,
)
from vau.cloud.explain.schema import OTHER
from vau.cloud.explain.settings import ExplainSettings
from vau.cloud.records import TokenFrame
from vau.common.regions import region_name

__all__ = ["Earlier", "FrameEvidence", "region_name", "region_shares"]  # re-exported

_NUMBER = re.compile(r"(?<![A-Za-z])-?\d+(?:\.\d+)?")
NUMBER_RUN = re.compile(r"(?<![A-Za-z])\d+(?:\.\d+)?")  # _NUMBER without the sign
# a number written as a time ("8.5s", "8.5 seconds") or a share ("19%", "19 percent")
_SECONDS = re.compile(r"(?<![A-Za-z\d.])(\d+(?:\.\d+)?) ?(?:s|secs?|seconds?)\b")
_PERCENT = re.compile(r"(?<![A-Za-z\d.])(\d+(?:\.\d+)?) ?(?:%|percent\b)")
# a rate: the number and what it counts per second ("0.11 view widths per second")
_RATE = re.compile(
    r"(?<![A-Za-z\d.])(\d+(?:\.\d+)?) ?((?:[a-z]+ ){0,3}?)per (?:second|sec|s)\b", re.IGNORECASE
)
# a number with letters glued to it ("8.5s", "5.0d"): the letters are its unit
_GLUED = re.compile(r"(?<![A-Za-z\d.])(\d+(?:\.\d+)?)([A-Za-z]+)\b")
GLUED_UNITS = frozenset({"s", "sec", "secs"})  # what a time may be written with, glued
_WORD = re.compile(r"[a-z]+")
# Words that say where or which way; a reply may use one only when the evidence does.
_PLACES = """left right up down upper lower top bottom centre center middle north south east west
upward upwards downward downwards leftward rightward spreading shrinking sudden gradual"""
PLACE_WORDS = frozenset(_PLACES.split())
LOCATION_WORDS = PLACE_WORDS - {"spreading", "shrinking", "sudden", "gradual"}
VIEW_CHANGED = "Most of the view changed at once"  # the view-change fact's sentence
FASTER = "Things in the view moved faster than is usual for this camera."  # the `faster` fact
STAYED = "Something new came to rest in the view and stayed still."  # the `stayed` fact
_VIEW = r"\b(?:view|scene|picture)\b"
_VIEW_DID = r"(?:changed|shifted)"
_CAMERA_DID = r"(?:moved|covered|tampered|knocked|defocused|blocked)"
# a reply saying the view changed as a whole ("the view was changed", "the camera was covered")
_VIEW_CLAIM = re.compile(
    rf"{_VIEW}(?:\s+\w+){{0,3}}?\s+{_VIEW_DID}\b|\bcamera\b(?:\s+\w+){{0,2}}?\s+{_CAMERA_DID}\b",
    re.IGNORECASE,
)
# what a summary of a whole-view change must say in one clause: what happened to the view or the
# camera ("the view changed", "the camera was moved, covered or defocused") or to the light ("the
# view went darker"); naming the camera is not saying what it saw ("The camera cam-0.")
_VIEW_SAID = re.compile(
    rf"(?:{_VIEW}|\bcamera\b)(?:\s+\w+){{0,3}}?\s+(?:{_VIEW_DID}|{_CAMERA_DID})\b",
    re.IGNORECASE,
)
LIGHT_WORDS = frozenset({"light", "lights", "dark", "darker", "brighter"})
_NEGATION = re.compile(r"\b(?:not|no|never|nothing|without)\b|n't\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class EventEvidence:
    camera: str
    event_id: str
    start: float
    end: float | None  # None: still open (early trigger)
    peak: float
    peak_t: float
    prior: str
    frames: tuple[FrameEvidence, ...] = ()
    baseline: float | None = None  # the camera's mean score before the event (score summaries)


@dataclass(frozen=True, slots=True)
class Facts:
    start: float
    end: float
    duration: float
    peak: float
    peak_t: float
    mean_inside: float | None
    baseline: float | None
    regions: tuple[tuple[str, float], ...]  # (name, share of the patches counted), largest first
    hot: bool  # regions count the edge's hot patches (where the anomaly is), else the kept ones
    changed: float | None  # mean share of the frame's patches the edge kept as changed
    frames: int
    ended: bool
    scene: SceneFacts  # what and where (facts.py)
    history: bool = False  # earlier events of the camera were consulted (recurrence is known)


@dataclass(frozen=True, slots=True)
class Decision:
    anomaly: bool
    category: str
    threat_level: int
    confidence: float


def frame_evidence(t: float, f: TokenFrame) -> FrameEvidence:
    """The adapter from a stored window frame: what the facts read of it."""
    return FrameEvidence(
        t=t,
        score=f.smoothed,
        indices=tuple(int(i) for i in f.indices),
        grid=f.grid,
        hot=tuple(int(i) for i in f.hot),
        components=f.components,
        pixel_change=f.pixel_change,
        brightness=f.brightness,
        detail=f.detail,
    )


def facts(ev: EventEvidence, earlier: Sequence[Earlier] | None = None) -> Facts:
    """The event's facts; `earlier`: the camera's earlier events (None = not consulted)."""
    end = ev.end if ev.end is not None else max([ev.peak_t, *(f.t for f in ev.frames)])
    inside = [f.score for f in ev.frames if ev.start <= f.t <= end]
    scene = scene_facts(ev.frames, ev.start, ev.peak, ev.peak_t, earlier or ())
    changed = [len(f.indices) / (f.grid[0] * f.grid[1]) for f in ev.frames]
    return Facts(
        start=ev.start,
        end=end,
        duration=max(0.0, end - ev.start),
        peak=ev.peak,
        peak_t=ev.peak_t,
        mean_inside=sum(inside) / len(inside) if inside else None,
        baseline=ev.baseline,
        regions=scene.where,
        hot=any(f.hot for f in ev.frames),
        changed=sum(changed) / len(changed) if changed else None,
        frames=len(ev.frames),
        ended=ev.end is not None,
        scene=scene,
        history=earlier is not None,
    )


def decide(f: Facts, camera: str, settings: ExplainSettings) -> Decision:
    """Anomaly = peak >= threshold; category = the camera's configured one or "other"; threat 0
    when normal, 2 for a high peak or a long event, else 1; confidence = the peak score."""
    anomaly = f.peak >= settings.threshold
    ctx = settings.cameras.get(camera)
    category = ctx.category if ctx is not None and ctx.category else OTHER
    if not anomaly:
        threat = 0
    elif f.peak >= settings.high_threshold or f.duration >= settings.long_event_s:
        threat = 2
    else:
        threat = 1
    return Decision(anomaly, category, threat, round(min(1.0, max(0.0, f.peak)), 2))


def evidence_lines(f: Facts) -> list[str]:
    """The facts as short sentences; every number, place or direction an explanation may quote
    appears here."""
    return score_lines(f) + scene_lines(f)


def score_lines(f: Facts) -> list[str]:
    """The score curve, the regions and the share kept, as sentences."""
    span = f"from {f.start:.1f}s to {f.end:.1f}s" if f.ended else f"since {f.start:.1f}s"
    lines = [
        f"The anomaly score rose {span} ({f.duration:.1f} seconds).",
        f"The score peaked at {f.peak:.2f} at {f.peak_t:.1f}s.",
    ]
    if f.mean_inside is not None:
        before = f" against {f.baseline:.2f} before" if f.baseline is not None else ""
        lines.append(f"The mean score during the event was {f.mean_inside:.2f}{before}.")
    if f.regions:
        top = ", ".join(f"{name} ({share:.0%})" for name, share in f.regions[:3])
        what = "The most anomalous patches were" if f.hot else "Most change was"
        lines.append(f"{what} in the {top} of the frame.")
    if f.changed is not None:
        lines.append(f"{f.frames} frames were sent; {f.changed:.0%} of each frame changed.")
    return lines


def scene_lines(f: Facts) -> list[str]:
    """What and where as sentences: view change, movement, share of the view, onset, growth,
    recurrence."""
    s = f.scene
    lines = []
    if s.view_change:
        lines.append(
            f"{VIEW_CHANGED}, over the whole frame (camera moved, covered or defocused, or lights)."
        )
        lines.extend(_light_lines(s))
    elif s.where:
        lines.append("The view as a whole did not change.")
    if s.where:
        lines.append(f"The anomalous patches were {s.view_share:.0%} of the view's patches.")
    if s.where and not s.view_change:
        lines.append(_movement_line(s))
    if s.faster:
        lines.append(FASTER)
    if s.stayed:
        lines.append(stayed_line(s))
    how = "within" if s.onset == "sudden" else "after"
    lines.append(f"The onset was {s.onset}: the score neared its peak {how} {s.rise_s:.1f}s.")
    lines.extend(_growth_lines(s))
    if s.earlier is not None:
        e = s.earlier
        lines.append(
            f"Something similar happened earlier on this camera: event {e.event_id} at "
            f"{e.start:.1f}s, in the {', '.join(e.where[:2])}."
        )
    elif f.history:
        lines.append("Nothing similar happened earlier on this camera.")
    return lines


def stayed_line(s: SceneFacts) -> str:
    """The `stayed` fact: where it came to rest when the anomalous region did not move (as the
    headline says it), else only that it did. Said as "in the view", a small model copied it and
    said no place (docs/explain.md: first try 90 -> 98 % on the seed-3 tuning set)."""
    if s.where and s.movement == "none":
        return f"Something new came to rest in the {s.where[0][0]} and stayed still."
    return STAYED


def _growth_lines(s: SceneFacts) -> list[str]:
    old, new = s.extents
    if s.growth in ("spreading", "shrinking"):
        return [f"The area they spanned was {s.growth}, from {old:.0%} to {new:.0%} of the view."]
    if s.growth == "steady":
        return [f"The area they spanned stayed steady at about {new:.0%} of the view."]
    return []


def _light_lines(s: SceneFacts) -> list[str]:
    if s.light is None or s.brightness is None:
        return []
    way = "fell" if s.light == "darker" else "rose"
    return [
        f"The view went {s.light} as a whole: its mean brightness {way} by "
        f"{abs(s.brightness):.0%} of full scale."
    ]


def _movement_line(s: SceneFacts) -> str:
    if s.movement == "none":
        return "The anomalous region did not move."
    way = "in mixed directions" if s.movement == "mixed" else s.movement
    return f"The anomalous region moved {way} at {s.speed:.2f} view widths per second."


def headline(f: Facts) -> str:
    """What happened and where, in a few words, from the facts alone."""
    s = f.scene
    if s.view_change and s.light is not None:
        return f"View went {s.light} over the whole frame"
    if s.view_change:
        return "View change over the whole frame"
    where = f" in the {s.where[0][0]}" if s.where else ""
    fast = ", faster than usual" if s.faster else ""
    if s.stayed and s.movement == "none":
        return f"Something came to rest{where}"
    if s.movement == "none":
        return f"Anomaly{where}{fast}"
    way = "in mixed directions" if s.movement == "mixed" else s.movement
    return f"Anomaly{where}, moving {way}{fast}"


def numbers(text: str) -> set[float]:
    """Every number written in `text` (percent signs dropped), as floats."""
    return {float(m) for m in _NUMBER.findall(text)}


def allowed_numbers(texts: Sequence[str]) -> frozenset[str]:
    """The number strings a reply may write: every one in `texts`, and the whole-number form of
    each whole value ("4" for "4.0")."""
    out = set()
    for text in texts:
        for n in NUMBER_RUN.findall(text):
            out.add(n)
            if float(n).is_integer():
                out.add(str(int(float(n))))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Allowed:
    """What a reply may write: these numbers and these place or direction words, and none of
    the `unsaid` words (those of a kind the observed category is not)."""

    numbers: frozenset[str]
    places: frozenset[str]
    unsaid: frozenset[str] = frozenset()

    @property
    def banned(self) -> frozenset[str]:
        """The words a reply may not write: the places the facts lack, and the `unsaid` ones."""
        return (PLACE_WORDS - self.places) | self.unsaid


def allowed(facts: str, camera: str = "", unsaid: frozenset[str] = frozenset()) -> Allowed:
    """What a reply to `facts` may write; the camera's name may be quoted, so its numbers count,
    but its words are no place ("gate-left" is no evidence of "left"). `unsaid`: words the reply
    may not write, but for those the facts themselves use."""
    return Allowed(
        allowed_numbers([facts, camera]),
        frozenset(words(facts) & PLACE_WORDS),
        unsaid - words(facts),
    )


def unfaithful_numbers(reply: str, evidence: str) -> set[float]:
    """Numbers in `reply` that the evidence does not contain, and times, percentages or rates it
    does not contain as such ("from 19.0s" where 19 is only a share, "19%"; "0.25 frames per
    second" where 0.25 is view widths per second), and numbers with letters glued to them that
    are no unit of a time and none the evidence glues ("from 3.0s to 5.0d", a delivered retry)
    (empty = faithful)."""
    extra = numbers(reply) - numbers(evidence)
    for unit in (_SECONDS, _PERCENT):
        extra |= _measures(unit, reply) - _measures(unit, evidence)
    extra |= {n for n, _ in _rates(reply) - _rates(evidence)}
    units = GLUED_UNITS | {u.lower() for _, u in _GLUED.findall(evidence)}
    extra |= {float(n) for n, u in _GLUED.findall(reply) if u.lower() not in units}
    return extra


def _rates(text: str) -> set[tuple[float, str]]:
    return {(float(n), " ".join(what.lower().split())) for n, what in _RATE.findall(text)}


def _measures(unit: re.Pattern[str], text: str) -> set[float]:
    return {float(m) for m in unit.findall(text)}


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def uninformative(summary: str, evidence: str) -> bool:
    """True when the evidence says where (or that things moved faster than usual) and the summary
    says none of it, or the evidence says the whole view changed and the summary does not say so
    (what happened to the view, the camera or the light; "Something appeared in the upper centre"
    of a view gone dark is true of its hottest patches and misleads; "The camera cam-0." names
    the camera and says nothing of it) in a clause that negates nothing ("This
    video shows how a camera can be tampered with without causing any harm" names the camera and
    says nothing happened to it): an alert that does not say what the camera saw cannot be acted
    on."""
    if VIEW_CHANGED in evidence:
        clauses = sentences(summary, ".!?:;")
        return not any(
            (_VIEW_SAID.search(t) or words(t) & LIGHT_WORDS) and not _NEGATION.search(t)
            for t in clauses
        )
    said = words(evidence) & LOCATION_WORDS
    if FASTER in evidence:
        said.add("faster")
    return bool(said) and not words(summary) & said


def claims_view_change(reply: str, evidence: str) -> bool:
    """True when the reply says the view (or the camera) changed as a whole in a sentence that
    negates nothing, and the evidence does not: a whole-view change is what the edge measured,
    not a phrase the writer may pick ("Anomaly: the view was changed, from centre left to upper
    right" of a fire in one corner)."""
    if VIEW_CHANGED in evidence:
        return False
    return any(_VIEW_CLAIM.search(t) and not _NEGATION.search(t) for t in sentences(reply))


def sentences(text: str, ends: str = ".!?") -> list[str]:
    """`text` cut after each character of `ends` that white space follows."""
    return re.split(rf"(?<=[{re.escape(ends)}])\s+", text)


def unfaithful_places(reply: str, evidence: str) -> set[str]:
    """Place or direction words in `reply` that the evidence does not contain (empty = faithful)."""
    return (words(reply) & PLACE_WORDS) - words(evidence)


def without_camera(text: str, camera: str) -> str:
    """`text` with the camera's name taken out: quoting it is faithful, and its words ("gate-left")
    are no evidence of a place."""
    return re.sub(re.escape(camera), " ", text, flags=re.IGNORECASE) if camera else text
