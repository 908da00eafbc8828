"""Learn a normality model from a camera's normal frames.

The memory is a greedy k-centre coreset (PatchCore) of every frame's patch tokens, searched in a
random 128-d projection so that learning 10 minutes of footage takes seconds; motion statistics
and class tokens come from every frame too, and so does the background the static part compares
with (the per-pixel median of the frames' colour copies).

Calibration must see normal frames as the camera will: frames whose exact configuration (who is
where) the memory has never seen. A held-out block between memory blocks does not: its frames have
near-duplicates a second away in the memory, and on real footage its distances came out at half
of what later footage of the same camera gave (docs/normality.md). So `CAL_BLOCKS` blocks of
`BLOCK_S` seconds spread over the footage are each measured against a model built like the final
one (same coreset size, motion statistics, class tokens) from the frames more than `GAP_S` away
from the block: the block's moment is new to it, as the next minute will be.

Footage may come in stretches (several files, or `learn`'s bursts over long footage): a frame
after a gap of more than `RUN_GAP` frame intervals has no change (the change across a gap is not
the camera's frame-to-frame motion), and with at least `CAL_BLOCKS` stretches the calibration
blocks are the first `BLOCK_S` seconds of stretches spread over the footage, so that no block
falls into a gap.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vau.edge.normality.calibration import MARGIN, MARGINS, Calibration
from vau.edge.normality.model import NormalityModel, normalise_rows
from vau.edge.types import F32, I64, StillView

if TYPE_CHECKING:
    from vau.edge.analysers import Analysis

log = logging.getLogger(__name__)

Floats = npt.NDArray[np.floating[Any]]

BLOCK_S = 5.0  # calibration blocks are this long
GAP_S = 5.0  # a calibration block never meets memory learnt this close to it in time
CAL_BLOCKS = 4  # blocks calibration measures, evenly spread over the footage
POOL_PER_ENTRY = 16  # coreset candidates per memory entry (a uniform subsample)
PROJECTION = 128  # dimensions of the coreset's distance search
MAX_CLS = 1024  # class tokens kept
SIGMA_FLOOR = 0.05  # motion: no position is more certain than this (log units)
RUN_GAP = 2.0  # a gap of more than this many (median) frame intervals starts a new stretch
MIN_BACKGROUND = 6  # grey copies the background's median needs


@dataclass(frozen=True, eq=False)
class NormalFrame:
    """One normal frame as the model stage saw it."""

    t: float  # seconds since its stream started
    patches: Floats  # (N, C); float16 while kept for learning, float32 when fitted
    change: F32 | None  # (N,) L1 change since the previous frame; None on a keyframe
    cls: F32  # (C,)
    head: float | None = None  # the TETG head's score, for its calibration
    flow: float | None = None  # pixel speed (`Frame.flow`), views/s
    still: StillView | None = None  # copies and still pixels (`Frame.still`)
    looks: Floats | None = None  # (N, C) the inner block's tokens (appearance); None: `patches`

    @property
    def appearance(self) -> Floats:
        """The tokens the appearance memory holds and is searched with."""
        return self.patches if self.looks is None else self.looks

    @classmethod
    def kept(cls, a: Analysis, t: float) -> NormalFrame:
        """What learning keeps of a frame the model stage saw (tokens as float16: half the memory;
        the model reads them through `normalise_rows`, in float32)."""
        looks = None if a.inner is None else a.inner.astype(np.float16)
        patches = a.patches.astype(np.float16)
        return cls(t, patches, a.change, a.cls, a.score, a.flow, a.still, looks)


class LearnError(ValueError):
    """The frames cannot make a model (too few, wrong shapes); the message says what to do."""


def coreset(candidates: F32, size: int, seed: int = 0) -> I64:
    """Greedy k-centre selection (PatchCore) of `size` rows, in a random low-d projection."""
    n = candidates.shape[0]
    if n <= size:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((candidates.shape[1], PROJECTION)).astype(np.float32)
    x = candidates @ proj / np.sqrt(PROJECTION)  # (n, P)
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2: one matrix-vector product per pick, in place (18x
    # faster on this CPU than forming x - c; the same picks)
    sq = np.einsum("ij,ij->i", x, x)
    chosen = np.empty(size, np.int64)
    chosen[0] = int(rng.integers(n))
    nearest = sq - 2.0 * (x @ x[chosen[0]]) + sq[chosen[0]]
    for i in range(1, size):
        c = int(np.argmax(nearest))
        chosen[i] = c
        d = x @ x[c]
        d *= -2.0
        d += sq
        d += sq[c]
        np.minimum(nearest, d, out=nearest)
    return np.sort(chosen)


def build_memory(
    frames: Sequence[NormalFrame], size: int, seed: int = 0, pool_per_entry: int = POOL_PER_ENTRY
) -> tuple[F32, I64]:
    """(M, C) unit-norm coreset of the frames' appearance tokens and the grid index of each."""
    rng = np.random.default_rng(seed)
    n = frames[0].patches.shape[0]
    total = n * len(frames)
    take = min(total, pool_per_entry * size)
    pick = np.sort(rng.choice(total, size=take, replace=False))
    frame_of, pos = np.divmod(pick, n)
    pool = np.stack([frames[f].appearance[p] for f, p in zip(frame_of, pos, strict=True)])
    pool = normalise_rows(pool.astype(np.float32))
    chosen = coreset(pool, size, seed)
    return np.ascontiguousarray(pool[chosen]), pos[chosen].astype(np.int64)


