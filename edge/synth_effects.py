"""The synthetic anomaly effects: pure functions of (source frame, progress in the span, plan).

Frames outside the span are the source frames untouched. `vau.edge.synth` plans clips and builds
the dataset; this module only draws. See its docstring for what each kind looks like.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vau.edge.types import F32, U8


@dataclass(frozen=True, eq=False)
class Donor:
    image: U8  # (h, w, 3) BGR crop around one moving object
    mask: F32  # (h, w) soft foreground alpha in [0, 1]


@dataclass(frozen=True, eq=False)
class Footage:
    """What the effects need to know about one source video (from one pass over it)."""

    path: Path
    fps: float
    size: tuple[int, int]  # (W, H)
    frames: int
    quiet: tuple[int, int, int, int]  # (x, y, w, h) of the grid cell with the least motion
    donors: tuple[Donor, ...]  # moving objects to paste as intruders


@dataclass(frozen=True, eq=False)
class ClipPlan:
    name: str
    footage: Footage
    kind: str  # one of KINDS, or NORMAL
    start: int  # first source frame
    frames: int  # output frames, at the source's fps
    span: tuple[int, int]  # anomalous output frames [a, b); (0, 0) for a normal clip
    speed: int  # running: source frames per output frame inside the span; else 1
    seed: int  # draws the effect's parameters
    split: str  # "train" or "test"

    def source_range(self, i: int) -> tuple[int, int]:
        """Source frames [lo, hi) that make output frame i (hi - lo == speed inside a run)."""
        a, b = self.span
        if i < a:
            lo, n = i, 1
        elif i < b:
            lo, n = a + (i - a) * self.speed, self.speed
        else:
            lo, n = a + (b - a) * self.speed + (i - b), 1
        return self.start + lo, self.start + lo + n

    @property
    def seconds(self) -> tuple[float, float]:
        return self.span[0] / self.footage.fps, self.span[1] / self.footage.fps


def intruder(image: U8, progress: float, plan: ClipPlan) -> U8:
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    donor = plan.footage.donors[int(rng.integers(len(plan.footage.donors)))]
    dh, dw = donor.mask.shape
    th = int(min(rng.uniform(0.3, 0.45) * h, 0.5 * w * dh / dw))
    tw = max(4, int(th * dw / dh))
    crop = cv2.resize(donor.image, (tw, th)).astype(np.float32)
    alpha = cv2.resize(donor.mask, (tw, th))[..., None]
    direction = 1.0 if rng.random() < 0.5 else -1.0
    qx, qy, qw, qh = plan.footage.quiet
    cx = qx + qw / 2 + direction * (progress - 0.5) * 0.25 * w
    x0 = int(np.clip(cx - tw / 2, 0, w - tw))
    y0 = int(np.clip(qy + qh - th, 0, h - th))
    out = image.copy()
    roi = out[y0 : y0 + th, x0 : x0 + tw].astype(np.float32)
    out[y0 : y0 + th, x0 : x0 + tw] = (roi * (1 - alpha) + crop * alpha).astype(np.uint8)
    return out


def smoke(image: U8, progress: float, plan: ClipPlan) -> U8:
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    coarse, fine = rng.random((6, 8), np.float32), rng.random((12, 16), np.float32)
    field = 0.6 * cv2.resize(coarse, (w, 2 * h), interpolation=cv2.INTER_CUBIC)
    field += 0.4 * cv2.resize(fine, (w, 2 * h), interpolation=cv2.INTER_CUBIC)
    rise = int((1.0 - progress) * h)  # the haze pattern drifts upwards as the span goes on
    haze = cv2.GaussianBlur(field[rise : rise + h], (0, 0), 0.02 * w)
    ox, oy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.5, 0.9) * h
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = (0.25 + 0.75 * progress) * max(h, w)
    reach = np.clip(1.0 - np.hypot(xx - ox, (yy - oy) * 1.5) / radius, 0.0, 1.0)
    density = np.clip(haze * reach * (0.35 + 0.6 * progress) * 1.6, 0.0, 0.9)[..., None]
    flicker = 1.0 + 0.15 * np.sin(2 * np.pi * (6.0 * progress + rng.random()))
    out: F32 = (image * (1.0 - density) + rng.uniform(150, 210) * density) * flicker
    hazy: U8 = np.clip(out, 0, 255).astype(np.uint8)
    return hazy


def tamper(image: U8, progress: float, plan: ClipPlan) -> U8:
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    ramp = min(1.0, 0.25 + 5.0 * progress)  # full effect within the first 15 % of the span
    variant = int(rng.integers(3))
    if variant == 0:  # occluded by a dark, blurred blob covering much of the view
        mask = np.zeros((h, w), np.float32)
        centre = (int(rng.uniform(0.3, 0.7) * w), int(rng.uniform(0.3, 0.7) * h))
        axes = (int(ramp * rng.uniform(0.4, 0.7) * w), int(ramp * rng.uniform(0.4, 0.7) * h))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        alpha = cv2.GaussianBlur(mask, (0, 0), 0.05 * w)[..., None]
        covered: U8 = (image * (1 - alpha) + rng.uniform(10, 50) * alpha).astype(np.uint8)
        return covered
    if variant == 1:  # defocused
        sigma = max(0.1, ramp * rng.uniform(6, 12) * w / 640)
        return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), np.uint8)
    dx, dy = (rng.choice((-1.0, 1.0), 2) * rng.uniform(0.15, 0.3, 2) * (w, h) * ramp).tolist()
    shift = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    return np.asarray(cv2.warpAffine(image, shift, (w, h)), np.uint8)


EFFECTS: dict[str, Callable[[U8, float, ClipPlan], U8]] = {
    "intruder": intruder, "smoke": smoke, "tamper": tamper,
}  # fmt: skip


def render_frame(plan: ClipPlan, i: int, frames: Sequence[U8]) -> U8:
    """Output frame i from its source frames (plan.source_range(i)); pure."""
    a, b = plan.span
    if not a <= i < b or plan.kind == "running":
        return frames[0]  # running: the frames in between are skipped
    return EFFECTS[plan.kind](frames[0], (i - a) / (b - a), plan)


def render_clip(plan: ClipPlan, source: Sequence[U8]) -> list[U8]:
    """All output frames of a plan, from the source's frames indexed by frame number."""
    ranges = [plan.source_range(i) for i in range(plan.frames)]
    return [render_frame(plan, i, source[lo:hi]) for i, (lo, hi) in enumerate(ranges)]
