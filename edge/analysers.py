"""The per-frame model stage: normalised pixels -> SETS's kept tokens, the CLS token and the score.

Two implementations behind one interface, picked by `encoder.backend`:
- `SplitAnalyser`: an encoder backend (torch, onnx, tensorrt), then SETS and the NumPy head on the
  host. Any SETS mode, any batch size.
- `FusedAnalyser`: one `vau-export` graph does DINOv2 + SETS top-K + the head, so only K tokens
  leave the runtime (`encoder.backend = "fused"`). Top-K mode; a batch holds at most one frame of
  each stream per call (each frame's SETS reference is its stream's previous output).
Neither keeps stream state: each frame comes with its stream's `sets.StreamMemory`, and both apply
SETS's one keyframe rule (`sets.choose`).
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
from vau.edge.sets import StreamMemory, choose, effective
from vau.edge.settings import EdgeSettings, SetsSettings
from vau.edge.tetg import AnomalyHead, load_head
from vau.edge.timing import StageTimes
from vau.edge.types import F32, EffectiveTokens, Frame, StillView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    """One frame through the model stage."""

    effective: EffectiveTokens
    cls: F32  # (C,)
    score: float  # TETG anomaly likelihood in [0, 1], before smoothing
    patches: F32  # (N, C) every patch token of the frame (the normality model reads them all)
    change: F32 | None  # (N,) every patch's L1 change since the previous frame; None: keyframe
    flow: float | None = None  # the frame's pixel speed (`Frame.flow`), views/s
    pixel_change: float | None = None  # share of the view off its background (`Frame`)
    brightness: float | None = None  # the view's mean grey level minus its background's (`Frame`)
    still: StillView | None = None  # the grey copy and its still pixels (`Frame.still`)
    inner: F32 | None = None  # (N, C) the inner block's patch tokens (appearance); None: patches
    detail: float | None = None  # the view's detail over its background's (`Frame`)

    @property
    def looks(self) -> F32:
        """The tokens the normality model's appearance part reads."""
        return self.patches if self.inner is None else self.inner


class Analyser(Protocol):
    """The shared, stateless model stage: each frame comes with its stream's `StreamMemory`, so
    one analyser (one copy of the model) serves every camera."""

    @property
    def name(self) -> str: ...

    @property
    def input_size(self) -> int: ...

    def analyse(
        self,
        frames: Sequence[Frame],
        pixels: F32,
        times: StageTimes,
        memories: Sequence[StreamMemory],
    ) -> list[Analysis]:
        """Frames, their preprocessed (B, 3, S, S) pixels and each frame's stream memory (the
        same memory for frames of one stream, in stream order) -> one Analysis per frame."""
        ...

    def close(self) -> None: ...


class SplitAnalyser:
    def __init__(self, encoder: Encoder, head: AnomalyHead, sets: SetsSettings) -> None:
        head.check_encoder(encoder.embed_dim, encoder.input_size)
        self._encoder = encoder
        self._head = head
        self._sets = sets

    @property
    def name(self) -> str:
        return self._encoder.name

    @property
    def input_size(self) -> int:
        return self._encoder.input_size

    def analyse(
        self,
        frames: Sequence[Frame],
        pixels: F32,
        times: StageTimes,
        memories: Sequence[StreamMemory],
    ) -> list[Analysis]:
        n = len(frames)
        t0 = time.perf_counter()
        enc = self._encoder.encode(pixels)
        t1 = time.perf_counter()
        scores = self._head.score(enc.cls)
        t2 = time.perf_counter()
        out = []
        all_tokens = to_tokens(frames, enc.patches, enc.cls, self.input_size)
        both = zip(all_tokens, enc.inner, strict=True)
        for frame, (tokens, inner), score, memory in zip(
            frames, both, scores, memories, strict=True
        ):
            ref = memory.reference(tokens.t, self._sets.max_gap_s)
            choice = choose(tokens.patches, ref, self._sets)
            memory.remember(tokens.t, tokens.patches)
            eff = effective(tokens, choice)
            out.append(
                Analysis(
                    eff,
                    tokens.cls,
                    float(score),
                    tokens.patches,
                    choice.change,
                    frame.flow,
                    frame.pixel_change,
                    frame.brightness,
                    frame.still,
                    inner,
                    frame.detail,
                )
            )
        times.add("encoder", t1 - t0, n)
        times.add("head", t2 - t1, n)
        times.add("sets", time.perf_counter() - t2, n)
        return out

    def close(self) -> None:
        self._encoder.close()


