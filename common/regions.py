"""The named 3x3 regions of a view ("upper left" ... "centre" ... "lower right") and the rules
that name where, which way and when the whole view changed, shared by the cloud's facts, the
edge's pixel measure and the synthesiser's ground truth so all speak one vocabulary."""

from __future__ import annotations

import math
from typing import Literal

Movement = Literal["none", "left", "right", "up", "down", "mixed"]
MOVEMENTS: tuple[Movement, ...] = ("none", "left", "right", "up", "down", "mixed")

_ROWS = ("upper", "centre", "lower")
_COLS = ("left", "centre", "right")
REGIONS = tuple(
    "centre" if r == c == "centre" else f"{r} {c}" for r in _ROWS for c in _COLS
)  # row by row, upper left first

MOVE_MIN = 0.15  # views: the centre must travel this far to count as moving
DOMINANT = 2.0  # one axis must dominate the other this many times

PIXEL_DELTA = 25  # grey levels (of 255) a pixel must move by to count as changed
VIEW_CHANGE_SHARE = 0.5  # a view change: this share of the view changed, on average (most of it)
# or the view kept at most this share of its usual detail, on average (`view_change.detail_of`):
# defocused or covered, though under half its pixels changed (a plain wall or sky does not change
# when blurred); on the tuning sets every other kind kept 0.83 or more, a tamper 0.29-0.76
DETAIL_LOST = 0.7


def region_name(index: int, grid: tuple[int, int]) -> str:
    """The 3x3 named region of a cell index on a rows x cols grid."""
    rows, cols = grid
    r, c = divmod(index, cols)
    return REGIONS[3 * min(2, r * 3 // rows) + min(2, c * 3 // cols)]


def direction(dx: float, dy: float) -> Movement:
    """The way a net displacement (view widths, heights; y grows downwards) points."""
    if math.hypot(dx, dy) < MOVE_MIN:
        return "none"
    if abs(dx) >= DOMINANT * abs(dy):
        return "right" if dx > 0 else "left"
    if abs(dy) >= DOMINANT * abs(dx):
        return "down" if dy > 0 else "up"
    return "mixed"
