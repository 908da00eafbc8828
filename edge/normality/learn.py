"""`vau-edge learn`: a camera's normality model from its own normal footage.

The footage goes through the same pipeline `vau-edge run` uses (source, sampling, model stage),
with a scorer that keeps what the model stage saw; `fit` learns from it and `store` saves it
atomically. 30 s is the minimum; a real camera should give it 5-10 minutes covering its usual
traffic and light (more is better: the memory is a coreset, so its size does not grow).

Footage longer than `normality.learn_frames` sampled frames is learnt from bursts: the first
`BURST_S` seconds of every `every_s`, evenly over all of it, so the cost in time and memory stays
that of `learn_frames` frames however long the footage is. Every source frame is still decoded
(the pixel measures see the frames around each burst as they would live); only the encoder skips.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vau.edge.analysers import Analyser, Analysis, build_analyser
from vau.edge.normality.fit import BLOCK_S, NormalFrame, fit
from vau.edge.normality.model import NormalityModel
from vau.edge.normality.store import MIN_LEARN_S, NormalityError, Provenance, save_model
from vau.edge.pipeline import Pipeline
from vau.edge.scoring.base import Judgement
from vau.edge.scoring.factory import encoder_family, head_sha
from vau.edge.scoring.head import HeadScorer
from vau.edge.scoring.tap import Tap
from vau.edge.settings import EdgeSettings, SettingsError
from vau.edge.sources import file_seconds, open_source, sampled
from vau.edge.types import Frame

log = logging.getLogger(__name__)

BURST_S = BLOCK_S  # long footage is learnt from bursts this long (a calibration block each)


@dataclass
class _Kept:
    """What the model stage saw, frame by frame (patches as fp16), in one time line."""

    offset: float = 0.0  # stream time of this source's start within the whole footage
    frames: list[NormalFrame] = field(default_factory=list)

    def keep(self, a: Analysis, _: Judgement) -> None:
        self.frames.append(NormalFrame.kept(a, self.offset + a.effective.t))


def _from(frames: Iterator[Frame], start_s: float, every_s: float | None) -> Iterator[Frame]:
    """The frames from `start_s` on; with `every_s`, only the first BURST_S seconds of each
    `every_s`."""
    return (
        f
        for f in frames
        if f.t >= start_s and (every_s is None or (f.t - start_s) % every_s < BURST_S)
    )


def burst_every(sources: Sequence[Path], settings: EdgeSettings, start_s: float) -> float | None:
    """Seconds between the starts of the bursts learning encodes, so that about
    `normality.learn_frames` frames are encoded; None: every frame (the footage is no longer, or
    a file does not state its length)."""
    lengths = [file_seconds(p) for p in sources]
    unknown = [str(p) for p, s in zip(sources, lengths, strict=True) if s is None]
    if unknown:
        log.warning("%s does not state its length: learning encodes every frame", unknown[0])
        return None
    frames = sum(max(0.0, s - start_s) for s in lengths if s is not None) * settings.source.fps
    budget = settings.normality.learn_frames
    return BURST_S * frames / budget if frames > budget else None


def normal_frames(
    sources: Sequence[Path],
    settings: EdgeSettings,
    analyser: Analyser,
    start_s: float = 0.0,
    every_s: float | None = None,
) -> tuple[list[NormalFrame], list[dict[str, Any]]]:
    """Every source through the pipeline (with `every_s`, its bursts); frames in one time line,
    and what each source gave."""
    keeper = _Kept()
    footage = []
    for path in sources:
        cfg = settings.model_copy(
            update={"source": settings.source.model_copy(update={"uri": str(path)})}
        )
        before = len(keeper.frames)
        with open_source(cfg.source, settings.camera_id) as source:
            frames = _from(sampled(source, cfg.source.fps, settings.camera_id), start_s, every_s)
            Pipeline(cfg, analyser, [], scorer=Tap(HeadScorer(), keeper.keep)).run(frames)
        got = keeper.frames[before:]
        seconds = (got[-1].t - got[0].t + 1.0 / cfg.source.fps) if got else 0.0
        footage.append({"source": str(path), "seconds": round(seconds, 2), "frames": len(got)})
        keeper.offset = (got[-1].t if got else keeper.offset) + settings.sets.max_gap_s + 1.0
    # Patches stay float16 (half the memory): the model reads them through normalise_rows,
    # which works in float32.
    return keeper.frames, footage


def learn(
    sources: Sequence[Path], out: Path, settings: EdgeSettings, start_s: float = 0.0
) -> tuple[NormalityModel, dict[str, Any]]:
    """Learn and save; NormalityError when the footage is shorter than MIN_LEARN_S."""
    t0 = time.perf_counter()
    every_s = burst_every(sources, settings, start_s)
    every = round(every_s, 3) if every_s is not None else None  # as the summary and manifest say
    if every_s is not None:
        log.info(
            "learning from %g s bursts every %.1f s (normality.learn_frames = %d)",
            BURST_S,
            every_s,
            settings.normality.learn_frames,
        )
    analyser = build_analyser(settings)
    try:
        frames, footage = normal_frames(sources, settings, analyser, start_s, every_s)
    finally:
        analyser.close()
    seconds = sum(float(f["seconds"]) for f in footage)
    if seconds < MIN_LEARN_S:
        raise NormalityError(
            f"{seconds:.1f} s of footage is too little to learn what is normal: give at least "
            f"{MIN_LEARN_S:g} s (a real camera: 5-10 minutes of its usual traffic)"
        )
    t1 = time.perf_counter()
    cfg = settings.normality
    model = fit(frames, grid_of_frames(frames), cfg.memory_patches, cfg.radius)
    prov = Provenance(
        encoder=encoder_family(settings),
        input_size=settings.encoder.input_size,
        embed_dim=int(frames[0].patches.shape[1]),
        fps=settings.source.fps,
        camera=settings.camera_id,
        footage=footage,
        frames=len(frames),
        seconds=seconds,
        head=head_sha(settings),
        settings={
            "memory_patches": cfg.memory_patches,
            "radius": cfg.radius,
            "start_s": start_s,
            "burst_s": BURST_S if every_s is not None else None,
            "burst_every_s": every,
        },
    )
    save_model(model, prov, out)
    summary = {
        "out": str(out),
        "camera": settings.camera_id,
        "frames": len(frames),
        "seconds": round(seconds, 2),
        "burst_every_s": every,
        "memory_patches": int(model.memory.shape[0]),
        "bytes_in_memory": model.nbytes,
        "encode_s": round(t1 - t0, 2),
        "fit_s": round(time.perf_counter() - t1, 2),
        "calibration": {k: c.to_list() for k, c in model.calibration.items()},
    }
    return model, summary


def grid_of_frames(frames: Sequence[NormalFrame]) -> tuple[int, int]:
    n = int(frames[0].patches.shape[0])
    side = round(n**0.5)
    if side * side != n:
        raise NormalityError(f"{n} patches do not make a square grid")
    return side, side


def add_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("learn", help="learn a camera's normality model from its normal footage")
    add_common(p)
    p.add_argument(
        "--source",
        dest="sources",
        action="append",
        required=True,
        type=Path,
        metavar="FILE",
        help="normal footage of the camera (repeat for more files; >= 30 s in all)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the model")
    p.add_argument("--camera-id", help="the camera this model is for")
    p.add_argument("--fps", type=float, help="frames per second (as the camera will run)")
    p.add_argument(
        "--start",
        type=float,
        default=0.0,
        metavar="S",
        help="skip the first S seconds of each file",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(handler=cmd_learn)


def cmd_learn(args: argparse.Namespace) -> int:
    from vau.edge.cli import settings_from
    from vau.edge.console import setup_logging

    missing = [str(s) for s in args.sources if not s.is_file()]
    if missing:
        raise SettingsError(
            f"--source {missing[0]} is not a file; pass normal footage of the camera"
        )
    if args.start < 0:
        raise SettingsError(f"--start must be >= 0, got {args.start}")
    settings = settings_from(args)
    setup_logging(settings.output.log_format)
    _model, summary = learn(args.sources, args.out, settings, args.start)
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"learnt {summary['camera']} from {summary['seconds']} s ({summary['frames']} "
            f"frames) in {summary['encode_s'] + summary['fit_s']:.1f} s -> {args.out}"
        )
    return 0
