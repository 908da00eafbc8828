"""How much of the view departs from the camera's recent background: the pixels' own word on a
whole-view change (the camera knocked aside or covered, the lights failing).

The encoder's hot patches say where the *tokens* are unusual, and DINOv2 is built to shrug off
what such a change does to pixels: a view gone dark or orange keeps most of its tokens' meaning,
so a lighting failure may light up few patches. The pixels do not shrug it off. Every source
frame's 112 x 112 grey copy (the one `vau.edge.flow` measures) updates a running background (an
exponential average with time constant `TAU_S`); a kept frame's `pixel_change` is the share of
its pixels more than `DELTA` grey levels from that background. People walking move a few per cent
of the view (5-13 % on the project's footage); a knocked, covered or darkened camera moves most
of it. `DELTA` is the synthesiser's own per-pixel change (`vau.common.regions.PIXEL_DELTA`, which
its ground truth also counts with), so "most of the view changed" means the same on both sides.

Beside the share, `brightness`: the view's mean grey level minus its background's, as a share
of full scale (-1 to 1): failing light or a cover darkens most of the view (negative), a camera
knocked aside or defocused changes it with little net shift. The cloud words a view change with
it ("the view went darker").

And `detail`: how much detail the view holds against its background, each measured as the mean
gradient magnitude over the grey levels' spread (`detail_of`: contrast-normalised, so dimming
or a colour cast leaves it alone): 1 as usual, well under 1 when the lens is defocused or
covered (the texture is gone). A defocused lens changes the pixels only where the scene has
texture, so on a view with a wide plain wall or sky under half of it departs from the
background and `pixel_change` alone does not call it a view change. On the tuning sets
(seeds 1 and 3, each clip's span against the seconds before it) a tamper kept 0.29-0.76 of its
detail and every other kind 0.83 or more (glare the lowest: a bright flare widens the grey
levels' spread, as any large thing much brighter than the scene does); `regions.DETAIL_LOST`
(0.7) sits between (`docs/explain.md`, "A defocused view"). Measured on the latest frame when
a frame is kept (the frame's and the background's: 0.15 ms).

Like the share, a persisting change fades into the background over a few `TAU_S` (a camera
left pointing elsewhere becomes its new normal), and after a gap in the source the background
restarts from the next frame (nothing is compared across a gap). About 0.05 ms a source frame
on this CPU.
"""

from __future__ import annotations

import cv2
import numpy as np

from vau.common.regions import PIXEL_DELTA
from vau.edge.types import F32, U8

TAU_S = 10.0  # the background's time constant, seconds
DELTA = float(PIXEL_DELTA)  # grey levels a pixel must depart from the background to count
MAX_GAP_S = 2.0  # a longer gap restarts the background
MIN_DETAIL = 0.05  # a background with less detail than this (blank) is not compared


class ViewChange:
    """Feed it every source frame's grey copy (`add`); `take` gives the share of the latest one
    that departs from the background (None before any frame)."""

    def __init__(self, tau_s: float = TAU_S, delta: float = DELTA) -> None:
        if tau_s <= 0 or delta <= 0:
            raise ValueError("tau_s and delta must be positive")
        self._tau, self._delta = tau_s, delta
        self._background: F32 | None = None
        self._t = 0.0
        self._share: float | None = None
        self._shift: float | None = None
        self._latest: U8 | None = None

    def add(self, grey: U8, t: float) -> None:
        g = grey.astype(np.float32)
        bg = self._background
        self._latest = grey
        if bg is None or bg.shape != g.shape or not 0.0 <= t - self._t <= MAX_GAP_S:
            self._background, self._t, self._share, self._shift = g, t, 0.0, 0.0
            return
        diff = g - bg
        self._share = float(np.count_nonzero(np.abs(diff) > self._delta)) / g.size
        self._shift = float(diff.mean()) / 255.0
        bg += (g - bg) * min(1.0, (t - self._t) / self._tau)
        self._t = t

    def take(self) -> float | None:
        return self._share

    def brightness(self) -> float | None:
        """The latest frame's mean grey level minus the background's, / 255 (None before any)."""
        return self._shift

    def detail(self) -> float | None:
        """The latest frame's detail over its background's (`detail_of`; None before any frame
        or when the background has none to compare with: a blank view)."""
        bg, latest = self._background, self._latest
        if bg is None or latest is None or bg.shape != latest.shape:
            return None
        return detail_kept(latest, bg)


def detail_kept(grey: U8 | F32, usual: U8 | F32) -> float | None:
    """`grey`'s detail over `usual`'s (`detail_of`); None when `usual` has none to compare
    with (a blank view, under `MIN_DETAIL`)."""
    reference = detail_of(usual)
    return detail_of(grey) / reference if reference > MIN_DETAIL else None


def detail_of(grey: U8 | F32) -> float:
    """Mean gradient magnitude (Sobel) over the grey levels' standard deviation (+1: a flat view
    is 0, not a division by zero)."""
    g = np.asarray(grey, np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1)
    return float(cv2.magnitude(gx, gy).mean()) / (float(g.std()) + 1.0)
