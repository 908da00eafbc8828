"""The edge's only contact with protobuf: domain values <-> vau.v1 messages.

Record bodies are encoded once, when the pipeline produces them, and stored as bytes in the outbox;
the sender adds camera, epoch and seq when it puts them on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

from vau.common.tokens import EncodedTokens, TokenDType, encode_tokens
from vau.edge.types import EffectiveTokens, EventState, EventUpdate, FrameScore, Window
from vau.protos.v1 import uplink_pb2 as pb

_DTYPES = {"fp16": pb.DTYPE_FLOAT16, "int8": pb.DTYPE_INT8, "fp32": pb.DTYPE_FLOAT32}
_STATES = {
    EventState.NEW: pb.EVENT_STATE_NEW,
    EventState.UPDATE: pb.EVENT_STATE_UPDATE,
    EventState.END: pb.EVENT_STATE_END,
}


def frame_body(
    eff: EffectiveTokens,
    score: FrameScore,
    dtype: TokenDType,
    event_id: str = "",
    encoded: EncodedTokens | None = None,
) -> bytes:
    """A frame record; `encoded`: its tokens already encoded in `dtype` (else `eff.tokens`)."""
    enc = encoded if encoded is not None else encode_tokens(eff.tokens, dtype)
    rows, cols = eff.grid
    record = pb.Record(
        capture_time=eff.wall_time,
        t=eff.t,
        frame=pb.FrameTokens(
            frame_seq=eff.seq,
            dtype=_DTYPES[dtype],
            shape=list(enc.shape),
            tokens=enc.data,
            scales=enc.scales,
            indices=eff.indices.tolist(),
            grid_rows=rows,
            grid_cols=cols,
            score=score.score,
            smoothed=score.smoothed,
            keyframe=eff.keyframe,
            event_id=event_id,
            hot=list(score.hot),
            normality=score.normality,  # None leaves the optional field unset
            components=dict(score.components),
            pixel_change=score.pixel_change,  # None leaves the optional field unset
            brightness=score.brightness,  # None leaves the optional field unset
            detail=score.detail,  # None leaves the optional field unset
        ),
    )
    return record.SerializeToString()


def event_body(update: EventUpdate, capture_time: float) -> bytes:
    change = pb.EventChange(
        event_id=update.id,
        state=_STATES[update.state],
        start=update.start,
        peak=update.peak,
        peak_t=update.peak_t,
        prior=update.prior,
    )
    if update.end is not None:
        change.end = update.end
    t = update.end if update.end is not None else update.peak_t
    return pb.Record(capture_time=capture_time, t=t, event=change).SerializeToString()


def window_body(window: Window, capture_time: float) -> bytes:
    marker = pb.WindowMarker(
        event_id=window.event_id,
        start=window.start,
        end=window.end,
        frame_seqs=list(window.seqs),
        prior=window.prior,
    )
    return pb.Record(capture_time=capture_time, t=window.end, window=marker).SerializeToString()


def summary_body(
    start: float, end: float, scores: list[float], capture_time: float
) -> bytes:  # fmt: skip
    summary = pb.ScoreSummary(
        start=start,
        end=end,
        frames=len(scores),
        min=min(scores),
        mean=sum(scores) / len(scores),
        max=max(scores),
    )
    return pb.Record(capture_time=capture_time, t=end, summary=summary).SerializeToString()


def hello(device_id: str, cameras: list[str], epoch: int, version: str) -> pb.EdgeMessage:
    return pb.EdgeMessage(
        hello=pb.Hello(device_id=device_id, cameras=cameras, epoch=epoch, agent_version=version)
    )


def record_message(camera: str, epoch: int, seq: int, body: bytes) -> pb.EdgeMessage:
    record = pb.Record.FromString(body)
    record.camera, record.epoch, record.seq = camera, epoch, seq
    return pb.EdgeMessage(record=record)


def serialize(message: pb.EdgeMessage) -> bytes:
    return message.SerializeToString()


@dataclass(frozen=True, slots=True)
class Resume:
    """The cloud's answer to hello: where each camera resumes, and the flow limits."""

    device_id: str
    after: dict[str, int]
    max_in_flight: int
    max_message_bytes: int


@dataclass(frozen=True, slots=True)
class Acked:
    camera: str
    epoch: int
    seq: int


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float
    reason: str


def parse_cloud(data: bytes) -> Resume | Acked | Pause | None:
    """A CloudMessage from the wire; None for a kind this version does not know (add-only)."""
    msg = pb.CloudMessage.FromString(data)
    kind = msg.WhichOneof("body")
    if kind == "hello_ack":
        h = msg.hello_ack
        return Resume(h.device_id, dict(h.resume_after), h.max_in_flight, h.max_message_bytes)
    if kind == "ack":
        return Acked(msg.ack.camera, msg.ack.epoch, msg.ack.seq)
    if kind == "flow":
        return Pause(msg.flow.pause_ms / 1000.0, msg.flow.reason)
    return None
