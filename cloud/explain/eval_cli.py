"""`vau-cloud eval-explanations` and `vau-cloud train-category`: the explanation chain over an
evaluation set (`vau-edge make-eval-set`), scored against what the synthesiser drew.

Both run every test clip through `chain` (the real edge pipeline with the camera's normality
model, the real wire, the cloud's evidence). The clip's event is the one overlapping its span
most. `train-category` fits the observed-category classifier on those events of the tuned kinds,
with the probe kinds' as its outlier class (it skips held-out kinds); `eval-explanations`
explains every event with the configured LLM and reports, per kind and for the tuned, probe and
held-out groups:

- explained: share of anomalous clips whose span an explained event overlaps (the rest are missed
  by the edge and scored nowhere else);
- where: the explanation's first region is one the effect drew in (clips with a drawn region and
  no view change); movement and view_change: equal to what was drawn (movement only where the
  effect has a direction: not `running`);
- category: the observed category is the kind's class (tuned kinds), or `unknown` (held-out and
  tuning-only probe kinds: anything else would be a wrong known kind); probe kinds are reported
  as a group of their own;
- span IoU of the event with the drawn span; on normal clips, the events explained (false alarms);
- faithfulness (delivered texts with a number, place or direction the evidence lacks: must be 0),
  first-try validity (the LLM's first reply passed), why the refused replies were refused (by
  reason), fallbacks, latency p50 / p95, and tokens per second (the replies' tokens, every try,
  over the seconds spent explaining, end to end); first-try validity and the reasons also per
  kind and group, over the clips' own events: a writer that passes on the tuning kinds' events
  can fail more often on kinds nobody tuned on (docs/explain.md, Evaluation).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from vau.cloud.explain import category as cat
from vau.cloud.explain import edge_cache
from vau.cloud.explain.captions import named_kinds
from vau.cloud.explain.category_cv import Sample, cross_validate, fit_samples
from vau.cloud.explain.chain import CloudEvent, cloud_events, explain_all, run_edge
from vau.cloud.explain.evidence import (
    facts,
    unfaithful_numbers,
    unfaithful_places,
    without_camera,
)
from vau.cloud.explain.explainer import Explainer, ExplainResult
from vau.cloud.explain.projector_choice import configured_tokenizer
from vau.cloud.explain.schema import UNKNOWN
from vau.edge.synth import HELDOUT_KINDS, PROBE_KINDS

log = logging.getLogger(__name__)

CONDITIONS = ("text", "visual", "visual_swapped")


@dataclass(frozen=True)
class ClipEvents:
    kind: str
    camera: str
    video: str
    span: tuple[float, float] | None
    truth: dict[str, Any] | None
    events: list[CloudEvent]

    def matched(self) -> int | None:
        """Index of the event overlapping the span most; None when none does."""
        if self.span is None:
            return None
        a, b = self.span
        best, index = 0.0, None
        for i, e in enumerate(self.events):
            end = e.event.end if e.event.end is not None else e.event.peak_t
            overlap = min(b, end) - max(a, e.event.start)
            if overlap > best:
                best, index = overlap, i
        return index


def clip_events(
    manifest: Path, models: Path, edge_config: Path | None, skip: Sequence[str] = ()
) -> Iterator[ClipEvents]:
    """Every test clip of an eval set (but those of the `skip` kinds) through the edge and the
    wire; normality models are learnt where missing."""
    from vau.edge.analysers import build_analyser
    from vau.edge.evaluate import camera_of, clip_settings, ensure_models
    from vau.edge.manifest import load_manifest
    from vau.edge.settings import load_settings
    from vau.edge.tetg import load_head

    settings = load_settings(edge_config)
    clips = load_manifest(manifest)
    truths = _truths(manifest)
    folders = ensure_models(clips, settings, models)
    dim = load_head(settings.head.path).config.embed_dim
    analyser = build_analyser(settings)
    try:
        for clip in (c for c in clips if c.split != "learn" and c.kind not in skip):
            camera = camera_of(clip)
            cfg = clip_settings(settings, clip, folders[camera])
            capture = run_edge(clip.path, cfg, analyser, dim)
            video = str(clip.path.relative_to(manifest.parent))
            span = clip.spans[0] if clip.spans else None
            events = cloud_events(capture, camera, cfg)
            log.info("%s (%s): %d events", video, clip.kind, len(events))
            yield ClipEvents(clip.kind, camera, video, span, truths.get(video), events)
    finally:
        analyser.close()


def _truths(manifest: Path) -> dict[str, dict[str, Any]]:
    info = manifest.parent / "evalset.json"
    if not info.is_file():
        return {}
    clips = json.loads(info.read_text("utf-8")).get("clips", [])
    return {c["video"]: c["truth"] for c in clips if "truth" in c}


# --- train-category ---------------------------------------------------------------------------


def train(sets: Sequence[tuple[Path, Path]], out: Path, config: Path | None) -> dict[str, Any]:
    """The classifier from the tuned kinds' events of one or more (manifest, models) eval sets;
    the tuning-only probe kinds' events, where a set has them, train its outlier class
    (`category.fit`). With two or more sets the report has the classifier's cross-validation
    over them (`category_cv`)."""
    log.info("train-category: clips of the held-out kinds (%s) are skipped", HELDOUT_KINDS)
    per_set = [list(samples(clip_events(m, d, config, skip=HELDOUT_KINDS))) for m, d in sets]
    pairs = " ".join(f"--manifest {m} --models {d}" for m, d in sets)
    prov = {
        "trained_on": [str(m) for m, _ in sets],
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": f"vau-cloud train-category {pairs} --out {out}",
        "note": "demo-grade: synthetic kinds on vtest views",
    }
    model = fit_samples([s for some in per_set for s in some], prov)
    cat.save(model, out)
    report = {"out": str(out), "events": dict(model.provenance["events"]), "edge": model.edge}
    if len(per_set) >= 2:
        report["cv"] = cross_validate(per_set)
    return report


def samples(events: Iterable[ClipEvents]) -> Iterator[Sample]:
    """The classifier's training events: each clip's matched event (held-out kinds' clips
    skipped; a probe kind's event trains the outlier class)."""
    for ce in events:
        i = ce.matched()
        if i is None or ce.kind in HELDOUT_KINDS:
            continue
        ev = ce.events[i].evidence
        yield Sample(ce.kind, cat.features(ev, facts(ev)), cat.look(ev, ce.events[i].tokens))


# --- eval-explanations ------------------------------------------------------------------------


def _acc(hits: Sequence[bool]) -> dict[str, Any]:
    return {"accuracy": round(float(np.mean(hits)), 4) if hits else None, "n": len(hits)}


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


@dataclass
class _Tally:
    clips: int = 0
    explained: int = 0

    def __post_init__(self) -> None:
        self.fields: dict[str, list[bool]] = {
            k: [] for k in ("where", "movement", "view_change", "category", "text_kind")
        }
        self.ious: list[float] = []
        self.first_try: list[bool] = []  # the LLM's first reply passed
        self.rejected: Counter[str] = Counter()  # why each refused reply was refused

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"clips": self.clips, "explained": self.explained}
        out["explained_share"] = round(self.explained / self.clips, 4) if self.clips else None
        out |= {k: _acc(v) for k, v in self.fields.items()}
        out["span_iou"] = round(float(np.mean(self.ious)), 4) if self.ious else None
        out["first_try_valid"] = _acc(self.first_try)
        out["rejected"] = dict(self.rejected.most_common())
        return out


