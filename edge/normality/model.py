"""The normality model's maths: per-patch anomaly maps and per-frame raw measures.

For a frame with patch tokens F (N, C), change c (N,) (SETS's L1 distance to the previous frame;
None on a keyframe) and class token z (C,):

- appearance (AnomalyDINO, PatchCore): a_i = 1 - max_m cos(G_i, M_m) over the normal memory M
  (M, C) of G, the inner block's tokens (block 10 of 12, through the final layernorm: PatchCore's
  mid-level features; `encoders.base.INNER_FROM_END`), restricted to entries learnt within
  `radius` grid cells of patch i (position-aware; -1 = anywhere); frame value = mean of the top
  10% of a_i (AnomalyDINO takes the top 1%; on video the top 10% measured better: diffuse
  anomalies such as haze or a covered lens spread out);
- motion (per-position change statistics): m_i = (log1p(c_i) - mu_i) / sigma_i, mu and sigma
  learnt per grid position from normal frames (pooled over the 3x3 neighbourhood); frame value =
  mean of the top `tail` m_i. Catches speed and "movement where nothing moves", which no single
  frame shows;
- speed (token flow): each of the top `tail` most changed patches is matched to its most similar
  patch of the previous frame within `FLOW_RADIUS` cells; the frame value is their mean
  displacement in cells. Change magnitude saturates once a walker has left a patch; displacement
  keeps growing with speed, so people suddenly running show here first;
- flow: the frame's pixel speed (`vau.edge.flow`: optical flow between the source's own frames,
  the fastest 1 % of the view, view widths per second); the token grid at 2 fps cannot tell a
  runner from a walker, the source's 10-30 fps can;
- global: g = 1 - max_q cos(z, Z_q) over normal class tokens Z (Q, C): the whole view changed
  (camera moved, covered, defocused, lights); measured and reported, not fused (`UNFUSED`);
- static (dual backgrounds, `vau.edge.stillness`): a pixel of the frame's 112 px colour copy is
  static foreground when it differs from the camera's learnt background B (the median of its
  learning footage) by more than `PIXEL_DELTA` levels in any colour channel, after taking out
  the view's overall shift (each channel's median difference: the light changed), and stood
  still over the last second (judged on its grey levels);
  s_i = the share of patch i's pixels that are; frame value = mean of the top 10% of s_i.
  Something that arrived and stopped (a bag left, a person lying down, a cover) shows here, where
  a walker does not (never still) and neither does the scene itself (it is B).
- settled: the static part counting only the still pixels with nothing that moved within
  `SETTLE_PX` pixels of them (the still mask eroded): a thing at rest with nothing moving
  around it. A person standing among walkers, or one walking slowly in plain clothes (the
  inside of a uniform shape does not change from frame to frame), has moving pixels next to
  their still ones; a bag on the ground, a person lying, a tag on a wall have none. Its normal
  tail is far lower than the static part's, so a small thing at rest clears it.
- lingering: the settled part with a looser rest: a pixel counts when it matches the median of
  itself half a second and a second before (`vau.edge.stillness.lingering`) instead of every
  source frame of the last second. A walker is never that median; a thing at rest that
  twitches, flickers or drifts slowly (a person lying, a flame, a haze) is, where the strict
  test loses every pixel along its moving edges. Counted as it is (no power).

Each frame value is calibrated (`calibration`) into [0, 1]; the normality score is their maximum
(`combine`), the static and settled parts counted as s ** POWERS[part]: their normal frames sit
far lower than the token parts' do, so the same calibrated level is stronger evidence from them;
the global part is left out of it (`UNFUSED`): the view changes it is for raise the appearance
and static parts as much, and its normal noise only lifted the maximum on normal frames.
The anomaly map is the largest of each patch's calibrated appearance and motion units and its
units of every part at rest (static, settled, lingering: the share of its pixels at rest); `hot`
is its top patches that lie beyond the edge of normal. A thing at rest that only the settled or
lingering part sees (a haze, a tag on a wall) is then where the cloud names the place, not a
walker the token parts find a little unusual (docs/explain.md, "Where from the parts at rest").
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vau.common.regions import PIXEL_DELTA
from vau.edge.normality.calibration import Calibration
from vau.edge.normality.search import MemorySearch, build_search
from vau.edge.types import F32, I64, U8, StillView

PARTS = ("appearance", "motion", "speed", "flow", "global", "static", "settled", "lingering")
FLOW_RADIUS = 3  # grid cells a patch may have moved between two frames
TAIL_SHARE = 0.1  # frame value = mean of the top 10% of patches (measured: docs/normality.md)
STATIC_POWER = 0.7  # the static part's weight in the maximum (measured: docs/normality.md)
SETTLED_POWER = 0.5  # the settled part's (measured: docs/normality.md, "The static part in colour")
POWERS = {"static": STATIC_POWER, "settled": SETTLED_POWER}
SETTLE_PX = 2  # grey-copy pixels (of 112) around a moving one that are not settled (measured)
# Measured and reported (components, JSONL) but not in the maximum: on the tuning sets the class
# token's distance was the largest part on 11 % of the frames outside anomalies and 4 % inside
# them (81 % of the frames it decided were normal ones), and the view changes it is for raise the
# appearance and static parts as much; leaving it out lifted every tuning set's pooled AUC on
# tuned and probe kinds alike with no new false event (docs/normality.md, "Without the global
# part in the fused score").
UNFUSED = frozenset({"global"})
REST_PARTS = ("static", "settled", "lingering")  # the parts at rest, in `static_maps`' order


def normalise_rows(x: npt.NDArray[np.floating[Any]]) -> F32:
    """Rows (float32, or the float16 kept while learning) scaled to unit L2 norm in float32, so
    cosine similarity becomes a dot product."""
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    out: F32 = x / np.maximum(n, 1e-12)
    return out


def combine(parts: Mapping[str, float]) -> float:
    """A frame's score from its calibrated parts (and the head's, when fused): the largest, the
    static and settled parts counted as s ** POWERS[part], the parts in UNFUSED left out (0 when
    none is left). On the tuning sets' normal clips the static part's 90th percentile is 0.16
    where the appearance part's is 0.44: things at rest are rare in a camera's normal and it sees
    them at low levels (a small tag sprayed on a wall, a bag), where the token parts' normal noise
    decides a plain maximum."""
    return max(
        (v ** POWERS.get(k, 1.0) for k, v in parts.items() if k not in UNFUSED),
        default=0.0,
    )


def tail_mean(values: F32, k: int) -> float:
    """Mean of the k largest values (the 'tail value at risk')."""
    k = min(k, values.shape[0])
    return float(np.partition(values, -k)[-k:].mean())


def tail_size(patches: int) -> int:
    return max(3, round(TAIL_SHARE * patches))


def neighbourhood_mask(grid: tuple[int, int], positions: I64, radius: int) -> F32 | None:
    """(N, M) additive mask: 0 where memory entry m lies within `radius` cells of patch i, else
    -inf-like (-4, below any cosine); None for radius < 0 (anywhere)."""
    rows, cols = grid
    n = rows * cols
    if radius < 0:
        return None
    pr, pc = np.divmod(np.arange(n), cols)
    mr, mc = np.divmod(positions.astype(np.int64), cols)
    near = (np.abs(pr[:, None] - mr[None, :]) <= radius) & (
        np.abs(pc[:, None] - mc[None, :]) <= radius
    )
    return np.where(near, 0.0, -4.0).astype(np.float32)


@functools.cache
def _cell_distances(grid: tuple[int, int]) -> tuple[F32, npt.NDArray[np.bool_]]:
    rows, cols = grid
    r, c = np.divmod(np.arange(rows * cols), cols)
    dr, dc = r[:, None] - r[None, :], c[:, None] - c[None, :]
    near = (np.abs(dr) <= FLOW_RADIUS) & (np.abs(dc) <= FLOW_RADIUS)
    return np.hypot(dr, dc).astype(np.float32), near


def flow_speed(patches: F32, previous: F32, change: F32, grid: tuple[int, int]) -> float:
    """Mean displacement (cells) of the most changed patches to their best match a frame ago."""
    dist, near = _cell_distances(grid)
    k = tail_size(change.shape[0])
    top = np.argpartition(-change, k - 1)[:k]
    sims = normalise_rows(patches[top]) @ normalise_rows(previous).T  # (k, N)
    sims[~near[top]] = -4.0
    return float(dist[top, sims.argmax(axis=1)].mean())


def static_map(view: StillView, background: F32, grid: tuple[int, int], settle: int = 0) -> F32:
    """(N,) share of each patch's pixels that are `foreground` and stood still over the last
    second; with `settle` > 0, only those with no pixel that moved within `settle` pixels (the
    settled part)."""
    return static_maps(view, background, grid, ((view.still, settle),))[0]


def background_copy(view: StillView, background: F32) -> U8 | None:
    """The view's copy a background of this shape is made of: (S, S, 3) colour or (S, S) grey;
    None when the view has none that fits."""
    copy = view.colour if background.ndim == 3 else view.grey
    return copy if copy is not None and copy.shape == background.shape else None


def foreground(view: StillView, background: F32) -> npt.NDArray[np.bool_]:
    """(S, S) pixels off the background by more than PIXEL_DELTA past the view's overall shift
    (the median difference, per channel): in any colour channel against a colour background (a
    thing that differs from what it covers in hue more than in brightness: a red tag on a grey
    wall), in grey levels against a grey one (a model learnt before colour) or when the view
    has no colour copy."""
    copy = background_copy(view, background)
    if copy is None:  # a colour background and a grey-only view: compare grey levels
        background = np.asarray(cv2.cvtColor(background, cv2.COLOR_BGR2GRAY), np.float32)
        copy = view.grey
    diff = copy.astype(np.float32) - background
    # channel by channel: NumPy's maximum over a 3-wide last axis is slow (0.4 ms a frame)
    offs = [np.abs(plane - np.median(plane)) for plane in cv2.split(diff)]
    return np.asarray(functools.reduce(np.maximum, offs) > PIXEL_DELTA)


def static_maps(
    view: StillView,
    background: F32,
    grid: tuple[int, int],
    rests: Sequence[tuple[npt.NDArray[np.bool_], int]],
) -> list[F32]:
    """(N,) share of each patch's pixels that are `foreground` and at rest, for each (mask of
    pixels at rest, settle) of `rests` (`static_map`), the foreground found once."""
    fg = foreground(view, background)
    rows, cols = grid
    out = []
    for still, settle in rests:
        if settle > 0:
            kernel = np.ones((2 * settle + 1, 2 * settle + 1), np.uint8)
            still = cv2.erode(still.astype(np.uint8), kernel).astype(bool)
        static = (fg & still).astype(np.float32)
        cells = cv2.resize(static, (cols, rows), interpolation=cv2.INTER_AREA)
        out.append(np.asarray(cells, np.float32).reshape(-1))
    return out


@dataclass(frozen=True, eq=False)
class FrameMaps:
    """What the model sees in one frame, before calibration."""

    appearance: F32  # (N,) distance to the nearest normal patch, in [0, 2]
    motion: F32 | None  # (N,) change z-score per position; None on a keyframe
    global_: float  # distance of the class token to the nearest normal one
    raw: dict[str, float]  # frame values of the parts present (PARTS)
    rest: dict[str, F32] = field(default_factory=dict)  # (N,) share of each patch's pixels at
    # rest, per part at rest measured (REST_PARTS); empty: not measured


@dataclass(frozen=True, eq=False)
class Scored:
    """A frame after calibration."""

    parts: dict[str, float]  # calibrated frame score of each part present, in [0, 1]
    score: float  # the parts combined (`combine`)
    anomaly_map: F32  # (N,) per-patch units: > 1 is beyond the edge of normal
    hot: tuple[int, ...]  # most anomalous patches beyond the edge of normal, most anomalous first


@dataclass(frozen=True, eq=False)
class NormalityModel:
    """Learnt arrays and calibration of one camera (immutable; `online` swaps whole models)."""

    grid: tuple[int, int]  # (rows, cols) of the patch grid
    memory: F32  # (M, C) unit-norm normal patch tokens
    positions: I64  # (M,) grid index each memory entry was learnt at
    motion_mu: F32  # (N,) mean of log1p(change) per position
    motion_sigma: F32  # (N,) its standard deviation (floored)
    cls_memory: F32  # (Q, C) unit-norm normal class tokens
    radius: int  # appearance neighbourhood in grid cells; -1 = anywhere
    calibration: dict[str, Calibration]  # frame value -> [0, 1], per part (and "head")
    patch_calibration: dict[str, Calibration]  # per-patch units ("appearance", "motion" and the
    # REST_PARTS; a model learnt before the settled and lingering parts has only "static" of them)
    background: F32 | None = None  # (S, S, 3) median colour (or, learnt before, (S, S) grey) of the
    # learning footage; None: none
    device: str = "cpu"  # where the memory search runs ("cpu" NumPy, "cuda" torch)
    mask: F32 | None = field(init=False, repr=False)  # (N, M) neighbourhood_mask; None: anywhere
    search: MemorySearch = field(init=False, repr=False)

    def __post_init__(self) -> None:
        mask = neighbourhood_mask(self.grid, self.positions, self.radius)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "search", build_search(self.memory, mask, self.device))

    @property
    def patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def nbytes(self) -> int:
        arrays = (self.memory, self.positions, self.motion_mu, self.motion_sigma, self.cls_memory)
        extra = (self.mask, self.background)
        return sum(a.nbytes for a in arrays) + sum(0 if a is None else a.nbytes for a in extra)

    def maps(
        self,
        patches: F32,
        change: F32 | None,
        cls: F32,
        previous: F32 | None = None,
        flow: float | None = None,
        still: StillView | None = None,
        looks: F32 | None = None,
    ) -> FrameMaps:
        """(N, C) patches, (N,) change or None, (C,) class token, (N, C) the previous frame's
        patches when there is one, the frame's pixel speed when measured, its grey copy with
        still pixels when measured, (N, C) the inner block's tokens (appearance; None: the
        patches) -> uncalibrated maps."""
        tokens = patches if looks is None else looks
        appearance = (1.0 - self.search.nearest(normalise_rows(tokens))).astype(np.float32)
        k = tail_size(self.patches)
        raw = {"appearance": tail_mean(appearance, k)}
        motion = None
        if change is not None:
            motion = ((np.log1p(change) - self.motion_mu) / self.motion_sigma).astype(np.float32)
            raw["motion"] = tail_mean(motion, k)
            if previous is not None:
                raw["speed"] = flow_speed(patches, previous, change, self.grid)
        if flow is not None:
            raw["flow"] = flow
        z = normalise_rows(cls[None, :])[0]
        global_ = float(1.0 - (self.cls_memory @ z).max())
        raw["global"] = global_
        rest: dict[str, F32] = {}
        bg = self.background
        if still is not None and bg is not None and still.grey.shape == bg.shape[:2]:
            rests = [(still.still, 0), (still.still, SETTLE_PX)]
            if still.lingering is not None:
                rests.append((still.lingering, SETTLE_PX))
            rest = dict(zip(REST_PARTS, static_maps(still, bg, self.grid, rests), strict=False))
            raw.update((part, tail_mean(shares, k)) for part, shares in rest.items())
        return FrameMaps(appearance, motion, global_, raw, rest)

    def score(
        self,
        patches: F32,
        change: F32 | None,
        cls: F32,
        hot_patches: int,
        previous: F32 | None = None,
        flow: float | None = None,
        still: StillView | None = None,
        looks: F32 | None = None,
    ) -> Scored:
        maps = self.maps(patches, change, cls, previous, flow, still, looks)
        return self.calibrate(maps, hot_patches)

    def calibrate(self, maps: FrameMaps, hot_patches: int) -> Scored:
        parts = {
            k: float(self.calibration[k].score(v))
            for k, v in maps.raw.items()
            if k in self.calibration  # a part the model was not calibrated for stays out
        }
        amap = self.patch_calibration["appearance"].units(maps.appearance)
        if maps.motion is not None:
            amap = np.maximum(amap, self.patch_calibration["motion"].units(maps.motion))
        for part, shares in maps.rest.items():
            if part in self.patch_calibration:  # a model learnt before the part leaves it out
                amap = np.maximum(amap, self.patch_calibration[part].units(shares))
        return Scored(parts, combine(parts), amap, hot_of(amap, hot_patches))


def hot_of(amap: F32, most: int) -> tuple[int, ...]:
    """Up to `most` patches whose map value exceeds 1 (beyond normal), most anomalous first."""
    if most <= 0:
        return ()
    order = np.argsort(-amap, kind="stable")[:most]
    return tuple(int(i) for i in order if amap[i] > 1.0)
