"""What and where: deterministic facts about an event, from the frames of its shipped window.

Pure functions, no I/O. A frame's *anomalous cells* are its `hot` patches (the edge normality
model's most anomalous ones) when any frame of the event carries them, else its kept patches (what
SETS kept as changed). On a rows x cols grid, a cell's position is (x, y) = ((c + 0.5) / cols,
(r + 0.5) / rows) in view widths / heights, (0, 0) the upper-left corner.

- carrying frames: the frames with anomalous cells whose score is at or past CARRY_LEVEL (the
  events' entry level, `events.enter`, not tuned), all frames when none is. Where and which way
  are read from them: the window's quieter frames at either end hold mostly the camera's normal
  things that happen to sit past the edge of normal (a walker in an unusual pose), not the thing
  that raised the event.
- where: share per named 3x3 region, over the carrying frames, of each frame's *anomalous
  region*: with hot patches, the connected group (8-neighbours) of its cells that holds its most
  anomalous patch (`hot[0]`); the frame's other groups past the edge of normal are mostly the
  camera's ordinary things that happen to look unusual (a walker in a pose the learning minutes
  lacked), and counting them pulled the named place towards wherever people walk. Largest
  first. With kept patches only (no order of anomaly), or when the view changed (no one region
  is the anomaly), all of them count. The share of the view =
  |union of the anomalous cells| / (rows * cols), over all frames (every group).
- movement: every connected group of anomalous cells (8-neighbours) is followed through the
  carrying frames, oldest first. A track that has moved (two frames or more) expects its region
  to have gone on at its velocity (its last two centres) and takes the nearest group within
  GATE + FOLLOW_SPEED * dt views of there; then any track still without a group takes the
  nearest left within GATE + TRACK_SPEED * dt of its last centre; a group left over starts a
  track (each track takes at most one group a frame, nearest pairs first). A car crossing in
  three seconds jumps further between two shipped frames than a person standing beside its last
  place, who would otherwise take its track over; a region going back and forth stays one
  track. The anomalous region is the heaviest track (the most cells over the event): a walker
  the normality model also finds unusual makes a lighter track beside it. d = the displacement,
  first frame to last, of the least-squares line through its centres over time, each frame
  weighted by its cells (the group's outline jitters as hot cells come and go; one frame at
  either end no longer decides the direction). `none` when |d| < MOVE_MIN or
  the view changed; `right`/`left` when |dx| >= DOMINANT * |dy|, `down`/`up` when |dy| >=
  DOMINANT * |dx|, else `mixed`; also `mixed` when the track's length is more than WANDER times
  |d| (back and forth). speed = |d| / (t_last - t_first), views per second.
- view_change: the mean `pixel_change` of the frames that carry it (the share of the view's pixels
  off the camera's recent background, `vau.edge.view_change`) is >= PIXEL_VIEW_SHARE (a mean, as
  the synthesiser's truth takes one); or the mean `detail` (the view's detail over its
  background's, contrast-normalised) of the frames that carried the event is <= VIEW_DETAIL:
  defocused or covered, though a plain wall or sky did not change enough pixels (the frames after
  the event are left out: a sharp view again has more detail than the background that took in
  the blur; while it lasts, that background takes in part of it, so the edge's figure sits above
  the truth's `DETAIL_LOST`); or, with hot patches that do not spread (`growth`: a haze
  spreading over the view is a thing, a camera knocked or covered changes the view at once), at
  least VIEW_FRAMES of the frames that have any have them cover >= VIEW_SHARE of the view (the
  edge reports every patch past the edge of normal, up to `normality.hot_patches`). The pixels
  see a lighting failure that the tokens shrug off; the hot patches see a defocus that a 112 px
  grey copy hardly does. Kept patches alone never say it: SETS keeps a fixed share of every
  frame.
- light: with a view change, `darker` (or `brighter`) when the mean `brightness` of the frames
  that carry it (the view's mean grey level minus its recent background's, / 255) is at most
  -LIGHT_SHIFT (at least LIGHT_SHIFT): the whole view moved one way by more than the per-pixel
  change that counts a pixel as changed, as failing light or a cover does; a camera knocked
  aside or defocused changes the view with little net shift (None).
- onset: `sudden` when the first frame at >= RISE * peak comes <= SUDDEN_S after the event start
  (or the event's peak time when no shipped frame reaches it), else `gradual`.
- growth: a frame's extent = the share of the view its cells' bounding box covers; `spreading`
  when the newer half's mean extent is >= GROW times the older half's and >= GROW_MIN more,
  `shrinking` the other way round, `steady` otherwise; `unknown` with fewer than 2 frames.
- earlier: the newest earlier event of the camera whose `where` shares a region with this one.
- faster: at least FAST_FRAMES of the frames that carry the edge's `flow` part (the pixel speed
  between source frames, calibrated on the camera's normal footage) have it at FAST_LEVEL or
  more: things in view moved faster than usual for this camera. FAST_LEVEL is the events' entry
  level (`events.enter`), chosen before any measurement, not tuned.
- stayed: the same rule on the edge's `static` part (pixels off the camera's learnt background
  that stood still for a second, `vau.edge.stillness`), without a view change: something new
  came to rest in view and stayed (a thing left behind, a person lying down).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vau.common.regions import (
    MOVE_MIN,
    PIXEL_DELTA,
    VIEW_CHANGE_SHARE,
    Movement,
    direction,
    region_name,
)

Onset = Literal["sudden", "gradual"]
Growth = Literal["spreading", "shrinking", "steady", "unknown"]
Light = Literal["darker", "brighter"]

WANDER = 3.0  # track length / net displacement beyond which the movement is `mixed`
GATE = 0.1  # views a tracked region may jump between two frames,
TRACK_SPEED = 0.5  # plus this many views per second between them (a person running across)
FOLLOW_SPEED = 0.25  # views per second a moving track may stray from where its velocity leads
VIEW_SHARE = 0.4  # share of the view past the edge of normal in a whole-view change,
VIEW_FRAMES = 1 / 3  # in at least this share of the frames (measured: docs/explain.md)
PIXEL_VIEW_SHARE = VIEW_CHANGE_SHARE  # mean share of the pixels off the background: most of the
# view, as the synthesiser's truth counts a view change (`vau.common.regions`), not tuned
LIGHT_SHIFT = PIXEL_DELTA / 255  # mean brightness shift of a view change that is the light (or a
# cover): the per-pixel change the view-change rule counts with, over the whole view; not tuned
RISE = 0.8  # share of the peak the score must reach for the onset
SUDDEN_S = 1.0  # seconds from the start within which a sudden onset reaches it
GROW = 1.5  # extent ratio newer / older half for spreading (older / newer for shrinking)
GROW_MIN = 0.05  # and the extent must change by at least this share of the view
ENTRY_LEVEL = 0.6  # the events' entry level (`events.enter`'s default); not tuned
FAST_LEVEL = ENTRY_LEVEL  # calibrated `flow` part clearly past normal,
FAST_FRAMES = 1 / 3  # in at least this share of the frames that carry it
CARRY_LEVEL = ENTRY_LEVEL  # frames at or past it carried the event
# the detail the frames that carried an event kept, at or under which the view lost its detail:
# looser than the synthesiser's truth (`DETAIL_LOST`, the rendered frame against its source),
# as the edge measures against a background that takes in part of the blur while it lasts; on
# the tuning sets a defocused tamper kept 0.71-0.86, no other kind 0.85 or less (docs/explain.md,
# "A defocus measured against the background")
VIEW_DETAIL = 0.8


@dataclass(frozen=True, slots=True)
class FrameEvidence:
    """One shipped frame of an event's window, as the cloud stores it."""

    t: float  # seconds since stream start
    score: float  # smoothed anomaly score
    indices: tuple[int, ...]  # kept (changed) patch indices on the grid
    grid: tuple[int, int]  # (rows, cols)
    hot: tuple[int, ...] = ()  # the edge's most anomalous patches, most anomalous first; () = none
    components: tuple[tuple[str, float], ...] = ()  # calibrated normality parts; () = none
    pixel_change: float | None = None  # share of the view off its background; None = unmeasured
    brightness: float | None = None  # mean grey level minus the background's, / 255; None = same
    detail: float | None = None  # the view's detail over its background's; None = unmeasured