def score_clip(ce: ClipEvents, result: ExplainResult, tally: _Tally, heldout: bool) -> None:
    ex, truth = result.explanation, ce.truth or {}
    tally.explained += 1
    if truth.get("where") and not truth.get("view_change"):
        tally.fields["where"].append(bool(ex.where) and ex.where[0] in truth["where"])
    if truth.get("movement") is not None:
        tally.fields["movement"].append(ex.movement == truth["movement"])
    if "view_change" in truth:
        tally.fields["view_change"].append(ex.view_change == truth["view_change"])
    unseen = heldout or ce.kind in PROBE_KINDS  # a kind the classifier has no class for
    want = UNKNOWN if unseen else cat.LABELS.get(ce.kind, ce.kind)
    tally.fields["category"].append(ex.observed_category == want)
    if result.outcome != "fallback":  # the text the LLM wrote: which kind does it name?
        named = named_kinds(f"{ex.title} {ex.summary}")
        tally.fields["text_kind"].append(named == (set() if unseen else {ce.kind}))
    if ce.span is not None:
        tally.ious.append(_iou((ex.start, ex.end), ce.span))
    tally.first_try.append(result.outcome == "llm")
    tally.rejected.update(result.rejected)


@dataclass
class _Condition:
    """One way of explaining (text only, visual tokens, another event's tokens) and its tallies."""

    explainer: Explainer
    swap: bool = False  # explain each event with the tokens of an event of another kind

    def __post_init__(self) -> None:
        self.kinds: dict[str, _Tally] = {}
        self.groups = {"tuned": _Tally(), "probe": _Tally(), "heldout": _Tally()}
        self.results: list[ExplainResult] = []
        self.normal_events = self.unfaithful = self.tokens = 0
        self.examples: dict[str, dict[str, Any]] = {}

    def report(self) -> dict[str, Any]:
        seconds = [r.seconds for r in self.results]
        return {
            "llm": self.explainer.llm.model_id,
            "visual_tokens": any(r.explanation.visual_tokens for r in self.results),
            "kinds": {k: t.report() for k, t in sorted(self.kinds.items())},
            "groups": {k: t.report() for k, t in self.groups.items()},
            "normal_clip_events": self.normal_events,
            "explanations": len(self.results),
            "unfaithful_delivered": self.unfaithful,
            "first_try_valid": _share([r.outcome == "llm" for r in self.results]),
            "rejected": dict(Counter(x for r in self.results for x in r.rejected).most_common()),
            "fallback": _share([r.outcome == "fallback" for r in self.results]),
            "tokens_per_s": round(self.tokens / sum(seconds), 2) if seconds else None,
            "latency_s": {
                "p50": round(float(np.quantile(seconds, 0.5)), 3) if seconds else None,
                "p95": round(float(np.quantile(seconds, 0.95)), 3) if seconds else None,
            },
            "examples": self.examples,
        }


