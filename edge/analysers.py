"""The per-frame model stage: normalised pixels -> SETS's kept tokens, the CLS token and the score.

Two implementations behind one interface, picked by `encoder.backend`:
- `SplitAnalyser`: an encoder backend (torch, onnx, tensorrt), then `SetsSelector` and the NumPy
  head on the host. Any SETS mode, any batch size.
- `FusedAnalyser`: one `vau-export` graph does DINOv2 + SETS top-K + the head, so only K tokens
  leave the runtime (`encoder.backend = "fused"`). Top-K mode, one frame per call (each frame's
  SETS reference is the previous frame's output).
Both keep the same keyframe rule (stream start, or a gap over `sets.max_gap_s`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from vau.edge.encoders.base import Encoder, EncoderError, grid_of, to_tokens
from vau.edge.encoders.fused_backend import FusedRunner
from vau.edge.sets import SetsSelector, l1_distance
from vau.edge.settings import EdgeSettings, SetsSettings
from vau.edge.tetg import AnomalyHead, load_head
from vau.edge.timing import StageTimes
from vau.edge.types import F32, EffectiveTokens, Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    """One frame through the model stage."""

    effective: EffectiveTokens
    cls: F32  # (C,)
    score: float  # TETG anomaly likelihood in [0, 1], before smoothing
    patches: F32  # (N, C) every patch token of the frame (the normality model reads them all)
    change: F32 | None  # (N,) every patch's L1 change since the previous frame; None: keyframe


class Analyser(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def input_size(self) -> int: ...

    def analyse(self, frames: Sequence[Frame], pixels: F32, times: StageTimes) -> list[Analysis]:
        """Frames and their preprocessed (B, 3, S, S) pixels -> one Analysis per frame."""
        ...

    def reset(self) -> None:
        """Forget the stream: the next frame is a keyframe."""
        ...

    def close(self) -> None: ...


class SplitAnalyser:
    def __init__(self, encoder: Encoder, head: AnomalyHead, sets: SetsSettings) -> None:
        head.check_encoder(encoder.embed_dim, encoder.input_size)
        self._encoder = encoder
        self._head = head
        self._sets = SetsSelector(sets)

    @property
    def name(self) -> str:
        return self._encoder.name

    @property
    def input_size(self) -> int:
        return self._encoder.input_size

    def analyse(self, frames: Sequence[Frame], pixels: F32, times: StageTimes) -> list[Analysis]:
        n = len(frames)
        t0 = time.perf_counter()
        patches, cls = self._encoder.encode(pixels)
        t1 = time.perf_counter()
        scores = self._head.score(cls)
        t2 = time.perf_counter()
        out = []
        for tokens, score in zip(
            to_tokens(frames, patches, cls, self.input_size), scores, strict=True
        ):
            eff, change = self._sets.step(tokens)
            out.append(Analysis(eff, tokens.cls, float(score), tokens.patches, change))
        times.add("encoder", t1 - t0, n)
        times.add("head", t2 - t1, n)
        times.add("sets", time.perf_counter() - t2, n)
        return out

    def reset(self) -> None:
        self._sets.reset()

    def close(self) -> None:
        self._encoder.close()


class FusedAnalyser:
    name = "fused"

    def __init__(
        self, runner: FusedRunner, head: AnomalyHead, sets: SetsSettings, head_ref: str
    ) -> None:
        if sets.mode != "topk":
            raise EncoderError(
                "the fused backend implements sets.mode = 'topk' only (K is fixed in the graph); "
                "use encoder.backend = 'onnx' for threshold mode"
            )
        head.check_encoder(runner.embed_dim, runner.input_size)
        check_head(runner.path, head_ref)
        self._runner = runner
        self._sets = sets
        self._last_t: float | None = None
        self.input_size = runner.input_size

    def analyse(self, frames: Sequence[Frame], pixels: F32, times: StageTimes) -> list[Analysis]:
        out = []
        grid = grid_of(self.input_size)
        for i, frame in enumerate(frames):
            if self._last_t is not None and frame.t - self._last_t > self._sets.max_gap_s:
                self._runner.reset()
            self._last_t = frame.t
            t0 = time.perf_counter()
            step = self._runner.step(pixels[i : i + 1])
            t1 = time.perf_counter()
            indices, kept, dist = step.indices, step.kept, step.distances
            if step.keyframe and self._sets.keyframe == "all":
                n = step.patches.shape[0]
                indices, kept = np.arange(n, dtype=np.int64), step.patches
                dist = l1_distance(kept, kept.mean(axis=0, keepdims=True))
            eff = EffectiveTokens(
                seq=frame.seq, t=frame.t, wall_time=frame.wall_time, indices=indices,
                tokens=kept, distances=dist.astype(np.float32, copy=False),
                patches=step.patches.shape[0], grid=grid, keyframe=step.keyframe,
            )  # fmt: skip
            out.append(Analysis(eff, step.cls, step.score, step.patches, step.change))
            times.add("encoder", t1 - t0)
            times.add("sets", time.perf_counter() - t1)
        return out

    def reset(self) -> None:
        self._runner.reset()
        self._last_t = None

    def close(self) -> None:
        self._runner.close()


def check_head(artefact: Path, head_ref: str) -> None:
    """Refuse a fused graph that carries a different TETG head than the one configured."""
    from vau.export.cached import carries_head

    if not carries_head(artefact, head_ref):
        raise EncoderError(
            f"{artefact.name} carries another TETG head than head.path; re-export it with "
            "`vau-export onnx --head PATH`, or leave encoder.fused_model empty to export one into "
            "the cache"
        )


def build_analyser(settings: EdgeSettings) -> Analyser:
    """The configured model stage; exports the fused graph into the cache on first use."""
    head = load_head(settings.head.path)
    enc = settings.encoder
    if enc.backend == "fused":
        from vau.export.cached import fused_artefact
        from vau.export.settings import ExportError

        try:
            path = fused_artefact(settings)
        except (ExportError, OSError) as exc:
            raise EncoderError(f"cannot prepare the fused graph: {exc}") from None
        runner = FusedRunner(path, enc.input_size, settings.sets.keep_ratio, enc.threads)
        log.info("model stage: fused graph %s (%s, K=%d)", path, runner.manifest.precision,
                 runner.k)  # fmt: skip
        return FusedAnalyser(runner, head, settings.sets, settings.head.path)
    from vau.edge.encoders.factory import build_encoder

    return SplitAnalyser(build_encoder(enc, settings.cache_dir), head, settings.sets)