@dataclass(frozen=True, slots=True)
class Earlier:
    """An earlier event of the same camera (for recurrence)."""

    event_id: str
    start: float
    where: tuple[str, ...]  # its regions, largest first


@dataclass(frozen=True, slots=True)
class SceneFacts:
    where: tuple[tuple[str, float], ...]  # (region, share of the anomalous cells), largest first
    view_share: float  # share of the view the anomalous cells covered over the event
    hot: bool  # the cells are the edge's hot patches (else its kept patches)
    movement: Movement
    speed: float  # views per second of the centre's net displacement; 0 when `none`
    view_change: bool
    onset: Onset
    rise_s: float  # seconds from the start to RISE * peak
    growth: Growth
    extents: tuple[float, float]  # mean extent (share of the view) of the older, newer half
    earlier: Earlier | None
    faster: bool = False  # things in view moved faster than usual (the edge's `flow` part)
    brightness: float | None = None  # the frames' mean brightness shift (/ 255); None: unmeasured
    stayed: bool = False  # something new came to rest in view (the edge's `static` part)

    @property
    def light(self) -> Light | None:
        """With a view change: the view went darker / brighter as a whole."""
        return light_of(self.brightness) if self.view_change else None


def cells_of(frames: Sequence[FrameEvidence]) -> tuple[bool, list[tuple[int, ...]]]:
    """(hot?, each frame's anomalous cells): the hot patches when any frame has them."""
    use_hot = any(f.hot for f in frames)
    return use_hot, [f.hot if use_hot else f.indices for f in frames]