def _swapped(events: Sequence[CloudEvent], other: CloudEvent | None) -> list[CloudEvent]:
    if other is None:
        return list(events)
    return [CloudEvent(e.event, e.evidence, other.tokens) for e in events]


def evaluate(
    manifest: Path,
    models: Path,
    config: Path | None,
    conditions: dict[str, _Condition],
    heldout: Sequence[str],
    cache: Path | None = None,
    replies: TextIO | None = None,
    kinds: Sequence[str] = (),
) -> dict[str, Any]:
    """Every clip through the edge once (or from `cache`, `edge_cache`); its events explained
    under each condition (only the clips of `kinds`, when given); with `replies`, one JSON line
    per explained event (`_reply_line`)."""
    last_of_kind: dict[str, CloudEvent] = {}  # the swap's source: an event of another kind
    if cache is not None:
        clips: Iterable[ClipEvents] = edge_cache.cached(
            cache,
            lambda: edge_cache.key(manifest, models, config),
            lambda: clip_events(manifest, models, config),
        )
    else:
        clips = clip_events(manifest, models, config)
    for ce in clips:
        if kinds and ce.kind not in kinds:
            continue
        held, i = ce.kind in heldout, ce.matched()
        others = [e for k, e in sorted(last_of_kind.items()) if k not in (ce.kind, "normal")]
        for name, cond in conditions.items():
            other = others[len(cond.results) % len(others)] if cond.swap and others else None
            explained = explain_all(_swapped(ce.events, other), cond.explainer)
            _tally(cond, ce, explained, held, i)
            if replies is not None:
                for j, r in enumerate(explained):
                    line = _reply_line(name, ce, _group(ce.kind, held), j == i, r)
                    replies.write(json.dumps(line) + "\n")
        if i is not None:
            last_of_kind[ce.kind] = ce.events[i]
    return {
        "manifest": str(manifest),
        "heldout_kinds": list(heldout),
        "conditions": {name: c.report() for name, c in conditions.items()},
    }


