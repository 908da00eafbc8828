"""Fused backend: DINOv2 + SETS top-K + TETG head as one `vau-export` graph (ONNX Runtime or TRT).

Unlike the encoder backends it returns SETS's choice and the score too, so only K tokens leave the
runtime. The runner keeps no stream state: `steps` takes each frame's reference (the previous
frame's patch tokens, or None for a keyframe), so one runner serves many cameras, batched.

A `.onnx` file runs on ONNX Runtime (CPU); a `.engine` file (`vau-export tensorrt` of a fused ONNX
graph) runs on TensorRT, imported only then. Either is checked against its manifest at load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vau.edge.encoders.artefact import ArtefactError, check_artefact
from vau.edge.encoders.base import Encoded, EncoderError
from vau.edge.encoders.onnx_backend import session_options
from vau.edge.sets import StreamMemory, choose
from vau.edge.settings import SetsSettings
from vau.edge.types import F32, I64

OUTPUTS = ("patches", "cls", "score", "indices", "kept", "inner")


@dataclass(frozen=True)
class FusedOutput:
    patches: F32  # (B, N, C)
    cls: F32  # (B, C)
    score: F32  # (B,)
    indices: I64  # (B, K) ascending
    kept: F32  # (B, K, C)
    inner: F32  # (B, N, C) the inner block's patch tokens (`encoders.base.INNER_FROM_END`)


@dataclass(frozen=True)
class FusedStep:
    """One frame of a stream: what the graph returned plus the host's share of SETS."""

    patches: F32  # (N, C), the next frame's reference
    cls: F32  # (C,)
    score: float
    indices: I64  # (K,) ascending
    kept: F32  # (K, C)
    distances: F32  # (K,) L1 distance of each kept patch to its reference
    keyframe: bool
    inner: F32  # (N, C) the inner block's patch tokens
    change: F32 | None = None  # (N,) every patch's L1 change since the last frame; None: keyframe


class GraphSession(Protocol):
    def run(self, feeds: Mapping[str, F32], outputs: Sequence[str]) -> list[Any]: ...


class _OrtSession:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        try:
            self._session = ort.InferenceSession(
                str(path), session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EncoderError(f"cannot load fused model {path}: {exc}; re-export it") from None

    def run(self, feeds: Mapping[str, F32], outputs: Sequence[str]) -> list[Any]:
        return list(self._session.run(list(outputs), dict(feeds)))


def open_session(path: Path, threads: int = 0) -> GraphSession:
    if path.suffix == ".engine":
        from vau.edge.encoders.trt_engine import TrtEngine

        return TrtEngine(path)
    return _OrtSession(path, threads)


class FusedRunner:
    """One session of a fused artefact, checked against its manifest at load."""

    name = "fused"

    def __init__(
        self, path: Path, input_size: int, keep_ratio: float | None = None, threads: int = 0
    ) -> None:
        try:
            self.manifest = check_artefact(path, keep_ratio=keep_ratio, input_size=input_size)
        except ArtefactError as exc:
            raise EncoderError(str(exc)) from None
        missing = set(OUTPUTS) - {o.name for o in self.manifest.outputs}
        if missing:
            raise EncoderError(
                f"{path.name} has no {', '.join(sorted(missing))} output (exported by an older "
                "vau-export); export it again (`vau-export onnx`), or leave encoder.fused_model "
                "empty to export one into the cache"
            )
        self._session = open_session(path, threads)
        self.path = path
        self.input_size = input_size
        self.embed_dim = self.manifest.embed_dim
        self.k = self.manifest.k
        self._memory = StreamMemory()  # `step`'s stream only; `steps` keeps no state

    def run(self, batch: F32, prev: F32) -> FusedOutput:
        """(B, 3, S, S), (B, N, C) -> every output of the fused graph."""
        feeds = {
            "pixel_values": np.ascontiguousarray(batch, dtype=np.float32),
            "prev_patches": np.ascontiguousarray(prev, dtype=np.float32),
        }
        patches, cls, score, indices, kept, inner = self._session.run(feeds, OUTPUTS)
        f32 = np.float32
        return FusedOutput(
            patches.astype(f32, copy=False), cls.astype(f32, copy=False),
            score.astype(f32, copy=False), indices.astype(np.int64), kept.astype(f32, copy=False),
            inner.astype(f32, copy=False),
        )  # fmt: skip

    def steps(
        self, batch: F32, references: Sequence[F32 | None], sets: SetsSettings
    ) -> list[FusedStep]:
        """One frame (B, 3, S, S) of each of B streams, each compared with its own reference
        ((N, C) patches, or None for a keyframe); the runner keeps no state, so the frames of a
        batch may come from different cameras.

        The keyframe rule is SETS's (`sets.choose`): a keyframe's reference is its own mean
        token, unknown before the run, so its choice is made on the host from the returned
        patches (~0.1 ms), not by a second run. Every patch's change is recomputed on the host
        (N x C, ~0.05 ms): the normality model reads all of them.
        """
        n, c = self.manifest.patches, self.embed_dim
        zeros = np.zeros((n, c), dtype=np.float32)
        prev = np.stack([zeros if r is None else r for r in references])
        out = self.run(batch, prev)
        result = []
        for i, ref in enumerate(references):
            patches = out.patches[i]
            choice = choose(patches, ref, sets, None if ref is None else out.indices[i])
            kept = patches[choice.indices] if ref is None else out.kept[i]
            result.append(
                FusedStep(
                    patches=patches,
                    cls=out.cls[i],
                    score=float(out.score[i]),
                    indices=choice.indices,
                    kept=np.ascontiguousarray(kept),
                    distances=choice.distances,
                    keyframe=choice.keyframe,
                    inner=out.inner[i],
                    change=choice.change,
                )
            )
        return result

    def step(self, image: F32) -> FusedStep:
        """One frame (1, 3, S, S) of the runner's own stream (tools and checks that walk one
        stream); the first frame, or the first after `reset`, is a keyframe."""
        sets = SetsSettings(keep_ratio=self.manifest.keep_ratio, max_gap_s=float("inf"))
        out = self.steps(image, [self._memory.reference(0.0, sets.max_gap_s)], sets)[0]
        self._memory.remember(0.0, out.patches)
        return out

    def reset(self) -> None:
        self._memory.forget()

    def close(self) -> None:
        self._session = None  # type: ignore[assignment]


class FusedEncoder:
    """A fused graph used as a plain encoder (patch tokens and CLS; its SETS and score unused).

    For tools that need an encoder's features from exactly the graph the edge runs, e.g.
    `vau-edge train-head --consistency-model` on the int8 graph.
    """

    name = "fused"

    def __init__(self, path: Path, input_size: int, threads: int = 0) -> None:
        self._runner = FusedRunner(path, input_size, threads=threads)
        self.input_size = input_size
        self.embed_dim = self._runner.embed_dim

    def encode(self, batch: F32) -> Encoded:
        n, c = self._runner.manifest.patches, self.embed_dim
        out = self._runner.run(batch, np.zeros((len(batch), n, c), dtype=np.float32))
        return Encoded(out.patches, out.cls, out.inner)

    def close(self) -> None:
        self._runner.close()
