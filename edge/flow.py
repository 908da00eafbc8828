"""Pixel motion between consecutive source frames: how fast things move, seen at the source's rate.

The encoder sees 2 frames a second. Between two of them a walker moves about a patch and someone
running three; the token change saturates once a patch is left, and the 16 x 16 grid is too
coarse to tell one speed from another (the token-flow `speed` part could not: docs/normality.md).
The source itself delivers 10-30 frames a second, and between two of those even a runner moves a
few pixels, which optical flow measures well. So every source frame, kept or not, is shrunk to a
112 x 112 grey copy and DIS optical flow (OpenCV, ultrafast preset) is taken against the one
before; a frame's speed is the 99th percentile of the flow's magnitude (the fastest 1 % of the
view: a person or two), in view widths per second. A kept frame carries the mean speed of the
pairs since the previous kept frame (`Frame.flow`), and the normality model calibrates it like
its other parts (`flow`).

Pairs more than `MAX_GAP_S` apart are not measured (a source below 5 fps, a stall): flow across a
long gap is not motion. About 0.5 ms a source frame on this CPU (`vau-edge bench`: 2.1-2.5 ms a
kept frame at 10 -> 2 fps), on the camera's reader thread. A Jetson has an optical-flow engine
(NVOFA) that would take it off the CPU; not written here.
"""

from __future__ import annotations

import cv2
import numpy as np

from vau.edge.types import U8

SIZE = 112  # the grey copy's side, pixels
MAX_GAP_S = 0.25  # pairs further apart are not measured
QUANTILE = 0.99  # a pair's speed: this quantile of the flow's magnitude


def shrink(image: U8) -> U8:
    """(H, W, 3) BGR -> (SIZE, SIZE, 3) BGR; linear to twice the size, then area (cheap, and
    without the aliasing of one linear step from 1080p)."""
    half = cv2.resize(image, (2 * SIZE, 2 * SIZE), interpolation=cv2.INTER_LINEAR)
    return np.asarray(cv2.resize(half, (SIZE, SIZE), interpolation=cv2.INTER_AREA), np.uint8)


def grey_of(copy: U8) -> U8:
    """A shrunk BGR copy's grey levels."""
    return np.asarray(cv2.cvtColor(copy, cv2.COLOR_BGR2GRAY), np.uint8)


def grey(image: U8) -> U8:
    """(H, W, 3) BGR -> (SIZE, SIZE) grey (`shrink`, then `grey_of`)."""
    return grey_of(shrink(image))


class FlowMeter:
    """Feed it every source frame's grey copy (`add`); `take` gives the mean speed since the last
    take (None when no pair was measured)."""

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._last: tuple[float, U8] | None = None
        self._speeds: list[float] = []
        self._flow = np.zeros((SIZE, SIZE, 2), np.float32)  # the output (no initial flow)

    def add(self, g: U8, t: float) -> None:
        """One source frame's grey copy (`grey`; `vau.edge.pixels` shrinks once for all)."""
        if self._last is not None and 0.0 < t - self._last[0] <= MAX_GAP_S:
            flow = np.asarray(self._dis.calc(self._last[1], g, self._flow), np.float32)
            magnitude = np.hypot(flow[..., 0], flow[..., 1]).ravel()
            k = int(QUANTILE * (magnitude.size - 1))
            fast = float(np.partition(magnitude, k)[k])
            self._speeds.append(fast / SIZE / (t - self._last[0]))
        self._last = (t, g)

    def take(self) -> float | None:
        speeds, self._speeds = self._speeds, []
        return float(np.mean(speeds)) if speeds else None