def motion_stats(frames: Sequence[NormalFrame], grid: tuple[int, int]) -> tuple[F32, F32]:
    """Per position mean and std of log1p(change), pooled over each 3x3 neighbourhood."""
    changes = [f.change for f in frames if f.change is not None]
    rows, cols = grid
    if len(changes) < 2:
        raise LearnError(
            "motion statistics need at least two consecutive frames; give more footage"
        )
    logs = np.log1p(np.stack(changes)).reshape(len(changes), rows, cols)  # (T, R, Cc)
    padded = np.pad(logs, ((0, 0), (1, 1), (1, 1)), mode="edge")
    shifted = np.stack(
        [padded[:, dy : dy + rows, dx : dx + cols] for dy in range(3) for dx in range(3)]
    )
    mu = shifted.mean(axis=(0, 1)).reshape(-1).astype(np.float32)
    sigma = shifted.std(axis=(0, 1)).reshape(-1)
    sigma = np.maximum(sigma, max(SIGMA_FLOOR, 0.25 * float(np.median(sigma))))
    return mu, sigma.astype(np.float32)


def background(frames: Sequence[NormalFrame]) -> F32 | None:
    """(S, S, 3) per-pixel median of the frames' colour copies ((S, S) of their grey copies when
    any lacks colour; people passing through do not reach a median); None with fewer than
    MIN_BACKGROUND copies or copies of different sizes."""
    views = [f.still for f in frames if f.still is not None]
    colours = [v.colour for v in views if v.colour is not None]
    copies = colours if len(colours) == len(views) else [v.grey for v in views]
    if len(copies) < MIN_BACKGROUND or len({c.shape for c in copies}) != 1:
        return None
    out: F32 = np.median(np.stack(copies), axis=0).astype(np.float32)
    return out


def fit(
    frames: Sequence[NormalFrame],
    grid: tuple[int, int],
    memory_patches: int,
    radius: int,
    seed: int = 0,
) -> NormalityModel:
    """A calibrated model from normal frames in stream order (see the module docstring)."""
    if len(frames) < 6:
        raise LearnError(f"{len(frames)} frames are too few to learn what is normal; give more")
    frames = _cut_at_gaps(frames)
    model = _uncalibrated(frames, grid, memory_patches, radius, seed)
    return calibrate(model, frames, seed)


def _uncalibrated(
    frames: Sequence[NormalFrame],
    grid: tuple[int, int],
    size: int,
    radius: int,
    seed: int,
    pool_per_entry: int = POOL_PER_ENTRY,
) -> NormalityModel:
    mem, pos = build_memory(frames, size, seed, pool_per_entry)
    mu, sigma = motion_stats(frames, grid)
    cls = normalise_rows(np.stack([f.cls for f in frames]).astype(np.float32))
    if cls.shape[0] > MAX_CLS:
        cls = cls[np.linspace(0, cls.shape[0] - 1, MAX_CLS).astype(np.int64)]
    cls = np.ascontiguousarray(cls)
    return NormalityModel(grid, mem, pos, mu, sigma, cls, radius, {}, {}, background(frames))


def stretches(frames: Sequence[NormalFrame]) -> list[tuple[int, int]]:
    """[first, last + 1) frame index of each stretch of footage with no gap longer than RUN_GAP
    median frame intervals (frames in stream order)."""
    if len(frames) < 2:
        return [(0, len(frames))]
    gaps = np.diff([f.t for f in frames])
    cuts = np.flatnonzero(gaps > RUN_GAP * float(np.median(gaps))) + 1
    bounds = [0, *cuts.tolist(), len(frames)]
    return list(itertools.pairwise(bounds))


