"""What a synthetic anomaly really is, measured where the synthesiser draws it.

The synthesiser has every anomalous frame next to the real frame it was drawn on, so where and
which way the anomaly went is known exactly: the pixels the effect changed. Explanations are
scored against this (`vau-cloud eval-explanations`); nothing here feeds the edge or the cloud.

Per span frame, the changed pixels (any channel moved by more than `PIXEL_DELTA`) are counted on
a `GRID` x `GRID` grid of cells (a cell is changed when `CELL_SHARE` of its pixels are); over the
span:

- where: the named 3x3 regions (`vau.common.regions`) holding at least `REGION_MIN` of the
  changed cells, largest share first;
- view_change: on average at least `VIEW_CHANGE_SHARE` of the cells changed (covered, defocused,
  moved, lights) — the share the cloud's facts ask of the edge's `pixel_change` — or the frames
  kept on average at most `DETAIL_LOST` of the source's detail (`view_change.detail_kept` on the
  112 px grey copies the edge measures: a defocused lens over a view with a plain wall or sky
  changes under half the cells, yet it is the whole view that went soft) — the detail the
  cloud's facts ask of the edge's `detail`;
- movement: the changed cells' centre, first frame with any to the last, by the facts' rule
  (`regions.direction`); `none` for a view change;
- share: the mean share of the view changed; detail: the mean detail kept.

`running` draws nothing (the span skips frames), so it has no truth of where or which way: only
view_change = False; `where` and `movement` are None ("not scored").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vau.common.regions import (
    DETAIL_LOST,
    PIXEL_DELTA,
    REGIONS,
    VIEW_CHANGE_SHARE,
    direction,
    region_name,
)
from vau.edge.flow import grey_of, shrink
from vau.edge.types import U8
from vau.edge.view_change import detail_kept

GRID = 16
CELL_SHARE = 0.1  # a cell changed when this share of its pixels did
REGION_MIN = 0.2  # a region is named when it holds this share of the changed cells


@dataclass(frozen=True, slots=True)
class FrameChange:
    """Where one rendered frame differs from its source frame."""

    cells: tuple[int, ...]  # changed cells on the GRID x GRID grid, row by row
    detail: float = 1.0  # the rendered frame's detail over the source's (`detail_kept`)

    @property
    def share(self) -> float:
        return len(self.cells) / (GRID * GRID)

    def centre(self) -> tuple[float, float] | None:
        if not self.cells:
            return None
        r, c = np.divmod(np.asarray(self.cells), GRID)
        return float((c + 0.5).mean() / GRID), float((r + 0.5).mean() / GRID)


def frame_change(source: U8, rendered: U8) -> FrameChange:
    """(H, W, 3) source and rendered frames -> the changed cells."""
    moved = (np.abs(rendered.astype(np.int16) - source).max(axis=2) > PIXEL_DELTA).astype(
        np.float32
    )
    cells = cv2.resize(moved, (GRID, GRID), interpolation=cv2.INTER_AREA)
    changed = tuple(int(i) for i in np.flatnonzero(cells.reshape(-1) >= CELL_SHARE))
    kept = detail_kept(grey_of(shrink(rendered)), grey_of(shrink(source)))
    return FrameChange(changed, 1.0 if kept is None else kept)


def clip_truth(kind: str, changes: Sequence[FrameChange]) -> dict[str, Any]:
    """The truth of one clip's span from its frames' changes (in order); JSON-ready."""
    if kind == "running" or not changes:
        return {"where": None, "movement": None, "view_change": False, "share": 0.0}
    share = float(np.mean([c.share for c in changes]))
    detail = float(np.mean([c.detail for c in changes]))
    counts = np.zeros(len(REGIONS))
    for c in changes:
        for i in c.cells:
            counts[REGIONS.index(region_name(i, (GRID, GRID)))] += 1
    total = counts.sum()
    order = np.argsort(-counts, kind="stable")
    where = [REGIONS[i] for i in order if total and counts[i] / total >= REGION_MIN]
    view = share >= VIEW_CHANGE_SHARE or detail <= DETAIL_LOST
    track = [p for p in (c.centre() for c in changes) if p is not None]
    move = "none"
    if not view and len(track) >= 2:
        move = direction(track[-1][0] - track[0][0], track[-1][1] - track[0][1])
    return {
        "where": where,
        "movement": move,
        "view_change": bool(view),
        "share": round(share, 3),
        "detail": round(detail, 3),
    }
