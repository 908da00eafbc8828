"""Frozen values passed between pipeline stages.

The chain is Frame -> Tokens -> EffectiveTokens -> FrameScore -> EventUpdate -> Window. Each stage
reads one value and returns a new one; nothing downstream mutates what it was given. Array shapes
are stated next to each field (N patches, C channels, K kept tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from vau.common.arrays import F32, I64, U8

__all__ = [
    "F32",
    "I64",
    "U8",
    "EffectiveTokens",
    "EventState",
    "EventUpdate",
    "Frame",
    "FrameScore",
    "StillView",
    "Tokens",
    "Window",
]


@dataclass(frozen=True, eq=False, slots=True)
class StillView:
    """A source frame's 112 x 112 grey copy, which of its pixels stood still over the last
    second (`vau.edge.stillness`), the same copy in colour (the static part's foreground), and
    which of its pixels lingered (match the median of themselves half a second and a second
    before: at rest give or take a twitch or a flicker; the lingering part)."""

    grey: U8  # (S, S)
    still: npt.NDArray[np.bool_]  # (S, S)
    colour: U8 | None = None  # (S, S, 3) BGR; None: grey only
    lingering: npt.NDArray[np.bool_] | None = None  # (S, S); None: not measured


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame as it left the source."""

    seq: int  # source frame number, 0-based, counts every frame the source produced
    t: float  # seconds since stream start (file: position in the video; live: monotonic clock)
    wall_time: float  # UNIX time at capture, for logs and the cloud
    image: U8  # (H, W, 3) BGR, as OpenCV decodes it
    flow: float | None = None  # pixel speed since the previous kept frame, views/s (`flow`)
    pixel_change: float | None = None  # share of the view off the recent background (`view_change`)
    brightness: float | None = None  # mean grey level minus the background's, / 255 (`view_change`)
    still: StillView | None = None  # the grey copy and its still pixels (`stillness`)
    detail: float | None = None  # the view's detail over its background's (`view_change`)


@dataclass(frozen=True, slots=True)
class Tokens:
    """Encoder output for one frame."""

    seq: int
    t: float
    wall_time: float  # UNIX time the frame was captured
    patches: F32  # (N, C) patch tokens, row-major over the patch grid
    cls: F32  # (C,) class token
    grid: tuple[int, int]  # (rows, cols) of the patch grid; rows * cols == N


@dataclass(frozen=True, slots=True)
class EffectiveTokens:
    """What SETS keeps of a frame: the patches that changed most since the previous frame."""

    seq: int
    t: float
    wall_time: float
    indices: I64  # (K,) patch indices in [0, N), ascending
    tokens: F32  # (K, C) the kept patch tokens, in the order of `indices`
    distances: F32  # (K,) L1 distance of each kept patch to the previous frame
    patches: int  # N, the number of patches the frame had
    grid: tuple[int, int]
    keyframe: bool  # True when there was no previous frame to compare with (stream start, gap)

    @property
    def kept(self) -> int:
        return int(self.indices.shape[0])


@dataclass(frozen=True, slots=True)
class FrameScore:
    """A frame's anomaly likelihood, raw and smoothed, with where it is and what made it.

    `score` is the configured scorer's final score (the TETG head, the camera's normality model,
    or both fused); `components` keeps each calibrated part beside it ("head", "appearance",
    "motion", "global"), `normality` the normality model's own calibrated score (None without a
    model), and `hot` the frame's most anomalous patch indices, most anomalous first.
    """

    seq: int
    t: float
    score: float  # final score in [0, 1]
    smoothed: float  # after the event tracker's smoothing, in [0, 1]
    normality: float | None = None  # calibrated normality score in [0, 1]; None without a model
    hot: tuple[int, ...] = ()  # most anomalous patch indices in [0, N), most anomalous first
    components: tuple[tuple[str, float], ...] = ()  # (name, calibrated score in [0, 1])
    pixel_change: float | None = None  # share of the view off the recent background, [0, 1]
    brightness: float | None = None  # mean grey level minus the background's, / 255, [-1, 1]
    detail: float | None = None  # the view's detail over its background's, >= 0 (1: as usual)


class EventState(StrEnum):
    NEW = "new"
    UPDATE = "update"
    END = "end"


@dataclass(frozen=True, slots=True)
class EventUpdate:
    """A change in an anomaly event's lifecycle; `id` is stable across its updates."""

    id: str
    state: EventState
    start: float  # seconds since stream start
    end: float | None  # None while the event is open
    peak: float  # highest smoothed score so far
    peak_t: float  # when the peak happened
    prior: str  # the TET prior sentence for the language model


@dataclass(frozen=True, slots=True)
class Window:
    """An ended event's frames chosen by ATS for shipping to the cloud."""

    event_id: str
    start: float
    end: float
    seqs: tuple[int, ...]  # chosen frame seqs, ascending
    prior: str
