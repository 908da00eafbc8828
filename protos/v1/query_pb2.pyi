from vau.protos.v1 import uplink_pb2 as _uplink_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventRef(_message.Message):
    __slots__ = ("device_id", "camera", "event_id")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    camera: str
    event_id: str
    def __init__(self, device_id: _Optional[str] = ..., camera: _Optional[str] = ..., event_id: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("device_id", "camera", "limit")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    camera: str
    limit: int
    def __init__(self, device_id: _Optional[str] = ..., camera: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[EventDetail]
    def __init__(self, events: _Optional[_Iterable[_Union[EventDetail, _Mapping]]] = ...) -> None: ...

class GetEventRequest(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: EventRef
    def __init__(self, event: _Optional[_Union[EventRef, _Mapping]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("device_id", "camera", "cursor")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    camera: str
    cursor: str
    def __init__(self, device_id: _Optional[str] = ..., camera: _Optional[str] = ..., cursor: _Optional[str] = ...) -> None: ...

class EventDetail(_message.Message):
    __slots__ = ("event", "state", "start", "end", "peak", "peak_t", "prior", "updated", "explanation", "cursor")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    PEAK_T_FIELD_NUMBER: _ClassVar[int]
    PRIOR_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    event: EventRef
    state: _uplink_pb2.EventState
    start: float
    end: float
    peak: float
    peak_t: float
    prior: str
    updated: float
    explanation: Explanation
    cursor: str
    def __init__(self, event: _Optional[_Union[EventRef, _Mapping]] = ..., state: _Optional[_Union[_uplink_pb2.EventState, str]] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., peak: _Optional[float] = ..., peak_t: _Optional[float] = ..., prior: _Optional[str] = ..., updated: _Optional[float] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., cursor: _Optional[str] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("title", "summary", "anomaly", "category", "start", "end", "confidence", "threat_level", "visual_tokens", "fallback", "llm", "projector", "schema_version")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    THREAT_LEVEL_FIELD_NUMBER: _ClassVar[int]
    VISUAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    LLM_FIELD_NUMBER: _ClassVar[int]
    PROJECTOR_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    title: str
    summary: str
    anomaly: bool
    category: str
    start: float
    end: float
    confidence: float
    threat_level: int
    visual_tokens: bool
    fallback: bool
    llm: str
    projector: str
    schema_version: int
    def __init__(self, title: _Optional[str] = ..., summary: _Optional[str] = ..., anomaly: _Optional[bool] = ..., category: _Optional[str] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., confidence: _Optional[float] = ..., threat_level: _Optional[int] = ..., visual_tokens: _Optional[bool] = ..., fallback: _Optional[bool] = ..., llm: _Optional[str] = ..., projector: _Optional[str] = ..., schema_version: _Optional[int] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("event", "question")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    event: EventRef
    question: str
    def __init__(self, event: _Optional[_Union[EventRef, _Mapping]] = ..., question: _Optional[str] = ...) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("answer",)
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    answer: Explanation
    def __init__(self, answer: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...
