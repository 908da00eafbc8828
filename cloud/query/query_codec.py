"""The Query service's only contact with protobuf: vau.v1 query messages <-> domain values.

Decoders are the handlers' request deserializers: they never raise (gRPC would answer INTERNAL);
undecodable or invalid requests become `BadRequest`, answered INVALID_ARGUMENT by the servicer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from google.protobuf.message import Message

from vau.cloud.explain.schema import Explanation
from vau.cloud.query.model import (
    AskQuery,
    BadRequest,
    EventView,
    GetQuery,
    ListQuery,
    QueryError,
    WatchQuery,
    cursor_text,
    event_key,
    list_limit,
    optional_id,
    parse_cursor,
    question_text,
)
from vau.protos.v1 import query_pb2 as pb
from vau.protos.v1 import uplink_pb2 as uplink_pb

SERVICE = "vau.v1.Query"
LIST, GET, WATCH, ASK = "ListEvents", "GetEvent", "WatchEvents", "Ask"
STATES = {
    "new": uplink_pb.EVENT_STATE_NEW,
    "update": uplink_pb.EVENT_STATE_UPDATE,
    "end": uplink_pb.EVENT_STATE_END,
}
M = TypeVar("M", bound=Message)
Q = TypeVar("Q")


def _decode(data: bytes, message: type[M], build: Callable[[M], Q]) -> Q | BadRequest:
    try:
        msg = message.FromString(data)
    except Exception as exc:  # any parse failure of untrusted bytes is the sender's fault
        name = message.DESCRIPTOR.full_name
        return BadRequest(f"not a {name}: {type(exc).__name__}; send the message the method takes")
    try:
        return build(msg)
    except QueryError as exc:
        return BadRequest(str(exc))


def _key(ref: pb.EventRef) -> tuple[str, str, str]:
    return event_key(ref.device_id, ref.camera, ref.event_id)


def decode_list(data: bytes) -> ListQuery | BadRequest:
    def build(m: pb.ListEventsRequest) -> ListQuery:
        dev, cam = optional_id(m.device_id, "device_id"), optional_id(m.camera, "camera")
        return ListQuery(dev, cam, list_limit(m.limit))

    return _decode(data, pb.ListEventsRequest, build)


def decode_get(data: bytes) -> GetQuery | BadRequest:
    return _decode(data, pb.GetEventRequest, lambda m: GetQuery(_key(m.event)))


def decode_watch(data: bytes) -> WatchQuery | BadRequest:
    def build(m: pb.WatchEventsRequest) -> WatchQuery:
        dev, cam = optional_id(m.device_id, "device_id"), optional_id(m.camera, "camera")
        return WatchQuery(dev, cam, parse_cursor(m.cursor) if m.cursor else None)

    return _decode(data, pb.WatchEventsRequest, build)


def decode_ask(data: bytes) -> AskQuery | BadRequest:
    return _decode(
        data, pb.AskRequest, lambda m: AskQuery(_key(m.event), question_text(m.question))
    )


def _explanation(e: Explanation) -> pb.Explanation:
    return pb.Explanation(
        title=e.title, summary=e.summary, anomaly=e.anomaly, category=e.category,
        start=e.start, end=e.end, confidence=e.confidence, threat_level=e.threat_level,
        visual_tokens=e.visual_tokens, fallback=e.fallback, llm=e.llm,
        projector=e.projector or "", schema_version=e.schema_version,
    )  # fmt: skip


def _detail(v: EventView) -> pb.EventDetail:
    e = v.event
    msg = pb.EventDetail(
        event=pb.EventRef(device_id=e.device, camera=e.camera, event_id=e.event_id),
        state=STATES.get(e.state, uplink_pb.EVENT_STATE_UNSPECIFIED),
        start=e.start, peak=e.peak, peak_t=e.peak_t, prior=e.prior, updated=e.updated,
        cursor=cursor_text(v.position),
    )  # fmt: skip
    if e.end is not None:
        msg.end = e.end
    if v.explanation is not None:
        msg.explanation.CopyFrom(_explanation(v.explanation))
    return msg


def encode_detail(v: EventView) -> bytes:
    return _detail(v).SerializeToString()


def encode_list(views: Sequence[EventView]) -> bytes:
    return pb.ListEventsResponse(events=[_detail(v) for v in views]).SerializeToString()


def encode_answer(e: Explanation) -> bytes:
    return pb.AskResponse(answer=_explanation(e)).SerializeToString()
