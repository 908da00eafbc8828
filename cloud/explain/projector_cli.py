"""`vau-cloud train-projector`: the visual tokens' projector, trained with the LLM frozen on
windows the real edge pipeline makes.

Two sources of windows and captions (exactly one per run):
- `--manifest M --models DIR` (repeatable, in pairs): a synthetic eval set (`vau-edge
  make-eval-set`). Every test clip of a tuned kind goes through the chain of
  `eval-explanations` (edge pipeline with the camera's normality model, ATS window, the wire);
  the event overlapping the drawn span most is a sample, captioned from its kind and its facts
  and its observed category (`captions.synthetic_caption`; the prompt carries the category as the
  explainer will). Held-out kinds are skipped.
- `--captions F --videos DIR`: public caption data (UCA or HIVAU-70k's conversation form) over real
  footage. Each video goes through the edge pipeline once; each captioned span becomes a sample of
  at most `ats.frames` of its frames, evenly spread.

Writes the safetensors weights (what they fit in the metadata) and `<out>.json` (provenance: the
data, the command, the samples per kind, how the loss moved). `explain.projector_weights = OUT`
turns the visual tokens on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vau.cloud.explain.captions import CaptionSpan, load_captions, synthetic_caption
from vau.cloud.explain.category import CategoryModel, load_category
from vau.cloud.explain.evidence import EventEvidence, Facts, facts
from vau.cloud.explain.projector_train import ProjectorTrainer, Sample, TrainSettings, sample_of
from vau.cloud.explain.schema import UNKNOWN
from vau.cloud.explain.settings import ExplainSettings

log = logging.getLogger(__name__)


def synthetic_samples(
    manifest: Path,
    models: Path,
    edge_config: Path | None,
    settings: ExplainSettings,
    unknown_twins: bool = False,
) -> list[Sample]:
    from vau.cloud.explain.eval_cli import clip_events
    from vau.edge.synth import HELDOUT_KINDS

    classifier, out = load_category(settings.category_model), []
    for ce in clip_events(manifest, models, edge_config, skip=(*HELDOUT_KINDS, "normal")):
        i = ce.matched()
        if i is None or not ce.events[i].tokens:
            continue
        ev, tokens = ce.events[i].evidence, ce.events[i].tokens
        observed = _observed(classifier, ev, facts(ev), tokens, settings)
        out += event_samples(ce.kind, ev, tokens, observed, settings, unknown_twins)
    return out


def event_samples(
    kind: str,
    ev: EventEvidence,
    tokens: Sequence[np.ndarray],
    observed: str,
    settings: ExplainSettings,
    unknown_twin: bool = False,
) -> list[Sample]:
    """The samples of one synthetic event of `kind` (its evidence and window tokens as the cloud
    got them, the category the classifier observed): the event as the explainer will see it,
    captioned from its kind, facts and observed category; with `unknown_twin`, when the
    classifier named a class, also the event as a deployment that has not configured that class
    sees it (observed unknown, the no-kind caption), so the writer meets a kind it has no name
    for (an unseen kind, a whole-view change that is no tamper) in training too."""
    f = facts(ev)
    seen = [observed, UNKNOWN] if unknown_twin and observed != UNKNOWN else [observed]
    out = []
    for obs in seen:
        caption = synthetic_caption(kind, f, obs)
        if caption is not None:
            out.append(sample_of(ev, tokens, caption, settings, kind, obs))
    return out


def _observed(
    classifier: CategoryModel | None,
    ev: EventEvidence,
    f: Facts,
    tokens: Sequence[np.ndarray],
    settings: ExplainSettings,
) -> str:
    """The observed category the explainer will put in this event's prompt."""
    return UNKNOWN if classifier is None else classifier.observe(ev, f, settings.classes, tokens)


