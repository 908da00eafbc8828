from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[DType]
    DTYPE_FLOAT16: _ClassVar[DType]
    DTYPE_INT8: _ClassVar[DType]
    DTYPE_FLOAT32: _ClassVar[DType]

class EventState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_STATE_UNSPECIFIED: _ClassVar[EventState]
    EVENT_STATE_NEW: _ClassVar[EventState]
    EVENT_STATE_UPDATE: _ClassVar[EventState]
    EVENT_STATE_END: _ClassVar[EventState]
DTYPE_UNSPECIFIED: DType
DTYPE_FLOAT16: DType
DTYPE_INT8: DType
DTYPE_FLOAT32: DType
EVENT_STATE_UNSPECIFIED: EventState
EVENT_STATE_NEW: EventState
EVENT_STATE_UPDATE: EventState
EVENT_STATE_END: EventState

class EdgeMessage(_message.Message):
    __slots__ = ("hello", "record")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    record: Record
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., record: _Optional[_Union[Record, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("device_id", "cameras", "epoch", "agent_version")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    cameras: _containers.RepeatedScalarFieldContainer[str]
    epoch: int
    agent_version: str
    def __init__(self, device_id: _Optional[str] = ..., cameras: _Optional[_Iterable[str]] = ..., epoch: _Optional[int] = ..., agent_version: _Optional[str] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("camera", "epoch", "seq", "capture_time", "t", "frame", "event", "window", "summary")
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    T_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    camera: str
    epoch: int
    seq: int
    capture_time: float
    t: float
    frame: FrameTokens
    event: EventChange
    window: WindowMarker
    summary: ScoreSummary
    def __init__(self, camera: _Optional[str] = ..., epoch: _Optional[int] = ..., seq: _Optional[int] = ..., capture_time: _Optional[float] = ..., t: _Optional[float] = ..., frame: _Optional[_Union[FrameTokens, _Mapping]] = ..., event: _Optional[_Union[EventChange, _Mapping]] = ..., window: _Optional[_Union[WindowMarker, _Mapping]] = ..., summary: _Optional[_Union[ScoreSummary, _Mapping]] = ...) -> None: ...

class FrameTokens(_message.Message):
    __slots__ = ("frame_seq", "dtype", "shape", "tokens", "scales", "indices", "grid_rows", "grid_cols", "score", "smoothed", "keyframe", "event_id", "hot", "normality", "components", "pixel_change", "brightness", "detail")
    class ComponentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FRAME_SEQ_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    SCALES_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    GRID_ROWS_FIELD_NUMBER: _ClassVar[int]
    GRID_COLS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SMOOTHED_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    HOT_FIELD_NUMBER: _ClassVar[int]
    NORMALITY_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    PIXEL_CHANGE_FIELD_NUMBER: _ClassVar[int]
    BRIGHTNESS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    frame_seq: int
    dtype: DType
    shape: _containers.RepeatedScalarFieldContainer[int]
    tokens: bytes
    scales: bytes
    indices: _containers.RepeatedScalarFieldContainer[int]
    grid_rows: int
    grid_cols: int
    score: float
    smoothed: float
    keyframe: bool
    event_id: str
    hot: _containers.RepeatedScalarFieldContainer[int]
    normality: float
    components: _containers.ScalarMap[str, float]
    pixel_change: float
    brightness: float
    detail: float
    def __init__(self, frame_seq: _Optional[int] = ..., dtype: _Optional[_Union[DType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., tokens: _Optional[bytes] = ..., scales: _Optional[bytes] = ..., indices: _Optional[_Iterable[int]] = ..., grid_rows: _Optional[int] = ..., grid_cols: _Optional[int] = ..., score: _Optional[float] = ..., smoothed: _Optional[float] = ..., keyframe: _Optional[bool] = ..., event_id: _Optional[str] = ..., hot: _Optional[_Iterable[int]] = ..., normality: _Optional[float] = ..., components: _Optional[_Mapping[str, float]] = ..., pixel_change: _Optional[float] = ..., brightness: _Optional[float] = ..., detail: _Optional[float] = ...) -> None: ...

class EventChange(_message.Message):
    __slots__ = ("event_id", "state", "start", "end", "peak", "peak_t", "prior")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    PEAK_T_FIELD_NUMBER: _ClassVar[int]
    PRIOR_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    state: EventState
    start: float
    end: float
    peak: float
    peak_t: float
    prior: str
    def __init__(self, event_id: _Optional[str] = ..., state: _Optional[_Union[EventState, str]] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., peak: _Optional[float] = ..., peak_t: _Optional[float] = ..., prior: _Optional[str] = ...) -> None: ...

class WindowMarker(_message.Message):
    __slots__ = ("event_id", "start", "end", "frame_seqs", "prior")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    FRAME_SEQS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    start: float
    end: float
    frame_seqs: _containers.RepeatedScalarFieldContainer[int]
    prior: str
    def __init__(self, event_id: _Optional[str] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., frame_seqs: _Optional[_Iterable[int]] = ..., prior: _Optional[str] = ...) -> None: ...

class ScoreSummary(_message.Message):
    __slots__ = ("start", "end", "frames", "min", "mean", "max")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    start: float
    end: float
    frames: int
    min: float
    mean: float
    max: float
    def __init__(self, start: _Optional[float] = ..., end: _Optional[float] = ..., frames: _Optional[int] = ..., min: _Optional[float] = ..., mean: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class CloudMessage(_message.Message):
    __slots__ = ("hello_ack", "ack", "flow")
    HELLO_ACK_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    hello_ack: HelloAck
    ack: Ack
    flow: FlowControl
    def __init__(self, hello_ack: _Optional[_Union[HelloAck, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., flow: _Optional[_Union[FlowControl, _Mapping]] = ...) -> None: ...

class HelloAck(_message.Message):
    __slots__ = ("device_id", "resume_after", "max_in_flight", "max_message_bytes")
    class ResumeAfterEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    resume_after: _containers.ScalarMap[str, int]
    max_in_flight: int
    max_message_bytes: int
    def __init__(self, device_id: _Optional[str] = ..., resume_after: _Optional[_Mapping[str, int]] = ..., max_in_flight: _Optional[int] = ..., max_message_bytes: _Optional[int] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("camera", "epoch", "seq")
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    camera: str
    epoch: int
    seq: int
    def __init__(self, camera: _Optional[str] = ..., epoch: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

class FlowControl(_message.Message):
    __slots__ = ("pause_ms", "reason")
    PAUSE_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    pause_ms: int
    reason: str
    def __init__(self, pause_ms: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
