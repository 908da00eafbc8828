"""`vau-edge eval`: how well each scorer finds the anomalies of a manifest, per kind, as JSON.

For every camera in the manifest (the `camera` key; one camera when absent) the normality model is
learnt from that camera's `learn` clips with `vau-edge learn`'s code (or taken from `--models
DIR/<camera>` when already there), then every other clip goes through the real pipeline (source,
sampling, model stage, fused scorer, events) with adaptation off. One pass records each frame's
head probability, normality score, fused score and calibrated parts, so every scorer is measured on
the same frames:

- frame ROC-AUC per kind: the span frames of that kind's clips against every frame outside any
  span (all cameras pooled: one threshold for all), and pooled over the tuned and held-out kinds;
  the same pooled AUC within each camera alone (`camera_auc`): the gap to the pooled one is what
  one threshold for every camera costs, the rest is the scorer; each pooled and per-kind AUC
  with its 95 % interval from resampling whole clips (`auc_interval`, `pooled_auc_interval`;
  `vau.edge.auc_interval`): how far the figure would move on another placement of the kinds;
- events (the real `EventTracker`, default thresholds, over each scorer's scores): recall = share
  of anomalous clips with an event overlapping the span; precision = share of events overlapping
  a span; false events per hour of footage outside spans, and of normal clips alone.

With `--frames-out FILE` every traced clip is also written as one JSON line (its video, kind,
camera, spans, frame times and every score per frame, the head both raw and calibrated), so that
a new fusion or part can be tried offline on exactly the frames the report was made from. The
fused score there is the edge's final one (`events.lookahead` frames of look-ahead, recorded as
`lookahead`); every other series is each frame's own, and the report finalises it the same way
before measuring it. `--from-frames FILE` makes the report again from such a file, without
running the pipeline (other replicates, other held-out kinds, a fixed report).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vau.common.cli import emit_report
from vau.edge.analysers import Analyser, build_analyser
from vau.edge.auc_interval import REPLICATES, ClipScores, draws, intervals
from vau.edge.events import EventTracker
from vau.edge.lookahead import looked_ahead
from vau.edge.manifest import NORMAL, Clip, load_manifest
from vau.edge.normality.learn import learn
from vau.edge.normality.model import PARTS
from vau.edge.normality.store import MANIFEST
from vau.edge.pipeline import Pipeline
from vau.edge.scoring.base import FrameScorer
from vau.edge.scoring.factory import build_scorer
from vau.edge.scoring.tap import Tap
from vau.edge.settings import EdgeSettings, EventSettings, SettingsError
from vau.edge.sinks import Sink
from vau.edge.sources import open_source, sampled
from vau.edge.synth import HELDOUT_KINDS
from vau.edge.tetg import load_head
from vau.edge.train import roc_auc
from vau.edge.types import EffectiveTokens, EventState, EventUpdate, FrameScore, Window

log = logging.getLogger(__name__)

SCORERS = ("head", "normality", "fused")
# `fusion_check`: a kind is short when a series alone ranks it more than this above the fused
# score (a kind's 95 % interval on twelve clips spans up to 0.25 where the fused score is
# unsure, 0.01-0.06 where it is near 1: a smaller gap says little)
SHORT_BY = 0.02


@dataclass
class ClipTrace:
    """What the pipeline said about one clip, frame by frame."""

    clip: Clip
    t: list[float] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)  # scorer or part -> per frame
    lookahead: int = 0  # the edge's `events.lookahead` the fused score was finalised with
    gap_s: float = 5.0  # and its gap (`sets.max_gap_s`)

    def series(self, name: str) -> np.ndarray:
        """A scorer's or part's final score per frame: the fused score as the pipeline finalised
        it, every other series finalised the same way here (`lookahead.looked_ahead`), so each
        is measured as if it were the edge's score."""
        values = self.scores[name]
        if name != "fused":
            values = looked_ahead(self.t, values, self.lookahead, self.gap_s)
        return np.asarray(values)

    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None:
        parts = dict(score.components)
        self.t.append(tokens.t)
        row = {"fused": score.score, "normality": score.normality or 0.0}
        row |= {k: parts.get(k, 0.0) for k in PARTS}
        row["head_calibrated"] = parts.get("head", 0.0)  # the head raw is "head" (the tap's)
        for k, v in row.items():
            self.scores.setdefault(k, []).append(v)

    def event(self, update: EventUpdate) -> None:
        pass

    def window(self, window: Window) -> None:
        pass

    def close(self) -> None:
        pass

    def labels(self) -> np.ndarray:
        return np.array([self.clip.label_at(t) for t in self.t], bool)

    def record(self) -> dict[str, Any]:
        """The clip and its frames' scores, JSON-ready (`--frames-out`)."""
        c = self.clip
        return {
            "video": str(c.path),
            "kind": c.kind,
            "camera": camera_of(c),
            "spans": [list(span) for span in c.spans],
            "t": [round(t, 3) for t in self.t],
            "lookahead": self.lookahead,
            "gap_s": self.gap_s,
            "scores": {k: [round(v, 5) for v in vs] for k, vs in self.scores.items()},
        }


