"""Raw anomaly measures -> [0, 1] scores that mean the same on every camera.

A raw measure x (a distance, a z-score, a logit) means nothing across cameras: one view's normal
frames sit at 0.05, another's at 0.3. Calibration measures the camera's own *held-out* normal
frames (not the ones in its memory) and rescales each measure by where those frames lie:

    u = (x - median) / (edge - median)   edge = median + MARGIN * (q - median),
                                         q = the `QUANTILE` of the held-out normal values
    s = sigmoid(SLOPE * (u - CENTRE))

so u = 0 is a typical normal frame and u = 1 the edge of normal (half as far again past the
normal 99th percentile: the camera's next hours hold more than its learning minutes did). s
crosses the event thresholds at the same u on every camera: s(u = 1) = 0.30 (below `events.exit`
= 0.4) and s(u = 2) = 0.75 (above `events.enter` = 0.6). SLOPE and CENTRE follow from those two
points; they and MARGIN were chosen on the tuned synthetic kinds and normal clips only
(docs/normality.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vau.edge.types import F32

QUANTILE = 0.99
MARGIN = 1.5
# Appearance from block 10 has a longer normal tail than the last layer's: at 1.5 its frames
# crossed the event threshold on normal clips; 2.5 was chosen on the tuning sets
# (docs/normality.md, "Appearance from block 10").
MARGINS = {"appearance": 2.5}
_LOW, _HIGH = 0.30, 0.75  # s at u = 1 and u = 2
SLOPE = math.log(_HIGH / (1 - _HIGH)) - math.log(_LOW / (1 - _LOW))  # ~1.946
CENTRE = 1.0 - math.log(_LOW / (1 - _LOW)) / SLOPE  # ~1.435


@dataclass(frozen=True, slots=True)
class Calibration:
    """Where one measure's held-out normal values lie."""

    median: float
    edge: float  # median + margin * (QUANTILE of the normal values - median), > median

    @classmethod
    def of(cls, values: F32 | list[float], margin: float = MARGIN) -> Calibration:
        """From held-out normal values; a zero spread gets a small floor, never a division by 0."""
        v = np.asarray(values, np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            raise ValueError("calibration needs at least one finite value")
        median = float(np.median(v))
        edge = median + margin * (float(np.quantile(v, QUANTILE)) - median)
        floor = max(1e-6, 0.05 * abs(median))
        return cls(median, max(edge, median + floor))

    def units(self, x: F32 | float) -> F32:
        """u: 0 at the normal median, 1 at the edge of normal."""
        return np.asarray(
            (np.asarray(x, np.float32) - self.median) / (self.edge - self.median), np.float32
        )

    def score(self, x: F32 | float) -> F32:
        """s in [0, 1]."""
        u = self.units(x)
        s: F32 = (1.0 / (1.0 + np.exp(-SLOPE * (u - CENTRE)))).astype(np.float32)
        return s

    def to_list(self) -> list[float]:
        return [self.median, self.edge]
