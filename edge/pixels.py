"""What the pixels of every source frame say, kept or not: each is shrunk once to a 112 px copy
(`flow.shrink`) and its grey levels (`flow.grey_of`) are measured three times: for its speed
(`flow.FlowMeter`), for how much of the view departs from the camera's recent background
(`view_change.ViewChange`) and for which pixels stood still over the last second
(`stillness.Stillness`, which also keeps the latest copy's colours for the static part's
foreground). A kept frame carries them all (`Frame.flow`, `Frame.pixel_change`,
`Frame.brightness`, `Frame.detail`, `Frame.still`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from vau.edge.flow import FlowMeter, grey_of, shrink
from vau.edge.stillness import Stillness
from vau.edge.types import U8, StillView
from vau.edge.view_change import ViewChange


@dataclass(frozen=True, slots=True)
class PixelReading:
    flow: float | None  # mean pixel speed since the last take, views/s; None: no pair measured
    pixel_change: float | None  # share of the latest frame off the background; None: no frame
    brightness: float | None = None  # its mean grey level minus the background's, / 255
    detail: float | None = None  # its detail over the background's (`view_change.detail_of`)
    still: StillView | None = None  # its copies and still pixels; None: under a second seen


class PixelMeter:
    """Feed it every source frame (`add`); `take` when a frame is kept."""

    def __init__(self) -> None:
        self.flow = FlowMeter()
        self.view = ViewChange()
        self.still = Stillness()
        self.seconds = 0.0  # spent measuring, for `vau-edge bench`

    def add(self, image: U8, t: float) -> None:
        t0 = time.perf_counter()
        colour = shrink(image)
        g = grey_of(colour)
        self.flow.add(g, t)
        self.view.add(g, t)
        self.still.add(g, t, colour)
        self.seconds += time.perf_counter() - t0

    def take(self) -> PixelReading:
        return PixelReading(
            self.flow.take(),
            self.view.take(),
            brightness=self.view.brightness(),
            detail=self.view.detail(),
            still=self.still.take(),
        )
