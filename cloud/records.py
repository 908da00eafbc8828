"""Frozen values the cloud passes between ingest stages, and the errors a stream can end with.

Wire values (`WireFrame`, `WireRecord`, ...) are what the codec read off the wire, unchecked; the
validator turns a `WireRecord` into an `AcceptedRecord` whose body is typed and bounded, or raises
`RecordRejected`. Outgoing values (`HelloReply`, `AckOut`, `PauseOut`) are what the codec writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from vau.edge.types import F32, I64

RecordKind = Literal["frame", "event", "window", "summary"]
EventStateName = Literal["new", "update", "end"]


# ----- from the wire, unchecked -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    device_id: str
    cameras: Sequence[str]  # the validator turns the wire's view into a bounded tuple
    epoch: int
    agent_version: str


@dataclass(frozen=True, slots=True)
class WireFrame:
    frame_seq: int
    dtype: int  # the wire enum value; the validator maps it to a TokenDType
    shape: Sequence[int]  # claimed [K, C]; a view of the message, length unchecked
    tokens: bytes
    scales: bytes
    indices: Sequence[int]  # a view of the message, length unchecked
    grid: tuple[int, int]
    score: float
    smoothed: float
    keyframe: bool
    event_id: str
    hot: Sequence[int]  # a view of the message, length unchecked
    normality: float | None  # None: the field is unset
    components: Mapping[str, float]  # a view of the message, size unchecked
    pixel_change: float | None = None  # None: the field is unset
    brightness: float | None = None  # None: the field is unset
    detail: float | None = None  # None: the field is unset


@dataclass(frozen=True, slots=True)
class EventChange:
    event_id: str
    state: EventStateName
    start: float
    end: float | None  # set only when state is "end"
    peak: float
    peak_t: float
    prior: str


@dataclass(frozen=True, slots=True)
class WireEvent:
    event_id: str
    state: int  # the wire enum value; the validator maps it to an EventStateName
    start: float
    end: float | None
    peak: float
    peak_t: float
    prior: str


@dataclass(frozen=True, slots=True)
class WindowMarker:
    event_id: str
    start: float
    end: float
    frame_seqs: Sequence[int]  # a view of the message until validated, then a tuple
    prior: str


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    start: float
    end: float
    frames: int
    min: float
    mean: float
    max: float


WireBody = WireFrame | WireEvent | WindowMarker | ScoreSummary | None


@dataclass(frozen=True, slots=True)
class WireRecord:
    camera: str
    epoch: int
    seq: int
    capture_time: float
    t: float
    body: WireBody  # None: no body set (or one this version does not know)
    raw: bytes  # the serialized vau.v1.Record, stored as the durable body


@dataclass(frozen=True, slots=True)
class Malformed:
    """Bytes that are not an EdgeMessage, or an EdgeMessage with no body."""

    detail: str


EdgeIn = Hello | WireRecord | Malformed


# ----- validated ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenFrame:
    frame_seq: int
    tokens: F32  # (K, C) decoded to float32
    indices: I64  # (K,) strictly ascending patch indices in [0, rows * cols)
    grid: tuple[int, int]  # (rows, cols)
    score: float  # [0, 1]
    smoothed: float  # [0, 1]
    keyframe: bool
    event_id: str
    hot: I64  # (H,) unique patch indices in [0, rows * cols), most anomalous first; H may be 0
    normality: float | None  # [0, 1]; None: the edge has no normality model
    components: tuple[tuple[str, float], ...]  # (name, score in [0, 1]), sorted by name
    pixel_change: float | None = None  # [0, 1]; None: the edge did not measure it
    brightness: float | None = None  # [-1, 1]; None: the edge did not measure it
    detail: float | None = None  # >= 0 (1: as usual); None: the edge did not measure it


RecordBody = TokenFrame | EventChange | WindowMarker | ScoreSummary


@dataclass(frozen=True, slots=True)
class AcceptedRecord:
    """A record that passed validation; (device, camera, epoch, seq) is its identity."""

    device: str  # from the credential, never from the payload
    camera: str
    epoch: int
    seq: int
    capture_time: float  # UNIX seconds
    t: float  # seconds since the camera's stream started
    kind: RecordKind
    body: RecordBody
    raw: bytes  # the serialized vau.v1.Record as received


# ----- to the wire --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HelloReply:
    device_id: str
    resume_after: Mapping[str, int]
    max_in_flight: int
    max_message_bytes: int


@dataclass(frozen=True, slots=True)
class AckOut:
    camera: str
    epoch: int
    seq: int


@dataclass(frozen=True, slots=True)
class PauseOut:
    pause_ms: int
    reason: str


CloudOut = HelloReply | AckOut | PauseOut


# ----- how a stream ends --------------------------------------------------------------------


class RecordRejected(Exception):  # noqa: N818 (the name the protocol docs use)
    """Bad input -> INVALID_ARGUMENT. `reason` is a short machine label (the metric label)."""

    def __init__(self, reason: str, camera: str = "", seq: int = 0, detail: str = "") -> None:
        self.reason, self.camera, self.seq, self.detail = reason, camera, seq, detail
        where = f" (camera {camera!r}, seq {seq})" if camera or seq else ""
        super().__init__(f"rejected: {reason}{where}: {detail}" if detail else reason + where)


class AuthError(Exception):
    """reason "unauthenticated" -> UNAUTHENTICATED; "permission" -> PERMISSION_DENIED."""

    def __init__(self, reason: Literal["unauthenticated", "permission"], detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


class AdmissionError(Exception):
    """Admission refused: reason "streams" or "rate" -> RESOURCE_EXHAUSTED."""

    def __init__(self, reason: Literal["streams", "rate"], detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


class StreamStoppedError(Exception):
    """The server ended a healthy stream: "superseded" -> ABORTED, "shutdown" -> UNAVAILABLE."""

    def __init__(self, reason: Literal["superseded", "shutdown"]) -> None:
        self.reason = reason
        super().__init__(
            "superseded by a newer stream from the same device"
            if reason == "superseded"
            else "server shutting down; reconnect and resume"
        )