def _cut_at_gaps(frames: Sequence[NormalFrame]) -> list[NormalFrame]:
    """The frames, each stretch's first without a change (the change across a gap is not
    frame-to-frame motion; the pipeline makes one only for gaps over `sets.max_gap_s`)."""
    firsts = {i for i, _ in stretches(frames)}
    return [replace(f, change=None) if i in firsts else f for i, f in enumerate(frames)]


def calibration_blocks(frames: Sequence[NormalFrame]) -> list[tuple[float, float]]:
    """[start, end) of the blocks calibration measures, evenly spread over the footage: with
    CAL_BLOCKS stretches or more, the first BLOCK_S seconds of stretches spread over them."""
    runs = stretches(frames)
    if len(runs) >= CAL_BLOCKS:
        picks = [runs[(2 * k + 1) * len(runs) // (2 * CAL_BLOCKS)] for k in range(CAL_BLOCKS)]
        return [(frames[i].t, frames[i].t + BLOCK_S) for i, _ in picks]
    t0, t1 = frames[0].t, frames[-1].t
    centres = [t0 + (t1 - t0) * (2 * k + 1) / (2 * CAL_BLOCKS) for k in range(CAL_BLOCKS)]
    return [(c - BLOCK_S / 2, c + BLOCK_S / 2) for c in centres]


def calibrate(
    model: NormalityModel, frames: Sequence[NormalFrame], seed: int = 0
) -> NormalityModel:
    """`model` with calibration measured block by block against models that never saw the block
    or anything within GAP_S of it (see the module docstring)."""
    previous = {id(f): p.patches for p, f in itertools.pairwise(frames) if f.change is not None}
    values: dict[str, list[float]] = {}
    patch_values: dict[str, list[F32]] = {"appearance": [], "motion": []}
    for start, end in calibration_blocks(frames):
        block = [f for f in frames if start <= f.t < end]
        rest = [f for f in frames if f.t < start - GAP_S or f.t >= end + GAP_S]
        if not block or sum(f.change is not None for f in rest) < 6:
            continue  # footage too short around this block to leave it out
        size = int(model.memory.shape[0])
        draft = _uncalibrated(rest, model.grid, size, model.radius, seed, POOL_PER_ENTRY // 2)
        for f in block:
            maps = draft.maps(
                f.patches, f.change, f.cls, previous.get(id(f)), f.flow, f.still, f.looks
            )
            for k, v in maps.raw.items():
                values.setdefault(k, []).append(v)
            patch_values["appearance"].append(maps.appearance)
            if maps.motion is not None:
                patch_values["motion"].append(maps.motion)
            for part, shares in maps.rest.items():
                patch_values.setdefault(part, []).append(shares)
            if f.head is not None:
                values.setdefault("head", []).append(head_logit(f.head))
    if not patch_values["motion"]:
        raise LearnError(
            f"calibration needs {GAP_S:g} s of other normal footage on either side of each of "
            f"its {BLOCK_S:g} s blocks; give more footage (at least 30 s)"
        )
    calib = {k: Calibration.of(v, MARGINS.get(k, MARGIN)) for k, v in values.items()}
    patch_calib = {
        k: patch_calibration(np.concatenate(v), PATCH_FLOORS.get(k, 0.0))
        for k, v in patch_values.items()
        if v
    }
    log.info(
        "calibrated on %d normal frames: %s",
        len(patch_values["appearance"]),
        {k: (round(c.median, 4), round(c.edge, 4)) for k, c in calib.items()},
    )
    return replace(model, calibration=calib, patch_calibration=patch_calib)


PATCH_QUANTILE = 0.999  # a patch is "hot" beyond the 1-in-1000 normal patch


# A settled or lingering patch's edge of normal is at least this share of its pixels past the
# median (a camera whose learning footage had nothing at rest has a 0.999 quantile of 0, and every
# pixel at rest would be past it); set before measuring (10 % and 20 % measured no better)
PATCH_FLOORS = {"settled": 0.05, "lingering": 0.05}


def patch_calibration(values: F32, floor: float = 0.0) -> Calibration:
    """Per-patch units: the median normal patch at 0, PATCH_QUANTILE's at 1 (the edge at least
    `floor` past the median)."""
    v = values[np.isfinite(values)]
    median = float(np.median(v))
    edge = float(np.quantile(v, PATCH_QUANTILE))
    return Calibration(median, max(edge, median + floor, median + 1e-6))


def head_logit(p: float) -> float:
    """The head's probability as a logit, so its calibration is not squashed at 0 or 1."""
    q = min(max(p, 1e-7), 1 - 1e-7)
    return float(np.log(q / (1 - q)))