def traces_from(path: Path, gap_s: float) -> list[ClipTrace]:
    """The clips a `--frames-out` file recorded, as traced (`gap_s`: the settings' gap, for files
    written before the gap was recorded)."""
    if not path.is_file():
        raise SettingsError(f"--from-frames {path} does not exist; pass a --frames-out file")
    traces = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            spans = tuple((float(a), float(b)) for a, b in rec["spans"])
            clip = Clip(Path(rec["video"]), spans, rec["kind"], "test", rec["camera"])
            scores = {str(k): [float(v) for v in vs] for k, vs in rec["scores"].items()}
            traces.append(
                ClipTrace(
                    clip,
                    [float(t) for t in rec["t"]],
                    scores,
                    int(rec["lookahead"]),
                    float(rec.get("gap_s", gap_s)),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"{path}:{n}: not a --frames-out record ({exc!r})") from None
    if not traces:
        raise SettingsError(f"{path} holds no clip; pass a --frames-out file")
    return traces


def camera_of(clip: Clip) -> str:
    return clip.camera or "cam-0"


def clip_settings(settings: EdgeSettings, clip: Clip, model: Path) -> EdgeSettings:
    """How an eval clip runs: its file, its camera, that camera's normality model fused with the
    head, adaptation off (so every clip meets the same model)."""
    normality = settings.normality.model_copy(
        update={"path": model, "adapt": False, "scorer": "fused"}
    )
    return settings.model_copy(
        update={
            "source": settings.source.model_copy(update={"uri": str(clip.path)}),
            "camera_id": camera_of(clip),
            "normality": normality,
        }
    )


def run_file(
    cfg: EdgeSettings, analyser: Analyser, sinks: Sequence[Sink], scorer: FrameScorer
) -> None:
    """`cfg.source` through the real pipeline (sampling, model stage, scorer, events, windows)."""
    with open_source(cfg.source, cfg.camera_id) as source:
        Pipeline(cfg, analyser, sinks, scorer=scorer).run(
            sampled(source, cfg.source.fps, cfg.camera_id)
        )


def trace_clip(clip: Clip, cfg: EdgeSettings, analyser: Analyser, dim: int) -> ClipTrace:
    """`cfg` from `clip_settings`."""
    trace = ClipTrace(clip, lookahead=cfg.events.lookahead, gap_s=cfg.sets.max_gap_s)
    head = trace.scores.setdefault("head", [])
    run_file(cfg, analyser, [trace], Tap(build_scorer(cfg, dim), lambda a, _: head.append(a.score)))
    return trace


def ensure_models(clips: Sequence[Clip], settings: EdgeSettings, models: Path) -> dict[str, Path]:
    """Each camera's model folder, learnt from its `learn` clips when not there yet."""
    out = {}
    for camera in sorted({camera_of(c) for c in clips}):
        folder = models / camera
        sources = [c.path for c in clips if c.split == "learn" and camera_of(c) == camera]
        if not (folder / MANIFEST).is_file():
            if not sources:
                raise SettingsError(
                    f"camera {camera} has no normality model in {folder} and no 'learn' clips in "
                    "the manifest; add its normal footage with split 'learn'"
                )
            cfg = settings.model_copy(update={"camera_id": camera})
            _, summary = learn(sources, folder, cfg)
            log.info("learnt %s: %s", camera, summary)
        out[camera] = folder
    return out


def events_of(
    ts: Sequence[float], scores: np.ndarray, cfg: EventSettings
) -> list[tuple[float, float]]:
    """The (start, end) of each event a series of final frame scores raises."""
    tracker = EventTracker(cfg, "eval", "eval")
    ended: list[tuple[float, float]] = []
    for t, s in zip(ts, scores.tolist(), strict=True):
        ended += [
            (u.start, u.end or t) for u in tracker.observe(0, t, s)[1] if u.state is EventState.END
        ]
    last = ts[-1] if ts else 0.0
    ended += [(u.start, u.end or last) for u in tracker.flush(last) if u.state is EventState.END]
    return ended


def _overlaps(
    event: tuple[float, float], spans: Sequence[tuple[float, float]], slack: float
) -> bool:
    return any(event[0] < end + slack and event[1] >= start for start, end in spans)


def score_report(
    traces: Sequence[ClipTrace],
    scorer: str,
    cfg: EventSettings,
    heldout: Sequence[str],
    replicates: int = REPLICATES,
) -> dict[str, Any]:
    """Per-kind AUC and event figures of one scorer (or part) over every traced clip. The pooled
    AUC takes one threshold for every camera; `camera_auc` is the same within each camera alone,
    so the gap between them is what the cameras' calibration costs (docs/normality.md). With
    `replicates` > 0, each pooled and per-kind AUC also gets its interval from resampling
    clips (`auc_interval`); the draws depend only on the clips' kinds, so every scorer of one
    report is resampled alike."""
    s = {id(tr): tr.series(scorer) for tr in traces}
    y = {id(tr): tr.labels() for tr in traces}
    kinds = sorted({tr.clip.kind for tr in traces if tr.clip.kind != NORMAL})
    groups = {
        "tuned": [k for k in kinds if k not in heldout],
        "heldout": [k for k in kinds if k in heldout],
    }
    cameras = sorted({camera_of(tr.clip) for tr in traces})
    per_camera = {
        c: _pooled([tr for tr in traces if camera_of(tr.clip) == c], s, y, groups) for c in cameras
    }
    events = _event_report(traces, [s[id(tr)] for tr in traces], cfg)
    report: dict[str, Any] = {
        "auc": _pooled(traces, s, y, {k: [k] for k in kinds}),
        "pooled_auc": _pooled(traces, s, y, groups),
        "camera_auc": per_camera,
        "events": events,
    }
    if replicates > 0:
        clips = [
            ClipScores(tr.clip.kind, s[id(tr)][y[id(tr)]], s[id(tr)][~y[id(tr)]]) for tr in traces
        ]
        sets = draws([c.stratum for c in clips], replicates)
        report["auc_interval"] = intervals(clips, {k: [k] for k in kinds}, sets)
        report["pooled_auc_interval"] = intervals(clips, groups, sets)
    return report


def _pooled(
    traces: Sequence[ClipTrace],
    s: dict[int, np.ndarray],
    y: dict[int, np.ndarray],
    groups: dict[str, list[str]],
) -> dict[str, float | None]:
    """AUC of each group's span frames (its kinds') against every other frame of `traces`."""
    negatives = np.concatenate([s[id(tr)][~y[id(tr)]] for tr in traces])
    out = {}
    for name, members in groups.items():
        pos_parts = [s[id(tr)][y[id(tr)]] for tr in traces if tr.clip.kind in members]
        out[name] = _auc(np.concatenate(pos_parts), negatives) if pos_parts else None
    return out


def _auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    if pos.size == 0 or neg.size == 0:
        return None
    return round(roc_auc(np.r_[pos, neg], np.r_[np.ones(pos.size), np.zeros(neg.size)]), 4)


def _event_report(
    traces: Sequence[ClipTrace], series: Sequence[np.ndarray], cfg: EventSettings
) -> dict[str, Any]:
    hit: dict[str, list[bool]] = {}
    true_events = false_events = normal_false = 0
    outside_s = normal_s = 0.0
    for tr, scores in zip(traces, series, strict=True):
        step = float(np.median(np.diff(tr.t))) if len(tr.t) > 1 else 0.5
        seconds = len(tr.t) * step
        inside = sum(e - s for s, e in tr.clip.spans)
        outside_s += max(seconds - inside, 0.0)
        events = events_of(tr.t, scores, cfg)
        good = [e for e in events if _overlaps(e, tr.clip.spans, cfg.merge_gap_s)]
        true_events += len(good)
        false_events += len(events) - len(good)
        if tr.clip.kind == NORMAL:
            normal_s += seconds
            normal_false += len(events)
        else:
            hit.setdefault(tr.clip.kind, []).append(bool(good))
    recall = {k: round(float(np.mean(v)), 4) for k, v in hit.items()}
    total = true_events + false_events
    return {
        "recall": recall,
        "precision": round(true_events / total, 4) if total else None,
        "false_events": false_events,
        "false_events_per_hour": round(false_events / max(outside_s, 1e-9) * 3600, 2),
        "hours_outside_spans": round(outside_s / 3600, 4),
        "normal_clip_false_events": normal_false,
        "normal_clip_hours": round(normal_s / 3600, 4),
    }


def run_eval(
    manifest: Path,
    settings: EdgeSettings,
    models: Path,
    heldout: Sequence[str],
    frames_out: Path | None = None,
    replicates: int = REPLICATES,
) -> dict[str, Any]:
    clips = load_manifest(manifest)
    folders = ensure_models(clips, settings, models)
    dim = load_head(settings.head.path).config.embed_dim
    analyser = build_analyser(settings)
    traces = []
    try:
        for clip in (c for c in clips if c.split != "learn"):
            cfg = clip_settings(settings, clip, folders[camera_of(clip)])
            traces.append(trace_clip(clip, cfg, analyser, dim))
            log.info(
                "eval: %s (%s, %s): %d frames",
                clip.path.name,
                clip.kind,
                camera_of(clip),
                len(traces[-1].t),
            )
    finally:
        analyser.close()
    if frames_out is not None:
        frames_out.parent.mkdir(parents=True, exist_ok=True)
        lines = (json.dumps(tr.record()) + "\n" for tr in traces)
        frames_out.write_text("".join(lines), "utf-8")
    return eval_report(str(manifest), traces, settings.events, heldout, replicates)


def eval_report(
    source: str,
    traces: Sequence[ClipTrace],
    events: EventSettings,
    heldout: Sequence[str],
    replicates: int = REPLICATES,
) -> dict[str, Any]:
    """The report over traced clips: every scorer and part (`score_report`), and whether the
    fused score is at least each of them alone (`fusion_check`)."""
    series = (*SCORERS, *PARTS)
    scorers = {
        k: score_report(traces, k, events, heldout, replicates)
        for k in series
        if all(k in tr.scores for tr in traces)
    }
    return {
        "manifest": source,
        "cameras": sorted({camera_of(tr.clip) for tr in traces}),
        "clips": len(traces),
        "frames": sum(len(t.t) for t in traces),
        "heldout_kinds": list(heldout),
        "replicates": replicates,
        "scorers": scorers,
        "fusion": fusion_check(scorers),
    }


def fusion_check(scorers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Is the fused score at least each of its components alone (the head, the normality score,
    every part)? For each pooled group and each kind: the fused AUC, the series that ranks it
    best alone, that series' AUC, `fused_at_least_each` and `gap` (how far that series is
    above the fused score, 0 when it is not); `short` lists the kinds where one is more than
    `SHORT_BY` above it, largest gap first (a part that knows its kind better than the maximum
    lets it say). Empty without a fused series."""
    if "fused" not in scorers:
        return {}
    fused = scorers["fused"]
    pooled = {
        g: _against_each({k: v["pooled_auc"].get(g) for k, v in scorers.items()})
        for g in fused["pooled_auc"]
    }
    kinds = {
        c: _against_each({k: v["auc"].get(c) for k, v in scorers.items()}) for c in fused["auc"]
    }
    gaps = {c: v["gap"] for c, v in kinds.items() if v and v.get("gap", 0.0) > SHORT_BY}
    short = sorted(gaps, key=lambda c: (-gaps[c], c))
    return {"pooled": pooled, "kinds": kinds, "short": short}


def _against_each(aucs: Mapping[str, float | None]) -> dict[str, Any] | None:
    """One row of `fusion_check` from every series' AUC of one kind or group."""
    fused = aucs.get("fused")
    if fused is None:
        return None
    alone = [(k, a) for k, a in aucs.items() if k != "fused" and a is not None]
    if not alone:
        return {"fused": fused}
    best, auc = max(alone, key=lambda x: x[1])
    return {
        "fused": fused,
        "best_alone": best,
        "best_alone_auc": auc,
        "fused_at_least_each": fused >= auc,
        "gap": round(max(auc - fused, 0.0), 4),
    }


def add_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("eval", help="per-kind AUC and events of head, normality and fused")
    add_common(p)
    p.add_argument("--manifest", type=Path, help="make-eval-set / make-dataset JSONL")
    p.add_argument(
        "--models",
        type=Path,
        metavar="DIR",
        help="normality models per camera (DIR/<camera>); learnt when missing",
    )
    p.add_argument(
        "--heldout",
        default=",".join(HELDOUT_KINDS),
        help="kinds reported as held out (never tuned on)",
    )
    p.add_argument("--fps", type=float, help="frames per second (default: the settings')")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the report here too")
    p.add_argument(
        "--frames-out",
        type=Path,
        metavar="FILE",
        help="also write every clip's per-frame scores here (JSON lines), for offline analysis",
    )
    p.add_argument(
        "--from-frames",
        type=Path,
        metavar="FILE",
        help="make the report from a --frames-out file instead of running the pipeline "
        "(no --manifest, no --models)",
    )
    p.add_argument(
        "--replicates",
        type=int,
        default=REPLICATES,
        metavar="N",
        help=f"clip resamples behind each AUC's interval (default {REPLICATES}; 0: none)",
    )
    p.set_defaults(handler=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from vau.edge.cli import settings_from
    from vau.edge.console import setup_logging

    heldout = [k.strip() for k in args.heldout.split(",") if k.strip()]
    if args.replicates < 0:
        raise SettingsError(f"--replicates {args.replicates}: pass 0 (no intervals) or more")
    run = (args.manifest, args.models, args.frames_out)
    if (args.from_frames is not None and any(a is not None for a in run)) or (
        args.from_frames is None and (args.manifest is None or args.models is None)
    ):
        raise SettingsError(
            "pass --manifest and --models (run the pipeline; --frames-out to keep its frames), "
            "or --from-frames alone (replay a --frames-out file)"
        )
    settings = settings_from(args)
    setup_logging(settings.output.log_format)  # progress per clip on stderr
    if args.from_frames is not None:
        traces = traces_from(args.from_frames, settings.sets.max_gap_s)
        report = eval_report(
            str(args.from_frames), traces, settings.events, heldout, args.replicates
        )
    else:
        report = run_eval(
            args.manifest, settings, args.models, heldout, args.frames_out, args.replicates
        )
    emit_report(report, args.json)
    return 0
