"""Every text the LLM sees, as pure functions (one module, style item 11).

The prompt is short (SmolLM2-135M is tiny): system text, the camera's "what is normal here", the
edge's TET prior, the evidence, what it looks like (the observed category, the only kind the
reply may name), where to say it was (the evidence's largest region, or the whole view), the
decisions already taken, the question. The model writes only the title and the summary; the
reply is forced into JSON by prefilling the assistant turn.
"""

from __future__ import annotations

import json

from vau.cloud.explain.evidence import (
    Decision,
    Facts,
    evidence_lines,
    headline,
    scene_lines,
    score_lines,
)
from vau.cloud.explain.schema import UNKNOWN, LlmReply

Message = dict[str, str]
VIDEO = "<video>"  # where the visual tokens go when the projector is on
QUESTION = "What happened in this event?"
TITLE_PREFILL = '{"title": "'
SUMMARY_KEY = '", "summary": "'
STOP = ('"', "\n")

SYSTEM = (
    "You write short security camera alerts. Use only the facts given. Say what happened and "
    "where, with the facts' own place and direction words. "
    "Do not invent people, objects or causes. Answer in JSON with a title and a summary."
)
_THREAT = ("none", "low", "high")


def decision_text(d: Decision) -> str:
    kind = "an anomaly" if d.anomaly else "not an anomaly"
    return f"Decided: {kind}, category '{d.category}', threat {_THREAT[d.threat_level]}."


def observed_text(observed: str) -> str:
    """The observed category as a line: the one kind the text may name, or none."""
    if observed == UNKNOWN:
        return "It looks like no kind the edge knows: say what changed and where, not what it was."
    return f"It looks like: {observed}."


def where_text(f: Facts) -> str:
    """Where the reply should say it was: the whole view, or the largest region (both in the
    evidence already). Told it once more, a small model says where on its first try instead of
    "in the view" (docs/explain.md, "Prose by grammar ...": first try 86 -> 98 % on the tuning
    set)."""
    if f.scene.view_change:
        return "Where: the whole view."
    if f.scene.where:
        return f"Where: in the {f.scene.where[0][0]}."
    return ""


def user_text(
    camera: str,
    normal: str,
    prior: str,
    f: Facts,
    d: Decision,
    question: str,
    video: bool,
    observed: str = UNKNOWN,
) -> str:
    # The name in quotes: bare, a name such as the default "cam-0" reads to the model as the
    # start of a sentence about a camera, and it copied it ("The camera cam-0.") on a third of the
    # whole-view changes (docs/explain.md, "The camera's name in quotes").
    parts = [f'Camera "{camera}".']
    if normal:
        parts.append(f"Normal here: {normal}")
    parts += [prior, *evidence_lines(f), observed_text(observed), where_text(f), decision_text(d)]
    if video:  # last before the question: the text before it is the same with and without
        parts.append(f"Frames: {VIDEO}")
    parts.append(question)
    return "\n".join(p for p in parts if p)


def messages(
    camera: str,
    normal: str,
    prior: str,
    f: Facts,
    d: Decision,
    question: str = QUESTION,
    video: bool = False,
    observed: str = UNKNOWN,
) -> list[Message]:
    """`observed`: the observed category (`category.py`), the only kind the reply may name."""
    text = user_text(camera, normal, prior, f, d, question, video, observed)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def summary_prefill(title: str) -> str:
    return TITLE_PREFILL + json.dumps(title)[1:-1] + SUMMARY_KEY


def reply_json(title: str, summary: str) -> str:
    """The forced JSON the two prefilled generations spell out."""
    return json.dumps({"title": title, "summary": summary})


def template_reply(f: Facts, d: Decision) -> LlmReply:
    """The fallback, from the facts alone: what happened and where, when, then the evidence
    sentences while they fit."""
    what = headline(f)
    if not d.anomaly:
        what = f"Unusual activity: {what[0].lower()}{what[1:]}"
    cat = "" if d.category == "other" else f" ({d.category})"
    title = f"{what}{cat}, {f.start:.1f}s-{f.end:.1f}s"
    if len(title) > 80:
        title = what[:80]
    span = f"from {f.start:.1f} s to {f.end:.1f} s" if f.ended else f"since {f.start:.1f} s"
    summary = f"{what}{cat} {span}, {f.scene.onset} onset."
    for line in scene_lines(f) + score_lines(f)[1:]:  # what and where before the score
        if len(summary) + 1 + len(line) > 400:
            break
        summary = f"{summary} {line}"
    return LlmReply(title=title, summary=summary)
