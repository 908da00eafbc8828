"""Synthetic anomalies on real footage, with known ground-truth spans, deterministic by seed.

No packaged footage of real anomalies exists offline, so the training set for the demo head is
made by cutting clips from real surveillance footage (native fps and size) and applying one
anomaly to a span of several seconds in each anomalous clip:

- `intruder`: a real moving object (a pedestrian cut out by background subtraction) enlarged and
  pasted where nobody walks (the grid cell with least motion), drifting slowly;
- `running`: the span plays `speed` times faster than real time (frames skipped), so people move
  abnormally fast; frames after the span continue from the advanced position;
- `smoke`: a growing grey turbulent haze (smoothed noise rising from a point) plus flicker;
- `tamper`: the camera is occluded by a dark blob, defocused or knocked aside within a moment.

Held-out kinds (`HELDOUT_KINDS`), drawn only for evaluation sets (`vau.edge.evalset`) so that no
head, threshold or normality model is ever tuned on them:

- `fallen`: a real person (a donor crop) topples over early in the span and lies nearly still,
  somewhere in the lower two thirds of the view;
- `abandoned`: a shaded bag or box with a soft edge and a contact shadow, 4-8 % of the view's
  height, appears in the lower half at the span start and stays put;
- `lights`: the lighting fails: brightness drops to 35-60 % under a sodium-orange or blue cast,
  ramping in over the first 20 % of the span, with a mild flicker;
- `crowd`: four to six people (donor crops) converge on a point where nobody stands and stay
  there as a group;
- `scuffle`: two people grapple on the spot: jerky, fast, erratic movement in one small place;
- `fire`: flames grow at one spot on the ground, a flickering yellow-orange tongue with its glow.

The last three (`ADDED_KINDS`) were added later and kept out of every choice made since; eval sets
plan them after the normal clips, so a set made before keeps every clip it had.

Probe kinds (`PROBE_KINDS`) are tuning kinds for the normality model that nothing else trains on,
drawn in an eval set only when asked for (`make-eval-set --probe KIND`), after every other kind:

- `graffiti`: a tag of a few thick outlined strokes of one paint, 6-14 % of the view's width,
  sprayed on a surface in the upper 60 % of the view over the first 30 % of the span, then left
  as it is: a small thing that arrives and stays, which no other tuning kind is;
- `vehicle`: a car (shaded body, cabin with dark windows, two wheels; 12-20 % of the view's
  height) drives straight across the lower part of the view, edge to edge within the span;
- `flood`: water spreads over the ground from one spot in the lower half, a flat, darker, bluish
  sheet with moving glints, to 30-45 % of the view's width;
- `glare`: a torch or headlight shone into the lens, a saturated warm-white disc with a halo and
  four streaks, 12-25 % of the view across, swaying a little.

The last three stand in for unseen kinds when the observed category's refusal ("unknown") is
chosen: each looks like a tuned kind in one way (a thing moving fast like a runner or an
intruder; spreading like smoke; covering part of the view like a tamper) and is none of them.

Each effect is a pure function of (source frame, progress in the span, plan); frames outside the
span are the source frames untouched. `build_dataset` writes MJPG .avi clips, `manifest.jsonl`
(see vau.edge.manifest) split into train/test by whole clip, and `dataset.json` (provenance).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vau.edge.manifest import NORMAL, Clip, write_manifest
from vau.edge.settings import SourceSettings
from vau.edge.sources import open_source
from vau.edge.synth_effects import (
    EFFECTS,
    ClipPlan,
    Donor,
    Footage,
    intruder,
    render_clip,
    render_frame,
    smoke,
    tamper,
)
from vau.edge.synth_truth import FrameChange, clip_truth, frame_change
from vau.edge.types import F32, U8

__all__ = [
    "ADDED_KINDS",
    "ALL_KINDS",
    "EFFECTS",
    "HELDOUT_KINDS",
    "KINDS",
    "PROBE_KINDS",
    "ClipPlan",
    "Donor",
    "Footage",
    "build_dataset",
    "intruder",
    "make_clip",
    "plan_clip",
    "plan_clips",
    "render_clip",
    "render_footage",
    "render_frame",
    "smoke",
    "survey",
    "tamper",
]

KINDS = ("intruder", "running", "smoke", "tamper")  # tuned: the head trains and is chosen on these
ADDED_KINDS = ("crowd", "scuffle", "fire")  # held out since they were made; see the docstring
HELDOUT_KINDS = ("fallen", "abandoned", "lights", *ADDED_KINDS)  # evaluation only: never tuned on
ALL_KINDS = KINDS + HELDOUT_KINDS
# tuning-only probes, drawn in an eval set only when asked for
PROBE_KINDS = ("graffiti", "vehicle", "flood", "glare")
FOOTAGE_ASSETS = ("vtest.avi", "bikes.mp4")  # the footage the default head is trained on
DEFAULT_CLIPS_PER_KIND = 24
DEFAULT_CLIP_SECONDS = 8.0
TEST_SHARE = 0.3  # share of each kind's clips held out for testing (at least one)


def survey(path: Path) -> Footage:
    """One pass over a video: fps, size, frame count, where nobody moves, who moves."""
    kept: list[U8] = []
    with open_source(SourceSettings(uri=str(path)), "synth") as source:
        fps, size = source.fps, source.size
        step = max(1, round(fps / 2))
        count = 0
        for frame in source:
            if frame.seq % step == 0:
                kept.append(frame.image)
            count += 1
    background = np.median(np.stack(kept[:: max(1, len(kept) // 25)]), axis=0).astype(np.uint8)
    masks = [_foreground(image, background) for image in kept]
    motion = np.mean(np.stack(masks), axis=0)
    blobs = _blobs(masks)
    donors, people = _donors(kept, masks, blobs), _people(kept, masks, blobs)
    return Footage(path, fps, size, count, _quiet_cell(motion), donors, people)


def _foreground(image: U8, background: U8) -> U8:
    diff = cv2.absdiff(image, background)
    moving = (cv2.max(cv2.max(diff[..., 0], diff[..., 1]), diff[..., 2]) > 35).astype(np.uint8)
    opened = cv2.morphologyEx(moving, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return np.asarray(
        cv2.morphologyEx(opened, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)), np.uint8
    )


def _quiet_cell(motion: F32, cells: int = 4) -> tuple[int, int, int, int]:
    """The grid cell with the least motion, below the top row (usually sky or walls)."""
    h, w = motion.shape
    ch, cw = h // cells, w // cells
    energy = motion[: ch * cells, : cw * cells].reshape(cells, ch, cells, cw).mean(axis=(1, 3))
    row, col = np.unravel_index(int(np.argmin(energy[1:])), energy[1:].shape)
    return int(col) * cw, (int(row) + 1) * ch, cw, ch


Blob = tuple[int, int, tuple[int, int, int, int]]  # (area, kept frame, (x, y, w, h))


def _blobs(masks: list[U8]) -> list[Blob]:
    """Moving components clear of the frame's edges, taller than wide, largest first."""
    found: list[Blob] = []
    for n, mask in enumerate(masks):
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        h, w = mask.shape
        for x, y, bw, bh, area in stats[1:count].tolist():
            inside = x > 0 and y > 0 and x + bw < w and y + bh < h
            if inside and bh > 1.2 * bw and area > 0.002 * h * w:
                found.append((area, n, (x, y, bw, bh)))
    return sorted(found, reverse=True)


