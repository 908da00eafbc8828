"""The synthetic anomaly effects: pure functions of (source frame, progress in the span, plan).

Frames outside the span are the source frames untouched. `vau.edge.synth` plans clips and builds
the dataset; this module only draws. See its docstring for what each kind looks like. The tuned
kinds (intruder, running, smoke, tamper) train and select the head; the held-out kinds (fallen,
abandoned, lights) are drawn only for evaluation sets (`vau.edge.evalset`), so nobody tunes on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from vau.edge.types import F32, U8


@dataclass(frozen=True, eq=False)
class Donor:
    image: U8  # (h, w, 3) BGR crop around one moving object
    mask: F32  # (h, w) soft foreground alpha in [0, 1]
    feet: float = 1.0  # the crop's bottom row where it was found, as a share of the frame height


@dataclass(frozen=True, eq=False)
class Footage:
    """What the effects need to know about one source video (from one pass over it)."""

    path: Path
    fps: float
    size: tuple[int, int]  # (W, H)
    frames: int
    quiet: tuple[int, int, int, int]  # (x, y, w, h) of the grid cell with the least motion
    donors: tuple[Donor, ...]  # moving objects to paste as intruders
    people: tuple[Donor, ...] = ()  # single upright walkers at several rows (fallen); may be empty


@dataclass(frozen=True, eq=False)
class ClipPlan:
    name: str
    footage: Footage
    kind: str  # one of ALL_KINDS, or NORMAL
    start: int  # first source frame
    frames: int  # output frames, at the source's fps
    span: tuple[int, int]  # anomalous output frames [a, b); (0, 0) for a normal clip
    speed: int  # running: source frames per output frame inside the span; else 1
    seed: int  # draws the effect's parameters
    split: str  # "train", "test" or "learn" (see vau.edge.manifest)

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


def fallen(image: U8, progress: float, plan: ClipPlan) -> U8:
    """A person falls over within the first 10 % of the span, then lies nearly still."""
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    people = plan.footage.people or plan.footage.donors
    donor = people[int(rng.integers(len(people)))]
    dh, dw = donor.mask.shape
    scale = min(rng.uniform(0.9, 1.1), 0.35 * h / dh, 0.45 * w / dh)
    length, girth = scale * dh, scale * dw
    row = (donor.feet + rng.uniform(-0.05, 0.05)) * h  # near where that walker was: same scale
    feet = (rng.uniform(length, w - length), np.clip(row, max(h / 3, length), h - girth / 2))
    tilt = rng.choice((-1.0, 1.0)) * rng.uniform(80, 100)  # degrees, counter-clockwise
    twitch = 1.5 * np.sin(2 * np.pi * (4.0 * progress + rng.random()))  # degrees
    angle = (tilt + twitch) * min(1.0, progress / 0.1)
    turn = np.asarray(cv2.getRotationMatrix2D((dw / 2, float(dh)), angle, scale), np.float64)
    turn[:, 2] += (feet[0] - dw / 2, feet[1] - dh)  # the feet stay where they were
    return _paste(image, donor, turn)


def _paste(image: U8, donor: Donor, affine: npt.NDArray[np.float64]) -> U8:
    """Blend the donor, mapped into the frame by a 2x3 affine, inside its bounding box only."""
    h, w = image.shape[:2]
    dh, dw = donor.mask.shape
    corners = np.array([[0, 0, 1], [dw, 0, 1], [0, dh, 1], [dw, dh, 1]], np.float64) @ affine.T
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, (w - 1, h - 1))
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 1, 1, (w, h))
    local = affine - [[0, 0, x0], [0, 0, y0]]
    box = (int(x1 - x0), int(y1 - y0))
    crop = cv2.warpAffine(donor.image, local, box).astype(np.float32)
    alpha = cv2.warpAffine(donor.mask, local, box)[..., None]
    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (roi * (1 - alpha) + crop * alpha).astype(np.uint8)
    return out


BAG_COLOURS = ((40, 35, 30), (90, 50, 25), (30, 40, 110), (60, 100, 140), (110, 110, 110))  # BGR


def abandoned(image: U8, progress: float, plan: ClipPlan) -> U8:
    """A bag or box left on the ground in the lower half at the span start; it stays put."""
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    oh = max(6, int(rng.uniform(0.04, 0.08) * h))
    ow = max(6, int(oh * rng.uniform(0.8, 1.6)))
    pad = max(3, oh // 3)  # room for the soft edge and the shadow
    x0 = int(rng.integers(0, w - ow - 2 * pad + 1))
    y0 = int(rng.integers(h // 2, h - oh - 2 * pad + 1))
    colour = np.array(BAG_COLOURS[int(rng.integers(len(BAG_COLOURS)))], np.float32)
    patch, alpha, shade = _bag(oh, ow, pad, colour * rng.uniform(0.7, 1.1), rng)
    ph, pw = alpha.shape[:2]
    out = image.copy()
    roi = out[y0 : y0 + ph, x0 : x0 + pw].astype(np.float32) * shade[..., None]
    blend = roi * (1 - alpha) + patch * alpha
    out[y0 : y0 + ph, x0 : x0 + pw] = np.clip(blend, 0, 255).astype(np.uint8)
    return out


def _bag(oh: int, ow: int, pad: int, colour: F32, rng: np.random.Generator) -> tuple[F32, F32, F32]:
    """(patch (H, W, 3), alpha (H, W, 1), ground shade (H, W)) of a shaded object on its shadow."""
    ph, pw = oh + 2 * pad, ow + 2 * pad
    mask = np.zeros((ph, pw), np.float32)
    corner = max(1, oh // 6)
    cv2.rectangle(mask, (pad + corner, pad), (pad + ow - corner, pad + oh), 1.0, -1)
    cv2.rectangle(mask, (pad, pad + corner), (pad + ow, pad + oh - corner), 1.0, -1)
    if rng.random() < 0.5:  # a handle on top
        cv2.ellipse(mask, (pad + ow // 2, pad), (ow // 4, pad - 1), 0, 180, 360, 1.0, 2)
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.8)[..., None]
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
    light = 1.25 - 0.55 * (yy - pad) / oh + rng.choice((-0.2, 0.2)) * (xx - pad) / ow
    grain = rng.normal(1.0, 0.05, (ph, pw)).astype(np.float32)
    patch = colour * np.clip(light * grain, 0.4, 1.6)[..., None]
    shadow = np.zeros((ph, pw), np.float32)
    cv2.ellipse(
        shadow, (pw // 2 + pad // 2, pad + oh), (ow // 2 + pad // 2, pad), 0, 0, 360, 1.0, -1
    )
    shade = 1.0 - 0.45 * cv2.GaussianBlur(shadow, (0, 0), max(1.0, pad / 2))
    f32 = np.float32
    return np.asarray(patch, f32), np.asarray(alpha, f32), np.asarray(shade, f32)


CASTS = {"sodium": (0.55, 0.85, 1.3), "blue": (1.35, 0.95, 0.7)}  # BGR gains before levelling


def lights(image: U8, progress: float, plan: ClipPlan) -> U8:
    """The lighting fails: the scene dims to 35-60 % under a colour cast, with a mild flicker."""
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    level = rng.uniform(0.35, 0.6)
    cast = np.array(list(CASTS.values())[int(rng.integers(len(CASTS)))], np.float32)
    cast /= float(cast @ (0.114, 0.587, 0.299))  # the same luma as white light
    ramp = min(1.0, 0.2 + progress / 0.2)  # full effect after the first 20 % of the span
    flicker = 1.0 + 0.05 * np.sin(2 * np.pi * (rng.uniform(6, 12) * progress + rng.random()))
    theta = rng.uniform(0, 2 * np.pi)  # the surviving light falls off across the view
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    pool = 1.0 + 0.15 * ((xx / w - 0.5) * np.cos(theta) + (yy / h - 0.5) * np.sin(theta)) * 2
    dim = (level * flicker * pool)[..., None] * cast
    gain = 1.0 + ramp * (dim - 1.0)
    dark: U8 = np.clip(image * gain, 0, 255).astype(np.uint8)
    return dark


def _upright(
    donor: Donor, height: float, feet: tuple[float, float], angle: float = 0.0
) -> npt.NDArray[np.float64]:
    """The affine that stands the donor `height` pixels tall with its feet at `feet`, turned by
    `angle` degrees about them."""
    dh, dw = donor.mask.shape
    turn = np.asarray(cv2.getRotationMatrix2D((dw / 2, float(dh)), angle, height / dh), np.float64)
    turn[:, 2] += (feet[0] - dw / 2, feet[1] - dh)
    return turn


def crowd(image: U8, progress: float, plan: ClipPlan) -> U8:
    """Four to six people converge from around a point where nobody stands and stay as a group."""
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    qx, qy, qw, qh = plan.footage.quiet
    centre = (qx + qw / 2, min(qy + qh, 0.95 * h))
    arrive = min(1.0, progress / 0.6)  # together after 60 % of the span
    out = image
    for _ in range(int(rng.integers(4, 7))):
        donor = plan.footage.donors[int(rng.integers(len(plan.footage.donors)))]
        height = rng.uniform(0.22, 0.32) * h
        angle = rng.uniform(0, 2 * np.pi)
        start = rng.uniform(0.15, 0.3) * w
        stay = rng.uniform(0.02, 0.06) * w
        reach = stay + (start - stay) * (1.0 - arrive)
        x = np.clip(centre[0] + reach * np.cos(angle), height / 4, w - height / 4)
        y = np.clip(centre[1] + 0.4 * reach * np.sin(angle), height, h - 1)
        out = _paste(out, donor, _upright(donor, height, (float(x), float(y))))
    return out


def scuffle(image: U8, progress: float, plan: ClipPlan) -> U8:
    """Two people grapple on the spot: jerky, fast, erratic movement in one small place."""
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    spot = (rng.uniform(0.25, 0.75) * w, rng.uniform(0.6, 0.9) * h)
    jolt = np.random.default_rng((plan.seed, int(progress * 1000)))  # new every frame
    out = image
    for side in (-1.0, 1.0):
        donor = plan.footage.donors[int(rng.integers(len(plan.footage.donors)))]
        height = rng.uniform(0.25, 0.32) * h
        dx, dy = jolt.normal(0.0, 0.03 * w), jolt.normal(0.0, 0.01 * h)
        feet = (spot[0] + side * 0.05 * w + dx, min(spot[1] + dy, h - 1.0))
        angle = side * 10.0 + jolt.normal(0.0, 15.0)
        out = _paste(out, donor, _upright(donor, height, feet, angle))
    return out


def fire(image: U8, progress: float, plan: ClipPlan) -> U8:
    """Flames grow at one spot on the ground: a flickering yellow-orange tongue and its glow."""
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    base = (rng.uniform(0.15, 0.85) * w, rng.uniform(0.55, 0.9) * h)
    tall = (0.08 + 0.2 * min(1.0, progress / 0.7)) * h
    wide = 0.5 * tall
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    up = (base[1] - yy) / tall  # 0 at the base, 1 at the tip
    flick = np.random.default_rng((plan.seed, int(progress * 1000)))  # new every frame
    sway = 0.35 * wide * np.sin(7.0 * up + flick.uniform(0, 2 * np.pi)) * np.clip(up, 0, 1)
    across = (xx - base[0] - sway) / wide
    noise = 0.5 * rng.random((12, 6), np.float32) + 0.5 * flick.random((12, 6), np.float32)
    turb = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    shape = np.clip(1.0 - np.abs(across) / np.maximum(1.0 - up, 0.05) ** 0.7, 0.0, 1.0)
    tongues = np.clip(1.8 * turb - up, 0.0, 1.0)  # the top breaks into tongues
    body = np.where((up >= -0.05) & (up <= 1.2), shape * (0.5 + 1.5 * tongues), 0.0)
    alpha = np.clip(cv2.GaussianBlur(body.astype(np.float32), (0, 0), 0.01 * w), 0.0, 1.0)
    core = np.clip(1.6 * alpha - 0.6, 0.0, 1.0)[..., None]
    colour = core * np.array([170, 240, 255], np.float32) + (1 - core) * np.array(
        [20, 110, 240], np.float32
    )
    glow_r = 1.2 * tall
    glow = 0.25 * np.exp(-((xx - base[0]) ** 2 + (yy - base[1] + tall / 2) ** 2) / glow_r**2)
    lit = image * (1.0 + glow[..., None] * np.array([0.2, 0.6, 1.0], np.float32))
    a = alpha[..., None]
    burning: U8 = np.clip(lit * (1 - a) + colour * a, 0, 255).astype(np.uint8)
    return burning


PAINTS = ((30, 30, 220), (200, 80, 20), (20, 20, 20), (235, 235, 235), (20, 200, 230))  # BGR
PAINTED_BY = 0.3  # share of the span over which a graffiti tag is painted; it stays after


def graffiti(image: U8, progress: float, plan: ClipPlan) -> U8:
    """A tag sprayed on a surface in the upper 60 % of the view: a few thick strokes of one
    paint, outlined, painted over the first PAINTED_BY of the span; then it stays unchanged."""
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    tw = int(rng.uniform(0.06, 0.14) * w)
    th = int(rng.uniform(0.4, 0.8) * tw)
    x0 = int(rng.integers(0, w - tw))
    y0 = int(rng.integers(0, max(1, int(0.6 * h) - th)))
    paint = np.array(PAINTS[int(rng.integers(len(PAINTS)))], np.float64)
    strokes = []
    for _ in range(int(rng.integers(2, 5))):  # each a wavy line across the tag's box
        xs = np.linspace(x0, x0 + tw, 12)
        ys = y0 + th * (
            0.5
            + 0.35
            * np.sin(rng.uniform(2, 5) * np.linspace(0, 1, 12) * np.pi + rng.uniform(0, 2 * np.pi))
        )
        strokes.append(np.stack([xs, ys], axis=1).astype(np.int32))
    done = min(1.0, progress / PAINTED_BY)
    width = max(2, int(0.12 * th))
    out = image.copy()
    for line in strokes:
        part = line[: max(2, round(done * len(line)))]
        cv2.polylines(out, [part], False, tuple(0.5 * paint), width + 2, cv2.LINE_AA)
        cv2.polylines(out, [part], False, tuple(paint), width, cv2.LINE_AA)
    return out


CAR_COLOURS = ((40, 40, 40), (200, 200, 200), (30, 30, 150), (140, 90, 30), (60, 110, 60))  # BGR


def vehicle(image: U8, progress: float, plan: ClipPlan) -> U8:
    """A car drives straight across the lower part of the view, edge to edge within the span:
    a shaded body, a cabin with dark windows, two wheels; 12-20 % of the view's height."""
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    ch = max(8, int(rng.uniform(0.12, 0.2) * h))
    cw = min(int(ch * rng.uniform(2.0, 2.6)), w // 2)
    ground = int(rng.uniform(0.6, 0.95) * h)
    heading = 1.0 if rng.random() < 0.5 else -1.0
    x_mid = w / 2 + heading * (progress - 0.5) * (w + cw)  # enters and leaves the view
    body = np.zeros((ch, cw), np.float32)
    cv2.rectangle(body, (0, int(0.45 * ch)), (cw - 1, int(0.85 * ch)), 1.0, -1)
    cabin = np.array([[0.2, 0.45], [0.32, 0.05], [0.7, 0.05], [0.82, 0.45]]) * (cw, ch)
    cv2.fillPoly(body, [cabin.astype(np.int32)], 1.0)
    windows = np.zeros_like(body)
    glass = cabin.mean(axis=0) + 0.75 * (cabin - cabin.mean(axis=0))  # the cabin, shrunk
    cv2.fillPoly(windows, [glass.astype(np.int32)], 1.0)
    wheels = np.zeros_like(body)
    for x in (0.22, 0.78):
        cv2.circle(wheels, (int(x * cw), int(0.82 * ch)), max(2, int(0.16 * ch)), 1.0, -1)
    alpha = np.clip(cv2.GaussianBlur(np.maximum(body, wheels), (0, 0), 0.8), 0.0, 1.0)
    paint = np.array(CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], np.float32)
    shade = (1.2 - 0.5 * np.linspace(0, 1, ch, dtype=np.float32))[:, None, None]
    car = paint * shade * np.ones((ch, cw, 1), np.float32)
    car = np.where(windows[..., None] > 0.5, (25, 30, 35), car)
    car = np.where(wheels[..., None] > 0.5, (15, 15, 15), car)
    x0, y0 = int(x_mid - cw / 2), ground - ch
    xa, xb = max(0, x0), min(w, x0 + cw)
    if xb <= xa:
        return image.copy()
    out = image.copy()
    a = alpha[:, xa - x0 : xb - x0, None]
    roi = out[y0 : y0 + ch, xa:xb].astype(np.float32)
    blend = roi * (1 - a) + car[:, xa - x0 : xb - x0] * a
    out[y0 : y0 + ch, xa:xb] = np.clip(blend, 0, 255).astype(np.uint8)
    return out


