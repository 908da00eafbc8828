"""`vau-export verify`: a fused artefact against the torch reference on real footage.

The reference is the edge's own chain: the torch encoder (transformers Dinov2Model), `SetsSelector`
(stable top-K, "distinct" keyframe) and the NumPy TETG head. Both sides run the same frames as a
stream, each feeding back its own previous patch tokens, as a device would.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vau.edge.encoders.artefact import check_artefact
from vau.edge.encoders.fused_backend import FusedRunner
from vau.edge.encoders.torch_backend import TorchEncoder
from vau.edge.sets import SetsSelector
from vau.edge.settings import SetsSettings
from vau.edge.tetg import load_head
from vau.edge.types import F32, Tokens
from vau.export.settings import ExportError


@dataclass(frozen=True)
class Thresholds:
    patches_max_abs: float  # largest |Δ| of any patch token value
    cls_max_abs: float
    cls_cosine: float  # the lowest per-frame CLS cosine allowed
    score_abs: float  # the largest per-frame score difference allowed
    index_overlap: float  # the lowest mean share of top-K indices in common allowed
    inner_cosine: float  # the lowest per-frame mean cosine of the inner tokens (appearance)


THRESHOLDS = {
    "fp32": Thresholds(1e-3, 1e-3, 0.99999, 1e-4, 0.99, 0.99999),
    "fp16": Thresholds(5e-2, 5e-2, 0.999, 5e-3, 0.95, 0.999),
    "int8": Thresholds(float("inf"), float("inf"), 0.99, 0.02, 0.90, 0.995),  # inner 0.999 seen
}


@dataclass(frozen=True)
class Parity:
    frames: int
    precision: str
    patches_max_abs: float
    cls_max_abs: float
    cls_cosine: float  # minimum over frames
    score_abs: float  # maximum over frames
    index_overlap: float  # mean over frames
    index_exact: float  # share of frames whose index sets are identical
    inner_cosine: float  # minimum over frames of the inner tokens' mean cosine

    def failures(self, limits: Thresholds) -> list[str]:
        checks = [
            ("patches_max_abs", self.patches_max_abs <= limits.patches_max_abs),
            ("cls_max_abs", self.cls_max_abs <= limits.cls_max_abs),
            ("cls_cosine", self.cls_cosine >= limits.cls_cosine),
            ("score_abs", self.score_abs <= limits.score_abs),
            ("index_overlap", self.index_overlap >= limits.index_overlap),
            ("inner_cosine", self.inner_cosine >= limits.inner_cosine),
        ]
        return [
            f"{name} = {getattr(self, name):.6g} (limit {getattr(limits, name):.6g})"
            for name, ok in checks
            if not ok
        ]

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _cosine(a: F32, b: F32) -> float:
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


def _row_cosine(a: F32, b: F32) -> float:
    """Mean cosine of matching rows of two (N, C) token arrays."""
    dots = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(dots.mean())


def compare(
    model: Path, dinov2_dir: Path, batches: F32, threads: int = 0, head_ref: str = "default"
) -> Parity:
    """Run `batches` (T, 3, S, S), one frame at a time, through the artefact and the reference
    (the torch encoder, `SetsSelector` and `head_ref`, the head the artefact was exported with)."""
    from vau.edge.encoders.cache import carries_head

    manifest = check_artefact(model)
    if not carries_head(model, head_ref):
        raise ExportError(
            f"{model.name} carries another TETG head than {head_ref!r}; pass the one it was "
            "exported with (--head PATH)"
        )
    size = manifest.input_size
    fused = FusedRunner(model, size, threads=threads)
    ref = TorchEncoder(dinov2_dir, size, "fp32", threads)
    sets = SetsSelector(SetsSettings(mode="topk", keep_ratio=manifest.keep_ratio))
    head = load_head(head_ref)
    grid = (size // 14, size // 14)
    p_abs, c_abs, cos, s_abs, overlap, exact, inner = 0.0, 0.0, 1.0, 0.0, [], [], 1.0
    for i, image in enumerate(batches):
        out = fused.step(image[None])
        enc = ref.encode(image[None])
        patches, cls = enc.patches, enc.cls
        chosen = sets.select(Tokens(i, 0.5 * i, 0.0, patches[0], cls[0], grid))
        inner = min(inner, _row_cosine(out.inner, enc.inner[0]))
        score = float(head.score(cls)[0])
        p_abs = max(p_abs, float(np.abs(out.patches - patches[0]).max()))
        c_abs = max(c_abs, float(np.abs(out.cls - cls[0]).max()))
        cos = min(cos, _cosine(out.cls, cls[0]))
        s_abs = max(s_abs, abs(out.score - score))
        a, b = set(out.indices.tolist()), set(chosen.indices.tolist())
        overlap.append(len(a & b) / max(len(b), 1))
        exact.append(a == b)
    fused.close()
    ref.close()
    return Parity(
        frames=len(batches), precision=manifest.precision, patches_max_abs=p_abs,
        cls_max_abs=c_abs, cls_cosine=cos, score_abs=s_abs,
        index_overlap=float(np.mean(overlap)), index_exact=float(np.mean(exact)),
        inner_cosine=inner,
    )  # fmt: skip
