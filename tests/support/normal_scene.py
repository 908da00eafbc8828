"""Hand-made normal frames on a 16 x 16 grid: a textured background with walkers on a path."""

from __future__ import annotations

import numpy as np

from vau.edge.normality.fit import NormalFrame
from vau.edge.types import F32

GRID = (16, 16)
N, C = 256, 32


def scene(seed: int = 0) -> tuple[F32, F32]:
    """(background tokens (N, C), walker token (C,)) of one camera."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, C)).astype(np.float32), rng.standard_normal(C).astype(np.float32)


def frame_tokens(background: F32, walker: F32, t: float, speed: float = 1.0, seed: int = 0) -> F32:
    """The background with one walker on row 8, moving `speed` cells per second, plus noise."""
    rng = np.random.default_rng(seed + int(t * 10))
    x = background + 0.05 * rng.standard_normal(background.shape).astype(np.float32)
    col = int(t * speed) % GRID[1]
    x[8 * GRID[1] + col] = walker + 0.05 * rng.standard_normal(walker.shape).astype(np.float32)
    return x


def normal_frames(seconds: float = 60.0, fps: float = 2.0, seed: int = 0) -> list[NormalFrame]:
    background, walker = scene(seed)
    out, prev = [], None
    for i in range(int(seconds * fps)):
        t = i / fps
        patches = frame_tokens(background, walker, t)
        change = None if prev is None else np.abs(patches - prev).sum(axis=1).astype(np.float32)
        out.append(NormalFrame(t, patches, change, patches.mean(axis=0), 0.05))
        prev = patches
    return out