class FusedAnalyser:
    """The fused graph; frames of different streams in one batch run in one call (each with its
    own reference), frames of one stream in turn."""

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
        self.input_size = runner.input_size

    def analyse(
        self,
        frames: Sequence[Frame],
        pixels: F32,
        times: StageTimes,
        memories: Sequence[StreamMemory],
    ) -> list[Analysis]:
        out: list[Analysis] = []
        for run in distinct_runs(memories):
            out.extend(self._run(frames[run], pixels[run], times, memories[run]))
        return out

    def _run(
        self,
        frames: Sequence[Frame],
        pixels: F32,
        times: StageTimes,
        memories: Sequence[StreamMemory],
    ) -> list[Analysis]:
        grid = grid_of(self.input_size)
        refs = [
            m.reference(f.t, self._sets.max_gap_s) for f, m in zip(frames, memories, strict=True)
        ]
        t0 = time.perf_counter()
        steps = self._runner.steps(pixels, refs, self._sets)
        t1 = time.perf_counter()
        out = []
        for frame, memory, step in zip(frames, memories, steps, strict=True):
            memory.remember(frame.t, step.patches)
            eff = EffectiveTokens(
                seq=frame.seq, t=frame.t, wall_time=frame.wall_time, indices=step.indices,
                tokens=step.kept, distances=step.distances.astype(np.float32, copy=False),
                patches=step.patches.shape[0], grid=grid, keyframe=step.keyframe,
            )  # fmt: skip
            out.append(
                Analysis(
                    eff,
                    step.cls,
                    step.score,
                    step.patches,
                    step.change,
                    frame.flow,
                    frame.pixel_change,
                    frame.brightness,
                    frame.still,
                    step.inner,
                    frame.detail,
                )
            )
        times.add("encoder", t1 - t0, len(frames))
        times.add("sets", time.perf_counter() - t1, len(frames))
        return out

    def close(self) -> None:
        self._runner.close()


def distinct_runs(memories: Sequence[StreamMemory]) -> list[slice]:
    """Consecutive slices in which no stream appears twice (a frame's reference is the output of
    its stream's previous frame, so two frames of one stream cannot share a fused call)."""
    runs, start, seen = [], 0, set[int]()
    for i, memory in enumerate(memories):
        if id(memory) in seen:
            runs.append(slice(start, i))
            start, seen = i, set()
        seen.add(id(memory))
    if start < len(memories):
        runs.append(slice(start, len(memories)))
    return runs


def check_head(artefact: Path, head_ref: str) -> None:
    """Refuse a fused graph that carries a different TETG head than the one configured."""
    from vau.edge.encoders.cache import carries_head

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
        from vau.edge.encoders.artefact import ArtefactError
        from vau.edge.encoders.cache import fused_artefact

        try:
            path = fused_artefact(settings)
        except (ArtefactError, OSError) as exc:
            raise EncoderError(f"cannot prepare the fused graph: {exc}") from None
        runner = FusedRunner(path, enc.input_size, settings.sets.keep_ratio, enc.threads)
        log.info("model stage: fused graph %s (%s, K=%d)", path, runner.manifest.precision,
                 runner.k)  # fmt: skip
        return FusedAnalyser(runner, head, settings.sets, settings.head.path)
    from vau.edge.encoders.factory import build_encoder

    return SplitAnalyser(build_encoder(enc, settings.cache_dir), head, settings.sets)
