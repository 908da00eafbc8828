"""The fused backends of `vau-edge bench`: same frames, same report fields as the pipeline path.

The fused graph already does SETS and the head, so it does not fit the pipeline's `Encoder` slot;
this path times preprocess + the fused run per frame and records CLS, kept indices and scores for
`bench.agreement` against the torch reference. Missing artefacts are exported (and quantised) once
into the cache, keyed by input size and keep ratio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vau.edge.encoders.base import EncoderError, preprocess
from vau.edge.encoders.fused_backend import FusedRunner
from vau.edge.settings import EdgeSettings
from vau.edge.types import F32, Frame

WARMUP = 2


@dataclass
class FusedRecord:
    """What `bench.agreement` reads: per-frame CLS, kept index sets and scores."""

    cls: list[F32] = field(default_factory=list)
    indices: list[set[int]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def fused_artefact(settings: EdgeSettings, precision: str) -> Path:
    """The configured fused graph, or one exported (and quantised) into the cache on first use."""
    from vau.assets.paths import default_cache_dir
    from vau.export.fused import fused_k
    from vau.export.onnx_export import artefact_name, export_onnx
    from vau.export.quantize import quantize, quantized_name
    from vau.export.settings import ExportSettings

    size, ratio = settings.encoder.input_size, settings.sets.keep_ratio
    if settings.encoder.fused_model:
        path = Path(settings.encoder.fused_model)
    else:
        folder = (settings.cache_dir or default_cache_dir()) / "export" / f"fused-{size}-r{ratio}"
        path = folder / artefact_name(fused_k(size, ratio))
        if not path.is_file():
            weights = Path(settings.encoder.model)
            if not weights.is_dir():
                from vau.assets import asset_path

                weights = asset_path(settings.encoder.model, settings.cache_dir)
            export_onnx(weights, folder, ExportSettings(input_size=size, keep_ratio=ratio))
    if precision == "int8":
        int8 = quantized_name(path, "dynamic")
        return int8 if int8.is_file() else quantize(path, "dynamic")
    return path


def measure_fused(settings: EdgeSettings, precision: str, frames: list[Frame]) -> dict[str, Any]:
    if settings.sets.mode != "topk" or settings.sets.keyframe != "distinct":
        raise EncoderError("the fused backends implement sets.mode 'topk', keyframe 'distinct'")
    size = settings.encoder.input_size
    runner = FusedRunner(
        fused_artefact(settings, precision), size, settings.sets.keep_ratio,
        settings.encoder.threads,
    )  # fmt: skip
    for frame in frames[:WARMUP]:
        runner.step(preprocess([frame.image], size))
    runner.reset()
    rec, pre_s, run_s = FusedRecord(), 0.0, 0.0
    t0 = time.perf_counter()
    for frame in frames:
        t1 = time.perf_counter()
        batch = preprocess([frame.image], size)
        t2 = time.perf_counter()
        out = runner.step(batch)
        pre_s, run_s = pre_s + t2 - t1, run_s + time.perf_counter() - t2
        rec.cls.append(out.cls[0])
        rec.indices.append(set(out.indices[0].tolist()))
        rec.scores.append(float(out.score[0]))
    wall = time.perf_counter() - t0
    runner.close()
    n = len(frames)
    return {
        "fps": n / wall,
        "ms_per_frame": 1000.0 * wall / n,
        "stages_ms": {"preprocess": 1000.0 * pre_s / n, "fused": 1000.0 * run_s / n},
        "_rec": rec,
    }