def _cut(images: list[U8], masks: list[U8], blob: Blob) -> Donor:
    _, n, (x, y, bw, bh) = blob
    crop = images[n][y : y + bh, x : x + bw].copy()
    feet = (y + bh) / masks[n].shape[0]
    return Donor(crop, _soft(masks[n][y : y + bh, x : x + bw]), feet)


def _donors(
    images: list[U8], masks: list[U8], blobs: list[Blob], most: int = 3
) -> tuple[Donor, ...]:
    """The largest moving objects (intruders: size matters more than being one person)."""
    donors = tuple(_cut(images, masks, blob) for blob in blobs[:most])
    return donors or (_silhouette(),)


def _people(
    images: list[U8], masks: list[U8], blobs: list[Blob], most: int = 8
) -> tuple[Donor, ...]:
    """Slim upright blobs (one person each) spread over sizes, hence over rows of the view."""
    slim = [(area, n, (x, y, w, h)) for area, n, (x, y, w, h) in blobs if h > 2 * w]
    return tuple(_cut(images, masks, b) for b in slim[:: max(1, len(slim) // most)][:most])


def _silhouette() -> Donor:
    """A dark person-shaped fallback when the footage shows no moving object."""
    mask = np.zeros((120, 48), np.float32)
    cv2.ellipse(mask, (24, 14), (10, 12), 0, 0, 360, 1.0, -1)
    cv2.ellipse(mask, (24, 70), (20, 46), 0, 0, 360, 1.0, -1)
    return Donor(np.full((120, 48, 3), 30, np.uint8), _soft(mask))


def _soft(mask: U8 | F32) -> F32:
    """A hard 0/1 mask with feathered edges, float32 in [0, 1]."""
    return np.asarray(cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 0), np.float32)


def plan_clips(
    footage: Sequence[Footage], clips_per_kind: int, clip_seconds: float, seed: int
) -> list[ClipPlan]:
    """Which clips to cut and spoil; each kind rotates over the footage; deterministic by seed."""
    rng = np.random.default_rng(seed)
    plans = []
    for k, kind in enumerate((*KINDS, NORMAL)):
        n_test = min(max(1, round(TEST_SHARE * clips_per_kind)), clips_per_kind - 1)
        tests = set(rng.permutation(clips_per_kind)[:n_test].tolist())
        for n in range(clips_per_kind):
            src = footage[(n + k) % len(footage)]
            split = "test" if n in tests else "train"
            plans.append(plan_clip(f"{kind}_{n:03d}", kind, src, clip_seconds, split, rng))
    return plans


def plan_clip(
    name: str,
    kind: str,
    src: Footage,
    seconds: float,
    split: str,
    rng: np.random.Generator,
    first: int = 0,
) -> ClipPlan:
    """One clip cut from source frames [first, src.frames): its span is 35-50 % of the clip, away
    from both ends; a running span reads `speed` times as many frames, all inside that range."""
    available = src.frames - first
    frames = min(round(seconds * src.fps), int(0.6 * available))
    a = b = 0
    speed = 1
    if kind != NORMAL:
        length = int(rng.uniform(0.35, 0.5) * frames)
        if kind == "running":
            spare = available - frames
            speed = max(2, min(int(rng.integers(3, 6)), 1 + spare // length))
            length = max(1, min(length, spare // (speed - 1)))
        margin = max(1, min(round(src.fps), int(0.15 * frames)))
        a = int(rng.integers(margin, frames - length - margin + 1))
        b = a + length
    needed = frames + (b - a) * (speed - 1)
    start = first + int(rng.integers(0, available - needed + 1))
    seed = int(rng.integers(2**31))
    return ClipPlan(name, src, kind, start, frames, (a, b), speed, seed, split)


class _Writer:
    """Feeds source frames, in order, to one plan; writes its clip as they complete."""

    def __init__(self, plan: ClipPlan, path: Path) -> None:
        self.plan, self.path, self.done = plan, path, 0
        self.changes: list[FrameChange] = []  # where each span frame differs from its source
        self._pending: list[U8] = []
        fourcc = cv2.VideoWriter.fourcc(*"MJPG")
        self._out = cv2.VideoWriter(str(path), fourcc, plan.footage.fps, plan.footage.size)
        if not self._out.isOpened():
            raise RuntimeError(f"cannot write {path}; check that its folder exists and is writable")

    def feed(self, seq: int, image: U8) -> None:
        if self.done >= self.plan.frames:
            return
        lo, hi = self.plan.source_range(self.done)
        if lo <= seq < hi:
            self._pending.append(image)
        if seq == hi - 1:
            image = render_frame(self.plan, self.done, self._pending)
            a, b = self.plan.span
            if a <= self.done < b:
                self.changes.append(frame_change(self._pending[0], image))
            self._out.write(image)
            self._pending, self.done = [], self.done + 1

    def close(self) -> None:
        self._out.release()
        if self.done != self.plan.frames:
            raise RuntimeError(f"{self.path}: wrote {self.done} of {self.plan.frames} frames")


def render_footage(
    footage: Footage, plans: Sequence[ClipPlan], clips_dir: Path
) -> dict[str, dict[str, Any]]:
    """Write every plan's clip, `clips_dir/<plan.name>.avi`, in one pass over the footage; return
    each anomalous plan's truth (`synth_truth.clip_truth`) by name."""
    clips_dir.mkdir(parents=True, exist_ok=True)
    writers = [_Writer(plan, clips_dir / f"{plan.name}.avi") for plan in plans]
    try:
        with open_source(SourceSettings(uri=str(footage.path)), "synth") as source:
            for frame in source:
                for writer in writers:
                    writer.feed(frame.seq, frame.image)
                if all(writer.done >= writer.plan.frames for writer in writers):
                    break  # the rest of the footage is in no clip
    finally:
        for writer in writers:
            writer.close()
    return {w.plan.name: clip_truth(w.plan.kind, w.changes) for w in writers if w.plan.span[1] > 0}


def build_dataset(
    footage: Sequence[Path],
    out_dir: Path,
    clips_per_kind: int = DEFAULT_CLIPS_PER_KIND,
    clip_seconds: float = DEFAULT_CLIP_SECONDS,
    seed: int = 0,
) -> Path:
    """Write clips, `manifest.jsonl` and `dataset.json` under out_dir; return the manifest."""
    if clips_per_kind < 1 or clip_seconds < 2.0 or not footage:
        raise ValueError("build_dataset needs footage, clips_per_kind >= 1, clip_seconds >= 2")
    clips_dir = out_dir / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    sources = [survey(path) for path in footage]
    plans = plan_clips(sources, clips_per_kind, clip_seconds, seed)
    for src in sources:
        render_footage(src, [p for p in plans if p.footage is src], clips_dir)
    clips = [
        Clip(clips_dir / f"{p.name}.avi", (p.seconds,) if p.span[1] else (), p.kind, p.split)
        for p in plans
    ]
    _write_provenance(out_dir / "dataset.json", sources, plans, clip_seconds, seed)
    return write_manifest(out_dir / "manifest.jsonl", clips)


def make_clip(
    footage: Path, out: Path, kind: str, span_s: tuple[float, float], seconds: float, seed: int = 0
) -> Clip:
    """One clip from the start of `footage` with `kind` (any of ALL_KINDS) injected over `span_s`
    (demos, tests)."""
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown anomaly kind {kind!r}; choose from {', '.join(ALL_KINDS)}")
    src = survey(footage)
    frames = min(round(seconds * src.fps), src.frames)
    a, b = (round(x * src.fps) for x in span_s)
    speed = 3 if kind == "running" else 1
    if not 0 <= a < b <= frames or frames + (b - a) * (speed - 1) > src.frames:
        raise ValueError(f"span {span_s} does not fit a {seconds}s clip of {footage.name}")
    plan = ClipPlan(out.stem, src, kind, 0, frames, (a, b), speed, seed, "")
    out.parent.mkdir(parents=True, exist_ok=True)
    render_footage(src, [plan], out.parent)
    return Clip(out.parent / f"{out.stem}.avi", (plan.seconds,), kind)


def _write_provenance(
    path: Path, sources: list[Footage], plans: list[ClipPlan], clip_seconds: float, seed: int
) -> None:
    info = {
        "description": "demo-grade: synthetic anomalies (" + ", ".join(KINDS) + ") over real "
        "footage (" + ", ".join(s.path.name for s in sources) + "), made by vau.edge.synth",
        "command": f"vau-edge make-dataset --out {path.parent} --seed {seed} "
        f"--clips-per-kind {len(plans) // (len(KINDS) + 1)} --clip-seconds {clip_seconds}",
        "seed": seed,
        "clip_seconds": clip_seconds,
        "footage": [{"file": s.path.name, "fps": s.fps, "size": s.size} for s in sources],
        "clips": {split: sum(p.split == split for p in plans) for split in ("train", "test")},
        "running_speeds": sorted({p.speed for p in plans if p.kind == "running"}),
    }
    path.write_text(json.dumps(info, indent=2) + "\n", "utf-8")
