"""Hand-made normal frames on a 16 x 16 grid: a textured background with walkers on a path."""

from __future__ import annotations

import numpy as np

from vau.edge.normality.fit import NormalFrame
from vau.edge.types import F32, U8, StillView

GRID = (16, 16)
N, C = 256, 32
SIDE = 112  # the grey copy's side (`vau.edge.flow.SIZE`): 7 x 7 pixels per cell
CELL = SIDE // GRID[0]


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


def grey_scene(seed: int = 0) -> U8:
    """The view's 112 x 112 grey copy: mid-grey texture."""
    rng = np.random.default_rng(seed + 1000)
    return rng.integers(60, 200, (SIDE, SIDE)).astype(np.uint8)


def cell_box(cell: int) -> tuple[slice, slice]:
    r, c = divmod(cell, GRID[1])
    return slice(r * CELL, (r + 1) * CELL), slice(c * CELL, (c + 1) * CELL)


def coloured(grey: U8) -> U8:
    """A grey copy as the colour copy of a colourless view (every channel the grey level)."""
    return np.repeat(grey[:, :, None], 3, axis=2)


def grey_view(ground: U8, t: float, speed: float = 1.0, colour: bool = True) -> StillView:
    """The copies with the walker (a dark cell on row 8, never still nor lingering) at time t;
    the colour copy (as `vau.edge.stillness` gives it) unless `colour` is False (a grey-only
    view)."""
    grey, still = ground.copy(), np.ones(ground.shape, bool)
    box = cell_box(8 * GRID[1] + int(t * speed) % GRID[1])
    grey[box], still[box] = 20, False
    return StillView(grey, still, coloured(grey) if colour else None, still.copy())


def normal_frames(
    seconds: float = 60.0,
    fps: float = 2.0,
    seed: int = 0,
    pixels: bool = False,
    colour: bool = True,
) -> list[NormalFrame]:
    """The scene's frames; with `pixels`, each carries its copies and still pixels (`colour`
    False: the grey copy only, as before the static part compared colours)."""
    background, walker = scene(seed)
    ground = grey_scene(seed)
    out: list[NormalFrame] = []
    prev: F32 | None = None
    for i in range(int(seconds * fps)):
        t = i / fps
        patches = frame_tokens(background, walker, t)
        change: F32 | None = None
        if prev is not None:
            change = np.abs(patches - prev).sum(axis=1).astype(np.float32)
        view = grey_view(ground, t, colour=colour) if pixels else None
        out.append(NormalFrame(t, patches, change, patches.mean(axis=0), 0.05, still=view))
        prev = patches
    return out
