"""Which pixels have stood still for the last second: half of the edge's word on something that
appeared and stayed (a bag left behind, a person lying down, a cover over the lens).

The tokens' appearance part sees a new thing only as one or two unusual patches among 256, and a
person walking somewhere new looks as unusual. What tells them apart is that one stays put. The
classic answer is two backgrounds (Porikli et al., "Robust abandoned object detection using dual
foregrounds", 2008): a pixel that differs from the camera's long-term background but no longer
from its short-term one belongs to something that arrived and stopped. Here the long-term
background is the normality model's (`NormalityModel.background`: the median of the camera's
learning footage, which people walking through do not reach), and the short-term one is the last
`STILL_S` seconds of source frames: a pixel is *still* when no source frame of that second
differs from the latest by more than `DELTA` grey levels (the project's per-pixel change,
`vau.common.regions.PIXEL_DELTA`). The model takes the two together (`model.static_map`).

Every source frame's 112 x 112 grey copy (the one `vau.edge.flow` measures) goes in, with its
colour copy; a kept frame takes the latest copies with the still mask (`StillView`), or None
until a second of frames has been seen. Stillness is judged on grey levels (judged on colour, a
pixel counts as moved more often and the static part ranked the tuning sets' anomalies worse:
docs/normality.md, "The static part's foreground in colour"); the colour copy is for the
static part's foreground, which the grey levels alone miss where a thing differs from what it
covers in hue more than in brightness. After a gap in the source the history restarts, as the
view change's background does (`view_change.MAX_GAP_S`). Measured here: 0.001 ms a source frame
to keep the history, 0.13 ms a kept frame for the mask.

A second, looser mask goes with it (`lingering`, for the model's lingering part): a pixel
lingers when it matches the median of itself and the same pixel half a second and a second
before. One second of strict stillness loses every pixel along the edges of a thing at rest
that twitches, flickers or drifts (a person lying down, a flame, a haze); a walker passes a
pixel in well under a second and is never the median of three copies half a second apart.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from vau.common.regions import PIXEL_DELTA
from vau.edge.types import U8, StillView
from vau.edge.view_change import MAX_GAP_S

STILL_S = 1.0  # seconds a pixel must have stood still (chosen on the tuning set: 1 over 2 and 3)
DELTA = PIXEL_DELTA  # grey levels a pixel may move and still count as still


class Stillness:
    """Feed it every source frame's grey copy (`add`); `take` when a frame is kept."""

    def __init__(self, still_s: float = STILL_S, delta: int = DELTA) -> None:
        if still_s <= 0 or delta < 0:
            raise ValueError("still_s must be positive and delta not negative")
        self._still_s, self._delta = still_s, delta
        self._history: deque[tuple[float, U8]] = deque()
        self._colour: U8 | None = None  # the latest frame's colour copy

    def add(self, grey: U8, t: float, colour: U8 | None = None) -> None:
        h = self._history
        if h and (not 0.0 <= t - h[-1][0] <= MAX_GAP_S or h[-1][1].shape != grey.shape):
            h.clear()
        h.append((t, grey))
        self._colour = colour if colour is not None and colour.shape[:2] == grey.shape else None
        while len(h) > 1 and t - h[1][0] >= self._still_s - 1e-6:
            h.popleft()  # keep the newest frame at least `still_s` old, and none older

    def take(self) -> StillView | None:
        """The latest copies and which of their pixels stood still over the last `still_s`
        seconds; None until that much footage has been seen since the last gap."""
        h = self._history
        if len(h) < 2 or h[-1][0] - h[0][0] < self._still_s - 1e-6:
            return None
        t, newest = h[-1]
        latest = newest.astype(np.int16)
        moved = np.zeros(latest.shape, bool)
        for _, g in list(h)[:-1]:
            moved |= np.abs(g.astype(np.int16) - latest) > self._delta
        half = min(h, key=lambda x: abs(t - self._still_s / 2 - x[0]))[1]
        rest = lingering(newest, half, h[0][1], self._delta)
        return StillView(newest, ~moved, self._colour, rest)


def lingering(latest: U8, half: U8, oldest: U8, delta: int = DELTA) -> npt.NDArray[np.bool_]:
    """(S, S) pixels of `latest` within `delta` grey levels of the median of themselves and the
    same pixels in two earlier copies (the edge takes half a second and a second before): what
    was there in at least one of them, or between the two. A walker crosses a pixel in well
    under a second and is never the median; a thing at rest that twitches (a person lying),
    flickers (a fire) or drifts slowly (a haze) mostly is, where a still-for-a-second test
    loses every pixel along its moving edges."""
    a, b, c = (x.astype(np.int16) for x in (latest, half, oldest))
    median = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    return np.asarray(np.abs(a - median) <= delta)
