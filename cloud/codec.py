"""The cloud's only contact with protobuf: vau.v1 bytes <-> domain values.

`decode_edge` is the stream's request deserializer: it never raises (gRPC would answer INTERNAL),
garbage becomes `Malformed`. It copies nothing proportional to claimed sizes: token bytes are the
message's own, repeated fields stay views until the validator has checked their lengths.
"""

from __future__ import annotations

from vau.cloud.records import (
    AckOut,
    CloudOut,
    EdgeIn,
    EventStateName,
    Hello,
    HelloReply,
    Malformed,
    PauseOut,
    ScoreSummary,
    WindowMarker,
    WireBody,
    WireEvent,
    WireFrame,
    WireRecord,
)
from vau.protos.v1 import uplink_pb2 as pb

DTYPE_FLOAT16, DTYPE_INT8, DTYPE_FLOAT32 = pb.DTYPE_FLOAT16, pb.DTYPE_INT8, pb.DTYPE_FLOAT32
EVENT_STATES: dict[int, EventStateName] = {
    pb.EVENT_STATE_NEW: "new",
    pb.EVENT_STATE_UPDATE: "update",
    pb.EVENT_STATE_END: "end",
}

SERVICE = "vau.v1.Uplink"
METHOD = "Stream"
FULL_METHOD = f"/{SERVICE}/{METHOD}"


def decode_edge(data: bytes) -> EdgeIn:
    """One EdgeMessage from the wire; never raises."""
    try:
        msg = pb.EdgeMessage.FromString(data)
    except Exception as exc:  # any parse failure of untrusted bytes is the sender's fault
        return Malformed(f"not a vau.v1.EdgeMessage: {type(exc).__name__}")
    kind = msg.WhichOneof("body")
    if kind == "hello":
        h = msg.hello
        return Hello(h.device_id, h.cameras, h.epoch, h.agent_version)
    if kind == "record":
        return _record(msg.record, msg.record.SerializeToString())
    return Malformed("EdgeMessage has neither hello nor record")


def decode_record(raw: bytes) -> WireRecord:
    """A stored record body (serialized vau.v1.Record) back to its wire value."""
    return _record(pb.Record.FromString(raw), raw)


def _record(r: pb.Record, raw: bytes) -> WireRecord:
    return WireRecord(r.camera, r.epoch, r.seq, r.capture_time, r.t, _body(r), raw)


def _body(r: pb.Record) -> WireBody:
    kind = r.WhichOneof("body")
    if kind == "frame":
        return _frame(r.frame)
    if kind == "event":
        e = r.event
        end = e.end if e.HasField("end") else None
        return WireEvent(e.event_id, e.state, e.start, end, e.peak, e.peak_t, e.prior)
    if kind == "window":
        w = r.window
        return WindowMarker(w.event_id, w.start, w.end, w.frame_seqs, w.prior)
    if kind == "summary":
        s = r.summary
        return ScoreSummary(s.start, s.end, s.frames, s.min, s.mean, s.max)
    return None


def _frame(f: pb.FrameTokens) -> WireFrame:
    return WireFrame(
        frame_seq=f.frame_seq,
        dtype=f.dtype,
        shape=f.shape,
        tokens=f.tokens,
        scales=f.scales,
        indices=f.indices,
        grid=(f.grid_rows, f.grid_cols),
        score=f.score,
        smoothed=f.smoothed,
        keyframe=f.keyframe,
        event_id=f.event_id,
        hot=f.hot,
        normality=f.normality if f.HasField("normality") else None,
        components=f.components,
        pixel_change=f.pixel_change if f.HasField("pixel_change") else None,
        brightness=f.brightness if f.HasField("brightness") else None,
        detail=f.detail if f.HasField("detail") else None,
    )


def encode_cloud(out: CloudOut) -> bytes:
    """One CloudMessage for the wire (the stream's response serializer)."""
    if isinstance(out, HelloReply):
        msg = pb.CloudMessage(
            hello_ack=pb.HelloAck(
                device_id=out.device_id,
                resume_after=dict(out.resume_after),
                max_in_flight=out.max_in_flight,
                max_message_bytes=out.max_message_bytes,
            )
        )
    elif isinstance(out, AckOut):
        msg = pb.CloudMessage(ack=pb.Ack(camera=out.camera, epoch=out.epoch, seq=out.seq))
    else:
        msg = pb.CloudMessage(flow=_flow(out))
    return msg.SerializeToString()


def _flow(out: PauseOut) -> pb.FlowControl:
    return pb.FlowControl(pause_ms=out.pause_ms, reason=out.reason)
