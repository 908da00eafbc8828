"""`vau-edge make-dataset`, `make-clip`, `make-eval-set` and `train-head`: build labelled clips
(and the held-out per-camera evaluation set), train the TETG head."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from vau.edge import evalset
from vau.edge.synth import ALL_KINDS, DEFAULT_CLIP_SECONDS, DEFAULT_CLIPS_PER_KIND, PROBE_KINDS


def add_parsers(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "make-dataset",
        help="real footage + synthetic anomalies with known spans -> clips and manifest.jsonl",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for the clips and manifest")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clips-per-kind", type=int, default=DEFAULT_CLIPS_PER_KIND)
    p.add_argument("--clip-seconds", type=float, default=DEFAULT_CLIP_SECONDS)
    p.add_argument("--cache-dir", type=Path, help="model and footage cache (vau-models)")
    p.set_defaults(handler=cmd_make_dataset)

    p = sub.add_parser("make-clip", help="one clip of sample footage with an injected anomaly")
    p.add_argument("--out", type=Path, required=True, help="the .avi to write")
    p.add_argument("--kind", default="tamper", help="one of " + ", ".join(ALL_KINDS))
    p.add_argument("--span", type=float, nargs=2, default=(8.0, 16.0), metavar=("START", "END"))
    p.add_argument("--seconds", type=float, default=24.0, help="clip length")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", type=Path, help="model and footage cache (vau-models)")
    p.set_defaults(handler=cmd_make_clip)

    p = sub.add_parser(
        "make-eval-set",
        help="per-camera views of real footage: learn clips, then test clips of every kind "
        "(held-out ones included) -> clips, manifest.jsonl, evalset.json",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for views, clips, manifest")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clips-per-kind", type=int, default=evalset.DEFAULT_CLIPS_PER_KIND)
    p.add_argument("--clip-seconds", type=float, default=evalset.DEFAULT_CLIP_SECONDS)
    p.add_argument(
        "--learn-seconds",
        type=float,
        default=evalset.DEFAULT_LEARN_SECONDS,
        help=f"normal footage per camera to learn from (>= {evalset.MIN_LEARN_SECONDS:g})",
    )
    p.add_argument(
        "--probe",
        action="append",
        default=[],
        choices=PROBE_KINDS,
        help="also draw this tuning-only probe kind (repeatable; after every other kind, so "
        "the other clips stay those of a set made without it)",
    )
    p.add_argument("--cache-dir", type=Path, help="model and footage cache (vau-models)")
    p.set_defaults(handler=cmd_make_eval_set)

    p = sub.add_parser("train-head", help="train the TETG head on frozen encoder features")
    add_common(p)
    p.add_argument("--manifest", type=Path, required=True, help="JSONL manifest or UCF-Crime file")
    p.add_argument("--video-root", type=Path, help="folder of the videos a UCF-Crime file names")
    p.add_argument("--out", type=Path, required=True, help="folder for the head and report.json")
    p.add_argument("--fps", type=float, default=2.0, help="frames per second to sample")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        help="pull targets towards 1/2 by this share (default 0)",
    )
    p.add_argument(
        "--consistency-model",
        type=Path,
        metavar="FILE",
        help="a fused graph (e.g. the int8 one the edge runs) whose features of the "
        "same frames must score alike",
    )
    p.add_argument(
        "--consistency-weight",
        type=float,
        default=1000.0,
        help="weight of the paired squared score gap (default 1000)",
    )
    p.set_defaults(handler=cmd_train_head)


def cmd_make_dataset(args: argparse.Namespace) -> int:
    from vau.assets import asset_path
    from vau.edge.synth import FOOTAGE_ASSETS, build_dataset

    footage = [asset_path(name, args.cache_dir) for name in FOOTAGE_ASSETS]
    manifest = build_dataset(
        footage, args.out, clips_per_kind=args.clips_per_kind,
        clip_seconds=args.clip_seconds, seed=args.seed,
    )  # fmt: skip
    print(manifest)
    return 0


def cmd_make_eval_set(args: argparse.Namespace) -> int:
    from vau.assets import asset_path
    from vau.edge.settings import SettingsError

    footage = asset_path("vtest.avi", args.cache_dir)
    try:
        manifest = evalset.build_eval_set(
            args.out,
            footage,
            seed=args.seed,
            clips_per_kind=args.clips_per_kind,
            clip_seconds=args.clip_seconds,
            learn_seconds=args.learn_seconds,
            probes=args.probe,
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    print(manifest)
    return 0


def cmd_make_clip(args: argparse.Namespace) -> int:
    from vau.assets import asset_path
    from vau.edge.settings import SettingsError
    from vau.edge.synth import make_clip

    if args.out.suffix != ".avi":
        raise SettingsError(f"--out must name an .avi file (MJPG), got {args.out}")
    try:
        clip = make_clip(asset_path("vtest.avi", args.cache_dir), args.out, args.kind,
                         tuple(args.span), args.seconds, args.seed)  # fmt: skip
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    print(json.dumps({"video": str(clip.path), "kind": clip.kind, "spans": clip.spans}))
    return 0


def cmd_train_head(args: argparse.Namespace) -> int:
    from vau.edge.cli import settings_from
    from vau.edge.settings import SettingsError
    from vau.edge.train import TrainOptions, run_training

    if not 0.0 <= args.label_smoothing < 1.0:
        raise SettingsError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.consistency_weight < 0:
        raise SettingsError(f"--consistency-weight must be >= 0, got {args.consistency_weight}")
    options = TrainOptions(
        fps=args.fps, hidden=args.hidden, epochs=args.epochs, seed=args.seed,
        label_smoothing=args.label_smoothing, consistency_model=args.consistency_model,
        consistency_weight=args.consistency_weight, video_root=args.video_root,
    )  # fmt: skip
    report = run_training(args.manifest, settings_from(args), args.out, options)
    print(json.dumps(asdict(report) if is_dataclass(report) else report, indent=2, default=str))
    return 0
