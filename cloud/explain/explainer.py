"""One event's evidence -> a validated `Explanation`: prompt, LLM, parse, check, retry, fallback.

The LLM writes a title and a summary, each generated after a prefilled JSON prefix and stopped at
the closing quote, so the reply is JSON by construction. A reply is invalid when it does not parse,
breaks the `LlmReply` schema, contains a placeholder ("[location]") or markup (braces, brackets,
backquotes: a reply that ran into code), digits run together ("1.0.0.0.1", "/2/2/2") or the same
words three times over (a loop), or quotes a number or a place or direction word ("left",
"upper", "spreading", ...) the evidence does not contain (faithfulness);
one retry (told why), then a template built from the facts (`fallback: true`). The explanation
carries the facts' `where`, `movement`, `view_change` and `evidence` whatever wrote the text.

With a projector, the visual tokens go to the LLM as embeddings; a backend that cannot send them
(`PromptEmbedsRefusedError`: a server without prompt embeddings) gets the text-only prompt
instead, and `visual_tokens` says which happened. An LLM that fails (`LlmError`: server down after
its retries, a refused request, a reply that is no completion) gives the template too, so the
alert goes out on time; each failure is counted and logged. Thread-safe: the service runs up to
`explain.concurrency` explanations at once.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from vau.cloud.explain import prompts
from vau.cloud.explain.captions import KIND_WORDS, named_kinds
from vau.cloud.explain.category import LABELS, CategoryModel
from vau.cloud.explain.evidence import (
    Allowed,
    Earlier,
    EventEvidence,
    Facts,
    allowed,
    claims_view_change,
    decide,
    evidence_lines,
    facts,
    sentences,
    unfaithful_numbers,
    unfaithful_places,
    uninformative,
    without_camera,
    words,
)
from vau.cloud.explain.llm import LlmBackend, LlmError, LlmSetupError, PromptEmbedsRefusedError
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.schema import UNKNOWN, Explanation, LlmReply
from vau.cloud.explain.settings import ExplainSettings
from vau.cloud.explain.vocabulary import Vocabulary, load

if TYPE_CHECKING:  # torch only where visual tokens are on (the projector loads it)
    import torch

    from vau.cloud.explain.projector import FrameTokenizer

log = logging.getLogger(__name__)
History = Callable[[EventEvidence], Sequence[Earlier]]  # the camera's earlier events
TITLE_TOKENS = 24
_LATIN_LAST = 0x24F  # the end of Latin Extended-B: letters beyond it are another script
_PLACEHOLDER = re.compile(r"\[[^\]]*\]|<[^>]*>")
_MARKUP = re.compile(r"[{}\[\]<>|\\`]")  # code or JSON leaking into prose ('past.") }}]}]].')
_TOKENS = re.compile(r"[^\W_]+")  # words and numbers' digit runs, for `looped`
LOOP_WORDS, LOOP_TIMES = 3, 3
# digits run together with dots or slashes: no number a sentence writes ("22.0.22.0000", "com/2/2")
_GARBLED = re.compile(r"\d+(?:\.\d+){2,}|\d/|/\d")
# the prompt's decision line ("Decided: an anomaly, category 'other', threat high."), which the
# alert carries in its own fields: copied into the text, it says nothing of what the camera saw
# ("Camera moved, category 'other', threat high, number 72,")
_ECHO = re.compile(
    r"\bcategory\s*[:'\"]|\bthreat (?:level )?(?:none|low|high|[0-2])\b|\bdecided\b", re.I
)


class InvalidReplyError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class ExplainResult:
    explanation: Explanation
    outcome: str  # "llm" | "retry" | "fallback"
    replies: tuple[str, ...]  # raw replies, for logs and measurements
    seconds: float
    rejected: tuple[str, ...] = ()  # why each refused reply was refused (InvalidReplyError.reason)


def parse_reply(
    text: str,
    evidence: str,
    kinds: frozenset[str] | None = None,
    camera: str = "",
    vocabulary: Vocabulary | None = None,
    shown: str = "",
) -> LlmReply:
    """The first JSON object in `text` as an LlmReply, checked against `evidence` (the facts'
    sentences) and, with `kinds`, naming no kind but those (`captions.KIND_WORDS`: the kinds of
    the observed category; none when it is unknown) in words the evidence does not use; with
    `vocabulary`, using no word that is in neither it, the evidence nor `shown` (the prompt). The
    camera's name may be quoted: it is removed before the numbers and places are checked, and it
    says nothing of where ("The camera vtest-right." is no place)."""
    start = text.find("{")
    if start < 0:
        raise InvalidReplyError("json", "no JSON object")
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise InvalidReplyError("json", str(exc)) from None
    try:
        reply = LlmReply.model_validate(obj)
    except ValidationError as exc:
        raise InvalidReplyError("schema", str(exc.errors()[0]["msg"])) from None
    both = f"{reply.title} {reply.summary}"
    both = without_camera(both, camera)
    _check_form(both, (reply.title, reply.summary))
    extra = unfaithful_numbers(both, evidence)
    if extra:
        raise InvalidReplyError("unfaithful", f"numbers not in the evidence: {sorted(extra)}")
    places = unfaithful_places(both, evidence)
    if places:
        raise InvalidReplyError("unfaithful", f"places not in the evidence: {sorted(places)}")
    if claims_view_change(both, evidence):
        raise InvalidReplyError("unfaithful", "says the view changed; the evidence does not")
    # a kind's word the facts themselves use ("faster") is faithful, not a guess at the kind
    unsaid = named_kinds(" ".join(words(both) - words(evidence)))
    if kinds is not None and unsaid - kinds:
        said = ", ".join(sorted(unsaid - kinds))
        raise InvalidReplyError("kind", f"names {said}, which the observed category does not")
    odd = vocabulary.unknown(both, f"{evidence} {shown}") if vocabulary is not None else []
    if odd:
        raise InvalidReplyError("nonword", f"words in no dictionary: {odd}")
    if uninformative(without_camera(reply.summary, camera), evidence):
        raise InvalidReplyError("uninformative", "the summary says neither where nor what changed")
    return reply


def looped(text: str, n: int = LOOP_WORDS, times: int = LOOP_TIMES) -> bool:
    """True when some run of `n` words (or numbers) comes `times` times or more in `text` (one
    field): a writer gone round in a loop ("The camera was tampered with by a human. The camera
    was tampered with by a human. ..."; "(20.0) (20.0) (20.0)"). A title and its summary may
    each name the same place once; the facts never say one thing three times."""
    counts = Counter(_runs(text, n)[1])
    return bool(counts) and max(counts.values()) >= times


def _runs(text: str, n: int) -> tuple[list[re.Match[str]], list[tuple[str, ...]]]:
    """`text`'s words (and digit runs) as matches, and each run of `n` of them, lower-cased."""
    spans = list(_TOKENS.finditer(text))
    words = [m.group().lower() for m in spans]
    return spans, [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def cut_loop(text: str, n: int = LOOP_WORDS, times: int = LOOP_TIMES) -> str:
    """A summary that went round in a loop, cut before the loop's second round and back to its
    last full sentence ("The camera moved from 2.0s to 7.5s. The camera moved from 2.0s to
    7.5s. The camera moved" -> its first sentence): what is kept is text the model wrote, checked
    as any other. Unchanged when no run of `n` words comes `times` times (`looped`) or no full
    sentence comes before the loop (then `looped` refuses it)."""
    spans, runs = _runs(text, n)
    counts = Counter(runs)
    seen: set[tuple[str, ...]] = set()
    for i, run in enumerate(runs):
        if counts[run] < times:
            continue
        if run in seen:
            head = trim_sentence(text[: spans[i].start()])
            return head if head.endswith((".", "!", "?")) else text
        seen.add(run)
    return text


def _check_form(text: str, fields: Sequence[str]) -> None:
    """Prose in the Latin alphabet, with no placeholder, no code or markup, no digits run
    together ("Camera vtest. 22.0.22.0000"), no field gone round in a loop and no copy of the
    prompt's decision line."""
    if _PLACEHOLDER.search(text):
        raise InvalidReplyError("placeholder", _PLACEHOLDER.findall(text)[0])
    if _MARKUP.search(text):
        raise InvalidReplyError("markup", f"code or markup in the text: {_MARKUP.findall(text)}")
    if _GARBLED.search(text):
        raise InvalidReplyError("garbled", f"digits no sentence writes: {_GARBLED.findall(text)}")
    if any(looped(f) for f in fields):
        raise InvalidReplyError("looped", "the same words three times over")
    if _ECHO.search(text):
        raise InvalidReplyError("echo", f"repeats the prompt's decision: {_ECHO.findall(text)}")
    foreign = sorted({c for c in text if c.isalpha() and ord(c) > _LATIN_LAST})
    if foreign:  # the model drifted into another script mid-sentence ("4th седенция")
        raise InvalidReplyError("script", f"letters outside the Latin alphabet: {''.join(foreign)}")


def tidy_title(title: str) -> str:
    """The title without the punctuation a cut-off generation leaves at its end ("Anomaly in the
    centre:", 4 of 81 held-out first tries)."""
    return title.rstrip(" :;,-") or title


def first_sentence(text: str, most: int = 200) -> str:
    """The summary's first sentence (Frigate's `shortSummary`), at most `most` characters."""
    text = text.strip()
    end = min(
        (i for i in (text.find(". "), text.find("! "), text.find("? ")) if i >= 0), default=-1
    )
    head = text if end < 0 else text[: end + 1]
    return head if len(head) <= most else head[: most - 3].rstrip() + "..."


def concerns(f: Facts) -> tuple[str, ...]:
    """What a reviewer should know beside the event itself, from the facts only."""
    out = []
    e = f.scene.earlier
    if e is not None:
        out.append(f"It recurs: event {e.event_id} at {e.start:.1f}s was in the same region.")
    if not f.ended:
        out.append("The event was still open when this was written.")
    if not f.hot:
        out.append("The edge had no normality model: where is where things changed.")
    return tuple(out)


def trim_sentence(text: str) -> str:
    """A summary cut by the token limit, back to its last full sentence (when it has one).

    Sentences end where the checks' do (`evidence.sentences`: a point before white space): cutting
    at the last point of any kind turned "from 2.0s to 7.5s" into "from 2.0s to 7.", whose "7"
    the check then refused (docs/explain.md, "A decimal point is not a full stop")."""
    text = text.strip()
    last = sentences(text)[-1]
    if last == text or last.endswith((".", "!", "?")):
        return text
    return text[: len(text) - len(last)].rstrip()


class Explainer:
    """Synchronous; run it on one worker thread (the LLM is the bottleneck)."""

    def __init__(
        self,
        settings: ExplainSettings,
        llm: LlmBackend,
        metrics: ExplainMetrics | None = None,
        frame_tokenizer: FrameTokenizer | None = None,
        history: History | None = None,
        category: CategoryModel | None = None,
    ) -> None:
        self.settings, self.llm, self.metrics = settings, llm, metrics
        self.category = category  # None: the observed category is always "unknown"
        self.frame_tokenizer = frame_tokenizer  # None until trained weights are loaded
        self.history = history  # None: recurrence is not stated
        self.vocabulary = load(settings.dictionaries)
        if metrics is not None:
            metrics.vocabulary.set(0 if self.vocabulary is None else len(self.vocabulary.words))
        if self.vocabulary is None:
            log.warning(
                "no word list at %s: replies are not checked for words in no dictionary "
                "(Debian/Ubuntu: apt install wamerican wbritish; or set explain.dictionaries)",
                ", ".join(map(str, settings.dictionaries)) or "(none configured)",
            )

    def explain(
        self,
        ev: EventEvidence,
        tokens: Sequence[np.ndarray] = (),
        question: str = prompts.QUESTION,
        earlier: Sequence[Earlier] | None = None,
    ) -> ExplainResult:
        """`earlier`: the camera's earlier events, for recurrence (else `history`, if set)."""
        began = time.perf_counter()
        if earlier is None and self.history is not None:
            earlier = self.history(ev)
        f = facts(ev, earlier)
        d = decide(f, ev.camera, self.settings)
        ctx = self.settings.cameras.get(ev.camera)
        normal = ctx.normal if ctx is not None else ""
        visual = self._visual(tokens, question)
        video = visual is not None
        observed = self._observed(ev, f, tokens)
        msgs = prompts.messages(ev.camera, normal, ev.prior, f, d, question, video, observed)
        shown = " ".join(m["content"] for m in msgs)
        check = _Check(" ".join(evidence_lines(f)), _kinds_of(observed), ev.camera, shown)
        try:
            outcome, reply, replies, rejected = self._replies(msgs, visual, check)
        except PromptEmbedsRefusedError as exc:
            self._count_llm_error(exc)
            visual, video = None, False  # the server takes no embeddings: the text-only prompt
            msgs = prompts.messages(ev.camera, normal, ev.prior, f, d, question, False, observed)
            outcome, reply, replies, rejected = self._replies(msgs, None, check)
        if reply is None:
            reply = prompts.template_reply(f, d)
        explanation = Explanation(
            title=tidy_title(reply.title),
            summary=reply.summary,
            anomaly=d.anomaly,
            category=d.category,
            observed_category=observed,
            start=f.start,
            end=f.end,
            confidence=d.confidence,
            threat_level=d.threat_level,
            llm=self.llm.model_id,
            projector=self._projector_kind() if visual is not None else None,
            visual_tokens=video,
            fallback=outcome == "fallback",
            where=tuple(name for name, _ in f.scene.where),
            movement=f.scene.movement,
            view_change=f.scene.view_change,
            evidence=tuple(evidence_lines(f)),
            short_summary=first_sentence(reply.summary),
            scene=normal[:400],
            other_concerns=concerns(f),
            potential_threat_level=d.threat_level,
        ).check_category(self.settings.classes)
        seconds = time.perf_counter() - began
        if self.metrics is not None:
            self.metrics.explanations.labels(outcome).inc()
            self.metrics.seconds.observe(seconds)
        return ExplainResult(explanation, outcome, tuple(replies), seconds, tuple(rejected))

    def _replies(
        self, msgs: list[prompts.Message], visual: torch.Tensor | None, check: _Check
    ) -> tuple[str, LlmReply | None, list[str], list[str]]:
        """(outcome, the valid reply or None, raw replies, why each refused one was): two tries,
        the second told why the first was rejected. An LLM failure ends the tries (the template
        follows)."""
        prompt, replies, rejected = msgs[1]["content"], list[str](), list[str]()
        for attempt in range(2):
            try:
                raw = self._ask(msgs, visual, check.allowed())
            except (PromptEmbedsRefusedError, LlmSetupError):
                raise  # the caller goes text-only / the settings are wrong
            except LlmError as exc:
                log.warning(
                    "LLM %s failed (%s): %s; the facts' template explains this event",
                    self.llm.model_id,
                    exc.kind,
                    exc,
                )  # the backend counted it (vau_cloud_llm_errors_total)
                return "fallback", None, replies, rejected
            replies.append(raw)
            try:
                reply = parse_reply(
                    raw, check.facts, check.kinds, check.camera, self.vocabulary, check.shown
                )
                return ("llm" if attempt == 0 else "retry"), reply, replies, rejected
            except InvalidReplyError as exc:
                log.info("invalid LLM reply (%s): %r", exc, raw)
                rejected.append(exc.reason)
                if self.metrics is not None:
                    self.metrics.invalid.labels(exc.reason).inc()
                msgs = [msgs[0], {"role": "user", "content": f"{prompt}\n{_retry_note(exc)}"}]
        return "fallback", None, replies, rejected

    def _projector_kind(self) -> str | None:
        return None if self.frame_tokenizer is None else self.frame_tokenizer.kind

    def _observed(self, ev: EventEvidence, f: Facts, tokens: Sequence[np.ndarray]) -> str:
        if self.category is None:
            return UNKNOWN
        return self.category.observe(ev, f, self.settings.classes, tokens)

    def _count_llm_error(self, exc: LlmError) -> None:
        if self.metrics is not None:
            self.metrics.llm.errors.labels(self.settings.backend, exc.kind).inc()

    def _visual(self, tokens: Sequence[np.ndarray], question: str) -> torch.Tensor | None:
        if self.frame_tokenizer is None or not tokens:
            return None
        import torch

        from vau.cloud.explain.projector import ProjectorError, check_tokens

        try:
            check_tokens(self.frame_tokenizer, [int(np.shape(t)[-1]) for t in tokens])
        except ProjectorError as exc:
            log.warning("visual tokens off for this event: %s", exc)
            if self.metrics is not None:
                self.metrics.llm.errors.labels(self.settings.backend, "projector_tokens").inc()
            return None
        q = self.llm.embed_text(question)
        with torch.inference_mode():
            frames = [torch.from_numpy(np.asarray(t, np.float32)) for t in tokens]
            out: torch.Tensor = self.frame_tokenizer(frames, q)
        return out

    def _ask(
        self,
        msgs: list[prompts.Message],
        visual: torch.Tensor | None,
        allowed: Allowed,
    ) -> str:
        n = self.settings.max_new_tokens

        def gen(prefill: str, max_new: int) -> str:
            if visual is None:
                return self.llm.generate(
                    msgs, max_new, prefill=prefill, stop=prompts.STOP, allowed=allowed
                )
            return self.llm.generate_embeds(
                msgs, visual, max_new, prefill=prefill, stop=prompts.STOP, allowed=allowed
            )

        title = gen(prompts.TITLE_PREFILL, TITLE_TOKENS).strip()
        summary = cut_loop(trim_sentence(gen(prompts.summary_prefill(title), n)))
        return prompts.reply_json(title, summary)


@dataclass(frozen=True, slots=True)
class _Check:
    """What a reply is checked against: the facts' sentences (not the whole prompt: a camera
    named "gate-left" is no evidence of "left") and the kinds it may name."""

    facts: str
    kinds: frozenset[str]
    camera: str
    shown: str = ""  # the whole prompt: a word copied from it is no invented word

    def allowed(self) -> Allowed:
        """The numbers and place words a reply may write, and the kinds' words it may not (the
        decoding holds to them)."""
        unsaid = frozenset().union(*(ws for k, ws in KIND_WORDS.items() if k not in self.kinds))
        return allowed(self.facts, self.camera, unsaid)


# Kinds whose words a reply about another kind may use: people running are persons, so naming
# a person is no guess at an intrusion when the event looks like running.
ALSO_NAMED = {"running": frozenset({"intruder"})}


def _kinds_of(observed: str) -> frozenset[str]:
    """The synthetic kinds a reply may name: those whose class is the observed category (none
    for "unknown"), and what they imply (`ALSO_NAMED`)."""
    kinds = {kind for kind, label in LABELS.items() if label == observed}
    return frozenset(kinds.union(*(ALSO_NAMED.get(k, frozenset()) for k in kinds)))


def _retry_note(exc: InvalidReplyError) -> str:
    plain = " in plain English words" if exc.reason == "nonword" else ""
    return (
        f"Your last answer was rejected ({exc.reason}). Write a plain title and summary{plain} "
        "using only the facts, numbers, places and directions above."
    )