def _tally(
    cond: _Condition, ce: ClipEvents, explained: list[ExplainResult], held: bool, i: int | None
) -> None:
    cond.results += explained
    for r in explained:
        cond.tokens += sum(int(cond.explainer.llm.embed_text(x).shape[0]) for x in r.replies)
        text = without_camera(f"{r.explanation.title} {r.explanation.summary}", ce.camera)
        evidence = " ".join(r.explanation.evidence)
        cond.unfaithful += bool(
            unfaithful_numbers(text, evidence) or unfaithful_places(text, evidence)
        )
    if ce.kind == "normal":
        cond.normal_events += len(ce.events)
        return
    for tally in (cond.kinds.setdefault(ce.kind, _Tally()), cond.groups[_group(ce.kind, held)]):
        tally.clips += 1
        if i is not None:
            score_clip(ce, explained[i], tally, held)
    if i is not None and ce.kind not in cond.examples:
        cond.examples[ce.kind] = {"video": ce.video, **_shown(explained[i])}


def _group(kind: str, held: bool) -> str:
    return "heldout" if held else "probe" if kind in PROBE_KINDS else "tuned"


def _share(flags: Sequence[bool]) -> float | None:
    return round(float(np.mean(flags)), 4) if flags else None


def _reply_line(
    condition: str, ce: ClipEvents, group: str, own: bool, r: ExplainResult
) -> dict[str, Any]:
    """One explained event for `--replies`: what the writer was given to say (the evidence),
    every raw reply, why each refused one was refused, and what was delivered. The file holds
    the texts of every kind, held-out ones included: choosing on the tuning sets means reading
    only those (docs/explain.md, Evaluation)."""
    return {
        "condition": condition,
        "video": ce.video,
        "kind": ce.kind,
        "group": "normal" if ce.kind == "normal" else group,
        "own_event": own,  # the event overlapping the clip's span most (the one scored)
        "outcome": r.outcome,
        "rejected": list(r.rejected),
        "replies": list(r.replies),
        "evidence": list(r.explanation.evidence),
    } | _shown(r)


def _shown(r: ExplainResult) -> dict[str, Any]:
    ex = r.explanation
    keys = ("title", "summary", "where", "movement", "view_change", "observed_category")
    return {k: getattr(ex, k) for k in keys} | {"outcome": r.outcome}


# --- the commands -----------------------------------------------------------------------------