def caption_samples(
    captions: Path, videos: Path, edge_config: Path | None, settings: ExplainSettings
) -> list[Sample]:
    from vau.cloud.explain.chain import EdgeCapture, run_edge, span_event
    from vau.edge.analysers import build_analyser
    from vau.edge.settings import load_settings
    from vau.edge.tetg import load_head

    spans = load_captions(captions, videos)
    edge = load_settings(edge_config)
    dim = load_head(edge.head.path).config.embed_dim
    by_video: dict[Path, list[CaptionSpan]] = {}
    for s in spans:
        by_video.setdefault(s.video, []).append(s)
    analyser = build_analyser(edge)
    classifier, out = load_category(settings.category_model), []
    try:
        for video, todo in by_video.items():
            camera = video.stem
            cfg = edge.model_copy(update={"camera_id": camera})
            capture = run_edge(video, cfg, analyser, dim, EdgeCapture(ring=deque()))
            for s in todo:
                event = span_event(capture, camera, cfg, (s.start, s.end), cfg.ats.frames)
                if event is None:
                    log.warning("%s [%s, %s]: no frame in the span; skipped", video, s.start, s.end)
                    continue
                f = facts(event.evidence)
                observed = _observed(classifier, event.evidence, f, event.tokens, settings)
                out.append(
                    sample_of(event.evidence, event.tokens, s.caption, settings, camera, observed)
                )
    finally:
        analyser.close()
    return out


def train(args: argparse.Namespace) -> dict[str, Any]:
    from vau.cloud.explain.llm_transformers import TransformersLlm
    from vau.cloud.explain.projector import save_frame_tokenizer
    from vau.cloud.settings import load_settings

    s = load_settings(args.config).explain
    if args.manifest is not None:
        samples = []
        for manifest, models in zip(args.manifest, args.models, strict=True):
            samples += synthetic_samples(manifest, models, args.edge_config, s, args.unknown_twins)
        source = ", ".join(str(m) for m in args.manifest)
    else:
        samples = caption_samples(args.captions, args.videos, args.edge_config, s)
        source = str(args.captions)
    if not samples:
        raise SystemExit("train-projector: no sample (no event matched, no span held a frame)")
    vis_dims = {f.shape[-1] for smp in samples for f in smp.frames}
    if len(vis_dims) != 1:
        raise SystemExit(f"train-projector: the frames' tokens differ in width: {sorted(vis_dims)}")
    cfg = TrainSettings(args.kind, args.epochs, args.lr, args.batch, seed=args.seed)
    llm = TransformersLlm(s.model, s.device)
    trainer = ProjectorTrainer(llm, vis_dims.pop(), cfg)
    report = trainer.train(samples)
    provenance = {
        "trained_on": source,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "vau-cloud " + " ".join(sys.argv[1:]),
        "samples_per_label": dict(Counter(smp.label for smp in samples)),
        "training": report,
        "note": args.note,
    }
    save_frame_tokenizer(trainer.model, args.out, llm.model_id, provenance)
    return {"out": str(args.out), "llm": llm.model_id, **{k: report[k] for k in _SHOWN}}


_SHOWN = ("samples", "held_back", "steps", "seconds", "loss_before", "loss_after")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "train-projector",
        help="train the visual tokens' projector (LLM frozen) on edge windows and captions",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--manifest",
        type=Path,
        action="append",
        help="a make-eval-set manifest (synthetic kinds); repeat with one --models each",
    )
    src.add_argument("--captions", type=Path, help="UCA or HIVAU-70k caption JSON (real footage)")
    p.add_argument(
        "--models",
        type=Path,
        action="append",
        metavar="DIR",
        help="the manifest's normality models (one per --manifest, in order)",
    )
    p.add_argument("--videos", type=Path, metavar="DIR", help="the videos (with --captions)")
    p.add_argument("--out", type=Path, required=True, help="weights to write (safetensors)")
    p.add_argument("--config", type=Path, help="the cloud's TOML settings ([explain].model)")
    p.add_argument("--edge-config", type=Path, help="the edge's TOML settings")
    d = TrainSettings()
    p.add_argument("--kind", default=d.kind, choices=("linear", "mlp2x_gelu"))
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--unknown-twins",
        action="store_true",
        help="with --manifest: each event the classifier names is also a sample as a deployment "
        "without its class sees it (observed unknown, captioned with no kind)",
    )
    p.add_argument("--note", default="", help="a line for the provenance file")
    p.set_defaults(handler=cmd_train_projector)


def cmd_train_projector(args: argparse.Namespace) -> int:
    if args.manifest is not None and len(args.models or ()) != len(args.manifest):
        print("train-projector: each --manifest needs its --models DIR", file=sys.stderr)
        return 2
    if args.captions is not None and args.videos is None:
        print("train-projector: --captions needs --videos DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    print(json.dumps(train(args)))
    return 0