def carrying(frames: Sequence[FrameEvidence]) -> list[FrameEvidence]:
    """The frames at or past CARRY_LEVEL that have anomalous cells (in their order); all of them
    when none has."""
    _, cells = cells_of(frames)
    kept = [f for f, cs in zip(frames, cells, strict=True) if cs and f.score >= CARRY_LEVEL]
    return kept or list(frames)


def hottest_regions(frames: Sequence[FrameEvidence]) -> list[tuple[int, ...]]:
    """Each frame's anomalous region: with hot patches, the connected group of its hot cells that
    holds its most anomalous one (hot cells come most anomalous first); else its kept cells."""
    use_hot, cells = cells_of(frames)
    if not use_hot:
        return cells
    return [groups(cs, f.grid)[0] if cs else () for f, cs in zip(frames, cells, strict=True)]


def where_shares(frames: Sequence[FrameEvidence]) -> tuple[tuple[str, float], ...]:
    """`where`: share per named region of each frame's anomalous region (`hottest_regions`),
    largest first (ties by name)."""
    return _shares(frames, hottest_regions(frames))


def region_shares(frames: Sequence[FrameEvidence]) -> tuple[tuple[str, float], ...]:
    """Share per named region of all the anomalous cells over all frames, largest first (ties by
    name)."""
    return _shares(frames, cells_of(frames)[1])


def _shares(
    frames: Sequence[FrameEvidence], cells: Sequence[Sequence[int]]
) -> tuple[tuple[str, float], ...]:
    counts: Counter[str] = Counter()
    for f, cs in zip(frames, cells, strict=True):
        counts.update(region_name(i, f.grid) for i in cs)
    total = sum(counts.values())
    if total == 0:
        return ()
    return tuple(sorted(((n, c / total) for n, c in counts.items()), key=lambda x: (-x[1], x[0])))


def view_share(frames: Sequence[FrameEvidence]) -> float:
    _, cells = cells_of(frames)
    union = {i for cs in cells for i in cs}
    return len(union) / (frames[0].grid[0] * frames[0].grid[1]) if frames else 0.0


