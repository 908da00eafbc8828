"""Fused backend: ONNX Runtime runs DINOv2 + SETS top-K + TETG head as one graph (`vau-export`).

Unlike the encoder backends it returns SETS's choice and the score too, so only K tokens leave the
runtime. The caller keeps the previous frame's patch tokens; a stream's first frame is a keyframe
whose reference is its own mean token (`sets.keyframe = "distinct"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vau.edge.encoders.base import EncoderError
from vau.edge.encoders.onnx_backend import session_options
from vau.edge.sets import l1_distance, top_k
from vau.edge.types import F32, I64


@dataclass(frozen=True)
class FusedOutput:
    patches: F32  # (B, N, C)
    cls: F32  # (B, C)
    score: F32  # (B,)
    indices: I64  # (B, K) ascending
    kept: F32  # (B, K, C)


class FusedRunner:
    """One ONNX Runtime session of a fused artefact, checked against its manifest at load."""

    name = "fused"

    def __init__(
        self, path: Path, input_size: int, keep_ratio: float | None = None, threads: int = 0
    ) -> None:
        import onnxruntime as ort

        from vau.export.manifest import check_artefact
        from vau.export.settings import ExportError

        try:
            self.manifest = check_artefact(path, keep_ratio=keep_ratio, input_size=input_size)
        except ExportError as exc:
            raise EncoderError(str(exc)) from None
        opts = session_options(threads)
        try:
            self._session = ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EncoderError(f"cannot load fused model {path}: {exc}; re-export it") from None
        self.input_size = input_size
        self.embed_dim = self.manifest.embed_dim
        self.k = self.manifest.k
        self._prev: F32 | None = None

    def run(self, batch: F32, prev: F32) -> FusedOutput:
        """(B, 3, S, S), (B, N, C) -> every output of the fused graph."""
        feeds = {
            "pixel_values": np.ascontiguousarray(batch, dtype=np.float32),
            "prev_patches": np.ascontiguousarray(prev, dtype=np.float32),
        }
        patches, cls, score, indices, kept = self._session.run(None, feeds)
        return FusedOutput(patches, cls, score, indices.astype(np.int64), kept)

    def step(self, image: F32) -> FusedOutput:
        """One frame (1, 3, S, S) of a stream; the first (or after `reset`) is a keyframe.

        A keyframe's reference is its own mean token, unknown before the run, so its top-K is
        taken on the host from the returned patches (`sets.top_k`, ~0.1 ms), not a second run.
        """
        if self._prev is not None:
            out = self.run(image, self._prev)
        else:
            n, c = self.manifest.patches, self.embed_dim
            raw = self.run(image, np.zeros((1, n, c), dtype=np.float32))
            patches = raw.patches[0]
            dist = l1_distance(patches, patches.mean(axis=0, keepdims=True))
            idx = top_k(dist, self.k)
            out = FusedOutput(raw.patches, raw.cls, raw.score, idx[None], patches[idx][None])
        self._prev = out.patches
        return out

    def reset(self) -> None:
        self._prev = None

    def close(self) -> None:
        del self._session