def flood(image: U8, progress: float, plan: ClipPlan) -> U8:
    """Water spreads over the ground from one spot in the lower half: a flat, darker, bluish
    sheet with moving ripples, growing to 30-45 % of the view's width across."""
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    ox, oy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.6, 0.9) * h
    reach = (0.04 + rng.uniform(0.26, 0.41) * min(1.0, progress / 0.8)) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(xx - ox, (yy - oy) * 3.0)  # flat on the ground: squashed vertically
    lobes = cv2.resize(rng.random((4, 6), np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    wet = np.clip((reach * (0.8 + 0.4 * lobes) - r) / (0.03 * w), 0.0, 1.0)
    waves = cv2.resize(rng.random((24, 32), np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    phase = r / (0.006 * w) + 6.0 * waves - 12.0 * progress
    ripple = 0.5 + 0.5 * np.sin(phase)  # broken, moving glints, not rings
    tint = np.array([1.1, 0.85, 0.7], np.float32)  # BGR: water takes the sky's blue
    water = image * (0.5 + 0.08 * ripple)[..., None] * tint + 8.0 * ripple[..., None]
    a = (0.85 * wet)[..., None]
    wetted: U8 = np.clip(image * (1 - a) + water * a, 0, 255).astype(np.uint8)
    return wetted


def glare(image: U8, progress: float, plan: ClipPlan) -> U8:
    """A torch or headlight shone into the lens: a saturated white-yellow disc with a soft halo
    and four streaks, 12-25 % of the view across, swaying a little; on within 10 % of the span."""
    rng = np.random.default_rng(plan.seed)
    h, w = image.shape[:2]
    size = rng.uniform(0.12, 0.25) * max(h, w)
    sway = 0.03 * w * np.sin(2 * np.pi * (1.5 * progress + rng.random()))
    cx, cy = rng.uniform(0.2, 0.8) * w + sway, rng.uniform(0.2, 0.8) * h
    on = min(1.0, progress / 0.1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = (xx - cx) / size, (yy - cy) / size
    r = np.hypot(dx, dy)
    light = np.clip(1.6 - 2.5 * r, 0.0, 1.0) + 0.5 * np.exp(-4.0 * r**2)
    streaks = np.exp(-((dy / 0.03) ** 2)) * np.exp(-np.abs(dx) / 1.2)
    streaks += np.exp(-((dx / 0.03) ** 2)) * np.exp(-np.abs(dy) / 1.2)
    a = np.clip(on * (light + 0.6 * streaks), 0.0, 1.0)[..., None]
    colour = np.array([200, 245, 255], np.float32)  # BGR: warm white
    dazzled: U8 = np.clip(image * (1 - a) + colour * a, 0, 255).astype(np.uint8)
    return dazzled


EFFECTS: dict[str, Callable[[U8, float, ClipPlan], U8]] = {
    "intruder": intruder,
    "smoke": smoke,
    "tamper": tamper,
    "fallen": fallen,
    "abandoned": abandoned,
    "lights": lights,
    "crowd": crowd,
    "scuffle": scuffle,
    "fire": fire,
    "graffiti": graffiti,
    "vehicle": vehicle,
    "flood": flood,
    "glare": glare,
}


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