def centre(cells: Sequence[int], grid: tuple[int, int]) -> tuple[float, float]:
    """Mean (x, y) of the cells in view widths / heights."""
    rows, cols = grid
    xs = [(i % cols + 0.5) / cols for i in cells]
    ys = [(i // cols + 0.5) / rows for i in cells]
    return sum(xs) / len(xs), sum(ys) / len(ys)


def groups(cells: Sequence[int], grid: tuple[int, int]) -> list[tuple[int, ...]]:
    """The cells' connected groups (8-neighbours), each in the cells' order; the group holding
    the first cell first."""
    rows, cols = grid
    left, out = set(cells), []
    order = {cell: k for k, cell in enumerate(cells)}
    for seed in cells:
        if seed not in left:
            continue
        left.discard(seed)
        group, todo = [seed], [seed]
        while todo:
            r, c = divmod(todo.pop(), cols)
            for dr, dc in itertools.product((-1, 0, 1), repeat=2):
                j = (r + dr) * cols + c + dc
                if 0 <= r + dr < rows and 0 <= c + dc < cols and j in left:
                    left.discard(j)
                    group.append(j)
                    todo.append(j)
        out.append(tuple(sorted(group, key=order.__getitem__)))
    return out


Track = list[tuple[float, tuple[float, float], int]]  # (t, centre, cells) per frame, oldest first


def expect(path: Track, t: float, follow: bool = True) -> tuple[tuple[float, float], float]:
    """Where a track's region should be at time t, and how far from there it may be found
    (`follow=False`: at its last centre, as a track of one frame, whatever its velocity). A
    track's times only rise (`tracks` extends one only with a later frame)."""
    t1, (x1, y1), _ = path[-1]
    dt = t - t1
    if not follow or len(path) < 2:
        return (x1, y1), GATE + TRACK_SPEED * dt
    t0, (x0, y0), _ = path[-2]
    vx, vy = (x1 - x0) / (t1 - t0), (y1 - y0) / (t1 - t0)
    return (x1 + vx * dt, y1 + vy * dt), GATE + FOLLOW_SPEED * dt


def tracks(frames: Sequence[FrameEvidence], follow: bool = True) -> list[Track]:
    """Each followed group of anomalous cells as (t, centre, cells) per frame, oldest first."""
    _, cells = cells_of(frames)
    out: list[Track] = []
    for f, cs in zip(frames, cells, strict=True):
        found = [(centre(g, f.grid), len(g)) for g in groups(cs, f.grid)] if cs else []
        taken: dict[int, int] = {}  # group -> track
        for moving in (True, False) if follow else (False,):
            expected = [expect(tr, f.t, moving) for tr in out]
            pairs = sorted(
                (d, gi, ti)
                for gi, (c, _) in enumerate(found)
                for ti, (at, gate) in enumerate(expected)
                if out[ti][-1][0] < f.t and (d := math.dist(c, at)) <= gate
            )
            for _, gi, ti in pairs:
                if gi not in taken and ti not in taken.values():
                    taken[gi] = ti
        for gi, (c, n) in enumerate(found):
            if gi in taken:
                out[taken[gi]].append((f.t, c, n))
            else:
                out.append([(f.t, c, n)])
    return out


def track(frames: Sequence[FrameEvidence], follow: bool = True) -> Track:
    """(t, centre, cells) of the anomalous region (the heaviest track), oldest first."""
    found = tracks(frames, follow)
    if not found:
        return []
    return max(found, key=lambda tr: sum(n for _, _, n in tr))  # the first of equals


def displacement(path: Sequence[tuple[float, tuple[float, float], int]]) -> tuple[float, float]:
    """(dx, dy) from the first frame to the last of the weighted least-squares line through the
    path's centres over time (weights: the cells)."""
    t = np.array([p[0] for p in path])
    xy = np.array([p[1] for p in path])
    w = np.array([p[2] for p in path], dtype=np.float64)
    dt = t - np.average(t, weights=w)
    slope = (w * dt) @ (xy - np.average(xy, axis=0, weights=w)) / ((w * dt) @ dt)
    span = t[-1] - t[0]
    return float(slope[0] * span), float(slope[1] * span)


def movement(frames: Sequence[FrameEvidence], follow: bool = True) -> tuple[Movement, float]:
    """(direction, speed in views per second) of the tracked anomalous region's centre."""
    path = track(frames, follow)
    if len(path) < 2 or path[-1][0] <= path[0][0]:
        return "none", 0.0
    dx, dy = displacement(path)
    net = math.hypot(dx, dy)
    if net < MOVE_MIN:
        return "none", 0.0
    length = sum(math.dist(a[1], b[1]) for a, b in itertools.pairwise(path))
    speed = net / (path[-1][0] - path[0][0])
    if length > WANDER * net:
        return "mixed", speed
    return direction(dx, dy), speed


def view_change(frames: Sequence[FrameEvidence]) -> bool:
    """Most of the view changed at once (camera moved, covered or defocused; lights): by the
    pixels (most of them off the background, or the view's detail lost) or by the hot patches,
    unless they spread (`growth`; `frames` oldest first)."""
    pixels = [f.pixel_change for f in frames if f.pixel_change is not None]
    if pixels and sum(pixels) >= PIXEL_VIEW_SHARE * len(pixels):
        return True
    if detail_lost(carrying(frames)):
        return True
    use_hot, cells = cells_of(frames)
    if not use_hot or growth(frames)[0] == "spreading":
        return False  # a camera moved or covered changes the view at once; a haze spreads
    wide = [
        len(cs) / (f.grid[0] * f.grid[1]) >= VIEW_SHARE
        for f, cs in zip(frames, cells, strict=True)
        if cs
    ]
    return bool(wide) and sum(wide) >= VIEW_FRAMES * len(wide)


def detail(frames: Sequence[FrameEvidence]) -> float | None:
    """Mean detail (over the background's) of the frames that measured it; None when none did."""
    kept = [f.detail for f in frames if f.detail is not None]
    return sum(kept) / len(kept) if kept else None


def detail_lost(frames: Sequence[FrameEvidence]) -> bool:
    """The view kept at most `VIEW_DETAIL` of its usual detail, on average over `frames` (the
    frames that carried the event: a window's frames after a defocus ends hold more detail than
    the background that took in the blur): defocused or covered (the synthesiser's truth counts
    a view change the same way, at `DETAIL_LOST` of the source's)."""
    kept = detail(frames)
    return kept is not None and kept <= VIEW_DETAIL


def brightness(frames: Sequence[FrameEvidence]) -> float | None:
    """Mean brightness shift of the frames that carry it; None when none does."""
    shifts = [f.brightness for f in frames if f.brightness is not None]
    return sum(shifts) / len(shifts) if shifts else None


def light_of(shift: float | None) -> Light | None:
    """Which way the whole view's light went, when it went clearly one way."""
    if shift is None or abs(shift) < LIGHT_SHIFT:
        return None
    return "darker" if shift < 0 else "brighter"


def onset(frames: Sequence[FrameEvidence], start: float, peak: float, peak_t: float) -> float:
    """Seconds from the event start until the score first reaches RISE * peak."""
    reached = [f.t for f in sorted(frames, key=lambda f: f.t) if f.score >= RISE * peak]
    return max(0.0, (reached[0] if reached else peak_t) - start)


def extent(cells: Sequence[int], grid: tuple[int, int]) -> float:
    """Share of the view the cells' bounding box covers."""
    rows, cols = grid
    rs, cs = [i // cols for i in cells], [i % cols for i in cells]
    return (max(rs) - min(rs) + 1) * (max(cs) - min(cs) + 1) / (rows * cols)


def growth(frames: Sequence[FrameEvidence]) -> tuple[Growth, tuple[float, float]]:
    """(spreading | shrinking | steady | unknown, (older, newer) half's mean extent)."""
    _, cells = cells_of(frames)
    ext = [extent(cs, f.grid) for f, cs in zip(frames, cells, strict=True) if cs]
    if len(ext) < 2:
        return "unknown", (0.0, 0.0)
    half = len(ext) // 2
    old, new = sum(ext[:half]) / half, sum(ext[-half:]) / half
    if new >= GROW * old and new - old >= GROW_MIN:
        return "spreading", (old, new)
    if old >= GROW * new and old - new >= GROW_MIN:
        return "shrinking", (old, new)
    return "steady", (old, new)


def part_past_normal(frames: Sequence[FrameEvidence], part: str) -> bool:
    """Whether at least FAST_FRAMES of the frames that carry the edge's `part` have it at
    FAST_LEVEL or more (clearly past the camera's normal)."""
    values = [p[part] for p in (dict(f.components) for f in frames) if part in p]
    past = sum(v >= FAST_LEVEL for v in values)
    return bool(values) and past >= FAST_FRAMES * len(values)


def faster_than_usual(frames: Sequence[FrameEvidence]) -> bool:
    """Things in view moved faster than usual (the edge's pixel-speed part)."""
    return part_past_normal(frames, "flow")


def similar_earlier(where: Sequence[str], earlier: Sequence[Earlier]) -> Earlier | None:
    """The newest earlier event whose regions overlap `where`'s."""
    mine = set(where)
    hits = [e for e in earlier if mine & set(e.where)]
    return max(hits, key=lambda e: e.start) if hits else None


def scene_facts(
    frames: Sequence[FrameEvidence],
    start: float,
    peak: float,
    peak_t: float,
    earlier: Sequence[Earlier] = (),
) -> SceneFacts:
    """All the facts of one event; `frames` oldest first."""
    frames = sorted(frames, key=lambda f: f.t)
    carried = carrying(frames)
    changed = view_change(frames)
    # a whole-view change has no one anomalous region: every region it reached counts
    where = region_shares(carried) if changed else where_shares(carried)
    move, speed = movement(carried)
    if changed:  # the whole view, not a region, changed: no region's track to report
        move, speed = "none", 0.0
    rise = onset(frames, start, peak, peak_t)
    grow, halves = growth(frames)
    return SceneFacts(
        where=where,
        view_share=view_share(frames),
        hot=any(f.hot for f in frames),
        movement=move,
        speed=speed,
        view_change=changed,
        onset="sudden" if rise <= SUDDEN_S else "gradual",
        rise_s=rise,
        growth=grow,
        extents=halves,
        earlier=similar_earlier([n for n, _ in where], earlier),
        faster=faster_than_usual(frames),
        brightness=brightness(frames),
        stayed=not changed and part_past_normal(frames, "static"),
    )