def add_parsers(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--manifest", type=Path, required=True, help="make-eval-set manifest")
    common.add_argument(
        "--models", type=Path, required=True, metavar="DIR", help="normality models per camera"
    )
    common.add_argument("--edge-config", type=Path, help="the edge's TOML settings")
    p = sub.add_parser(
        "eval-explanations",
        parents=[common],
        help="explain an eval set's events through the real chain; accuracy per field (JSON)",
    )
    p.add_argument("--config", type=Path, help="the cloud's TOML settings ([explain])")
    p.add_argument("--heldout", help="kinds scored as unseen (default: the held-out kinds)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the report here too")
    p.add_argument(
        "--projector",
        type=Path,
        help="trained projector weights (default: explain.projector_weights, else the bundled "
        "one); with one, every event is explained text-only, with its visual tokens, and with "
        "the tokens of an event of another kind",
    )
    p.add_argument(
        "--conditions",
        help="which of text, visual, visual_swapped to run, comma-separated (default: all; "
        "the visual ones need a projector)",
    )
    p.add_argument(
        "--kinds",
        help="explain only these kinds' clips, comma-separated (the edge runs every clip, so "
        "that its cache serves every kind)",
    )
    p.add_argument(
        "--edge-cache",
        type=Path,
        metavar="FILE",
        help="keep the edge's runs of this set here and reuse them while the manifest, models, "
        "edge settings and edge code are unchanged (the writer alone measured again)",
    )
    p.add_argument(
        "--replies",
        type=Path,
        metavar="OUT",
        help="one JSON line per explained event: raw replies, refusal reasons, evidence, result",
    )
    p.set_defaults(handler=cmd_eval_explanations)
    p = sub.add_parser(
        "train-category",
        help="fit the observed-category classifier on eval sets' tuned kinds",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        action="append",
        required=True,
        help="a make-eval-set manifest; repeat with one --models each",
    )
    p.add_argument(
        "--models",
        type=Path,
        action="append",
        required=True,
        metavar="DIR",
        help="the manifest's normality models (one per --manifest, in order)",
    )
    p.add_argument("--edge-config", type=Path, help="the edge's TOML settings")
    p.add_argument("--out", type=Path, required=True, help="classifier file (JSON) to write")
    p.set_defaults(handler=cmd_train_category)


def _progress() -> None:
    """Progress per clip on stderr (the report goes to stdout)."""
    fmt = "%(asctime)s %(levelname)s %(name)s %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt)


def cmd_train_category(args: argparse.Namespace) -> int:
    if len(args.models) != len(args.manifest):
        print("train-category: each --manifest needs its --models DIR", file=sys.stderr)
        return 2
    _progress()
    sets = list(zip(args.manifest, args.models, strict=True))
    print(json.dumps(train(sets, args.out, args.edge_config)))
    return 0


def cmd_eval_explanations(args: argparse.Namespace) -> int:
    from vau.cloud.explain.llm import build_llm
    from vau.cloud.settings import load_settings
    from vau.common.cli import emit_report

    wanted = set(args.conditions.split(",")) if args.conditions else set()
    if unknown := wanted - set(CONDITIONS):
        print(
            f"eval-explanations: no condition {sorted(unknown)}; one of {CONDITIONS}",
            file=sys.stderr,
        )
        return 2
    _progress()
    s = load_settings(args.config).explain
    llm = build_llm(s)
    category = cat.load(s.category_model or cat.BUNDLED)
    conditions = {"text": _Condition(Explainer(s, llm, category=category))}
    tok = configured_tokenizer(args.projector or s.projector_weights, True, llm)
    if tok is not None:
        visual = Explainer(s, llm, frame_tokenizer=tok, category=category)
        conditions["visual"] = _Condition(visual)
        conditions["visual_swapped"] = _Condition(visual, swap=True)
    wanted = wanted or set(conditions)  # default: every condition this configuration has
    if missing := wanted - set(conditions):
        print(
            f"eval-explanations: {sorted(missing)} need a projector; none is configured",
            file=sys.stderr,
        )
        return 2
    conditions = {k: c for k, c in conditions.items() if k in wanted}
    held = HELDOUT_KINDS if args.heldout is None else tuple(args.heldout.split(","))
    with contextlib.ExitStack() as stack:
        replies = (
            stack.enter_context(args.replies.open("w", encoding="utf-8")) if args.replies else None
        )
        report = evaluate(
            args.manifest,
            args.models,
            args.edge_config,
            conditions,
            held,
            args.edge_cache,
            replies,
            tuple(args.kinds.split(",")) if args.kinds else (),
        )
    emit_report(report, args.json)
    return 0
