"""`vau-edge bench`: the real encoder on real footage, every backend on the same frames.

One run decodes N frames once, then runs the full pipeline (preprocess, encoder, SETS, head, the
frame scorer with the camera's normality model when `--normality DIR` is given, events) per backend
and writes JSON: per-stage ms/frame, frames/s, peak RSS, agreement with the first backend (the
reference, torch fp32 by default; the normality parts too) and frames/s ratios between backends.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vau.common.cli import emit_report
from vau.edge.analysers import Analyser, Analysis, build_analyser
from vau.edge.bench_cameras import bench_cameras
from vau.edge.pipeline import Pipeline
from vau.edge.pixels import PixelMeter
from vau.edge.scoring.factory import build_scorer
from vau.edge.sets import StreamMemory
from vau.edge.settings import EdgeSettings, SettingsError
from vau.edge.sources import open_source, sampled
from vau.edge.tetg import load_head
from vau.edge.timing import StageTimes
from vau.edge.types import F32, EffectiveTokens, EventUpdate, Frame, FrameScore, Window

# backend name -> encoder settings that differ from the configured ones
BACKENDS: dict[str, dict[str, Any]] = {
    "torch": {"backend": "torch", "precision": "fp32"},
    "torch-int8": {"backend": "torch", "precision": "int8"},
    "onnx": {"backend": "onnx", "precision": "fp32"},
    # GPU hosts: an encoder-only engine (encoder.engine); a fused engine runs as "fused" with
    # encoder.fused_model = "<engine>.engine"
    "tensorrt": {"backend": "tensorrt"},
    # DINOv2 + SETS + head in one ONNX graph (vau-export), exported into the cache on first use
    "fused": {"backend": "fused", "precision": "fp32"},
    "fused-int8": {"backend": "fused", "precision": "int8"},
    # the contract's name for ONNX Runtime int8: the fused graph's dynamic int8 twin
    "onnx-int8": {"backend": "fused", "precision": "int8"},
}
WARMUP = 2


@dataclass
class Recorder:
    """Wraps the model stage and is a sink: captures what a backend produced, frame by frame."""

    analyser: Analyser
    cls: list[F32] = field(default_factory=list)
    indices: list[set[int]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    normality: list[float] = field(default_factory=list)  # calibrated, when a model is configured
    parts: list[dict[str, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.analyser.name

    @property
    def input_size(self) -> int:
        return self.analyser.input_size

    def analyse(
        self,
        frames: Sequence[Frame],
        pixels: F32,
        times: StageTimes,
        memories: Sequence[StreamMemory],
    ) -> list[Analysis]:
        out = self.analyser.analyse(frames, pixels, times, memories)
        self.cls.extend(a.cls for a in out)
        return out

    def close(self) -> None:
        self.analyser.close()

    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None:
        self.indices.append(set(tokens.indices.tolist()))
        self.scores.append(score.score)
        if score.normality is not None:
            self.normality.append(score.normality)
            self.parts.append(dict(score.components))

    def event(self, update: EventUpdate) -> None:
        pass

    def window(self, window: Window) -> None:
        pass


def decode_frames(
    settings: EdgeSettings, n: int, sample: Path | None
) -> tuple[list[Frame], float, float]:
    """The first n sampled frames in memory, the decode ms per kept frame (the pixel measures
    included) and the pixel measures' own ms per kept frame (`vau.edge.pixels`: the flow, the
    view change and the still pixels, over every source frame)."""
    frames: list[Frame] = []
    meter = PixelMeter()
    t0 = time.perf_counter()
    with open_source(settings.source, settings.camera_id, sample) as source:
        for frame in sampled(source, settings.source.fps, settings.camera_id, meter):
            frames.append(frame)
            if len(frames) >= n:
                break
    per_frame = 1000.0 / max(len(frames), 1)
    return frames, per_frame * (time.perf_counter() - t0), per_frame * meter.seconds


def backend_settings(settings: EdgeSettings, name: str) -> EdgeSettings:
    """The settings with backend `name`; FusedAnalyser refuses a SETS mode the graph lacks."""
    update = BACKENDS[name]
    encoder = settings.encoder.model_copy(update=update)
    if update["backend"] == "fused":
        encoder = encoder.model_copy(update={"batch_size": 1})
    return settings.model_copy(update={"encoder": encoder})


def measure(
    settings: EdgeSettings,
    name: str,
    frames: list[Frame],
    counts: Sequence[int] = (),
    pixels_ms: float = 0.0,
) -> dict[str, Any]:
    """The whole pipeline (preprocess, model stage, events) on `frames`, after a warm-up; with
    `counts`, also that many cameras through the same model stage (`bench_cameras`). `pixels_ms`:
    the pixel measures' ms per frame (flow, view change, still pixels), measured while decoding,
    counted in the normality share."""
    chosen = backend_settings(settings, name)
    analyser = build_analyser(chosen)
    # the warm-up runs the scorer too: its first use (imports, BLAS threads) is not a stage cost
    warm = build_scorer(chosen, embed_dim(chosen))
    Pipeline(chosen, analyser, [], scorer=warm).run(frames[:WARMUP])
    warm.close()
    rec = Recorder(analyser)
    pipeline = Pipeline(chosen, rec, [rec], scorer=build_scorer(chosen, embed_dim(chosen)))
    t0 = time.perf_counter()
    stats = pipeline.run(frames)
    wall = time.perf_counter() - t0
    cameras = {"cameras": bench_cameras(chosen, analyser, frames, counts)} if counts else {}
    rec.close()
    stages = stats.times.ms_per_frame()
    stages.pop("decode")
    after = stages["sets"] + stages["head"] + stages["normality"] + stages["events"]
    return {
        "fps": len(frames) / wall,
        "ms_per_frame": 1000.0 * wall / len(frames),
        "stages_ms": stages,
        "post_encoder_share": after / max(stages["encoder"], 1e-9),
        "normality_share": (stages["normality"] + pixels_ms) / max(stages["encoder"], 1e-9),
        "peak_rss_mb": peak_rss_mb(),
        "_rec": rec,
    } | cameras


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def agreement(ref: Recorder, other: Recorder) -> dict[str, float]:
    a, b = np.stack(ref.cls), np.stack(other.cls)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    overlap = [len(x & y) / max(len(x), 1) for x, y in zip(ref.indices, other.indices, strict=True)]
    diffs = np.abs(np.array(ref.scores) - np.array(other.scores))
    out = {
        "cls_cosine": float(cos.min()),
        "cls_max_abs_diff": float(np.abs(a - b).max()),
        "index_overlap": float(np.mean(overlap)),
        "score_abs_diff": float(diffs.max()),  # the worst frame
        "score_mean_abs_diff": float(diffs.mean()),
    }
    if ref.normality and len(ref.normality) == len(other.normality):
        out |= component_agreement(ref, other)
    return out


def component_agreement(ref: Recorder, other: Recorder) -> dict[str, float]:
    """How far each calibrated normality part moves between two backends on the same frames."""
    out = {"normality_abs_diff": float(np.abs(np.subtract(ref.normality, other.normality)).max())}
    for name in sorted(set(ref.parts[-1]) & set(other.parts[-1])):
        a = np.array([p.get(name, 0.0) for p in ref.parts])
        b = np.array([p.get(name, 0.0) for p in other.parts])
        out[f"{name}_abs_diff"] = float(np.abs(a - b).max())
        out[f"{name}_mean_abs_diff"] = float(np.abs(a - b).mean())
    return out


def embed_dim(settings: EdgeSettings) -> int:
    return load_head(settings.head.path).config.embed_dim


def camera_counts(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        counts = sorted({int(c) for c in text.split(",") if c.strip()})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1 or counts[-1] > 64:
        raise SettingsError(f"--cameras must be a comma list of counts in 1..64, got {text!r}")
    return counts


def run_bench(
    settings: EdgeSettings,
    names: list[str],
    n: int,
    sample: Path | None,
    counts: Sequence[int] = (),
) -> dict[str, Any]:
    frames, decode_ms, pixels_ms = decode_frames(settings, n, sample)
    results = {name: measure(settings, name, frames, counts, pixels_ms) for name in names}
    ref: Recorder = results[names[0]]["_rec"]
    for res in results.values():
        res.update(agreement(ref, res.pop("_rec")))
    fps = {k: v["fps"] for k, v in results.items()}
    return {
        "source": settings.source.uri if sample is None else str(sample),
        "frames": len(frames),
        "input_size": settings.encoder.input_size,
        "keep_ratio": settings.sets.keep_ratio,
        "threads": settings.encoder.threads,
        "decode_ms_per_frame": decode_ms,
        "flow_ms_per_frame": pixels_ms,  # both pixel measures; the key is kept for scripts
        "reference": names[0],
        "backends": results,
        "ratios": {f"{k}_vs_{names[0]}_fps": v / fps[names[0]] for k, v in fps.items()},
        "peak_rss_mb": peak_rss_mb(),
        "normality_model": None
        if settings.normality.path is None
        else str(settings.normality.path),
    }


def add_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("bench", help="benchmark backends on the same real frames, JSON out")
    add_common(p)
    p.add_argument("--source", metavar="PATH|URL", help="footage (default: bundled vtest.avi)")
    p.add_argument("--frames", type=int, default=40, help="frames per backend (default 40)")
    p.add_argument("--backends", default="torch,onnx", help=f"comma list of {', '.join(BACKENDS)}")
    p.add_argument(
        "--normality", type=Path, metavar="DIR", help="a normality model to measure and compare"
    )
    p.add_argument(
        "--cameras",
        metavar="N,N",
        help="also run N cameras through one model stage per backend, e.g. 1,2,4: aggregate "
        "frames/s (one frame per call and batched across cameras), per-camera latency at "
        "source.fps, memory per extra camera",
    )
    p.add_argument("--json", type=Path, metavar="OUT", help="write the report here too")
    p.set_defaults(handler=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from vau.edge.cli import settings_from
    from vau.edge.runner import sample_footage

    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown or not names:
        raise SettingsError(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    if args.frames < WARMUP + 1:
        raise SettingsError(f"--frames must be at least {WARMUP + 1}")
    counts = camera_counts(args.cameras)
    settings = settings_from(args)
    report = run_bench(settings, names, args.frames, sample_footage(settings), counts)
    emit_report(report, args.json)
    return 0
