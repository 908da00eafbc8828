"""F1: malformed tensors and garbage bytes end the stream with INVALID_ARGUMENT, every time, with a
precise reason; the server never crashes and keeps serving."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support.cloud_harness import (
    ServerThread,
    cloud_settings,
    frame,
    hello,
    open_session,
    send_frames,
)

from vau.cloud.codec import decode_edge
from vau.cloud.records import EventChange, Hello, RecordRejected, TokenFrame, WireRecord
from vau.cloud.settings import LimitSettings
from vau.cloud.validate import Validator
from vau.common.tokens import TokenDType
from vau.protos.v1 import uplink_pb2 as pb

Mutation = Callable[[st.DataObject, pb.FrameTokens], None]
OUTCOMES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(cloud_settings(tmp_path_factory.mktemp("f1")))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def chan(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as ch:
        yield ch


def _dtype(d: st.DataObject, f: pb.FrameTokens) -> None:
    f.dtype = d.draw(st.sampled_from([0, 4, 5, 99, 2**31 - 1]))


def _shape(d: st.DataObject, f: pb.FrameTokens) -> None:
    bad = st.one_of(
        st.lists(st.integers(0, 2**32 - 1), max_size=5).filter(lambda s: len(s) != 2),
        st.tuples(st.just(0), st.integers(1, 64)).map(list),
        st.tuples(st.integers(4097, 2**32 - 1), st.just(8)).map(list),  # huge K
        st.tuples(st.just(4), st.integers(4097, 2**32 - 1)).map(list),  # huge C
    )
    f.ClearField("shape")
    f.shape.extend(d.draw(bad))


def _size(d: st.DataObject, f: pb.FrameTokens) -> None:
    delta = d.draw(st.integers(-len(f.tokens), 64).filter(lambda n: n != 0))
    f.tokens = f.tokens[:delta] if delta < 0 else f.tokens + bytes(delta)


def _scales(d: st.DataObject, f: pb.FrameTokens) -> None:
    f.scales = bytes(d.draw(st.integers(1, 64)))  # fp16 frames carry no scales


def _indices(d: st.DataObject, f: pb.FrameTokens) -> None:
    k = f.shape[0]
    bad = st.one_of(
        st.lists(st.integers(0, 255), max_size=12).filter(lambda xs: len(xs) != k),
        st.just([3, 3, 5, 7]),
        st.just([7, 5, 3, 1]),
        st.tuples(st.just([0, 1, 2]), st.integers(256, 2**32 - 1)).map(lambda t: [*t[0], t[1]]),
    )
    f.ClearField("indices")
    f.indices.extend(d.draw(bad))


def _score(d: st.DataObject, f: pb.FrameTokens) -> None:
    value = d.draw(st.sampled_from([math.nan, math.inf, -math.inf, -0.5, 1.5, 1e30]))
    setattr(f, d.draw(st.sampled_from(["score", "smoothed"])), value)


def _grid(d: st.DataObject, f: pb.FrameTokens) -> None:
    f.grid_rows = d.draw(st.sampled_from([0, 129, 2**32 - 1]))


def _hot(d: st.DataObject, f: pb.FrameTokens) -> None:
    bad = st.one_of(
        st.lists(st.integers(0, 255), min_size=1, max_size=8).map(lambda xs: [*xs, xs[0]]),
        st.tuples(st.just([4, 9]), st.integers(256, 2**32 - 1)).map(lambda t: [*t[0], t[1]]),
        st.just(list(range(257))),
    )
    f.hot.extend(d.draw(bad))


def _normality(d: st.DataObject, f: pb.FrameTokens) -> None:
    f.normality = d.draw(st.sampled_from([math.nan, math.inf, -math.inf, -0.5, 1.5, 1e30]))


def _components(d: st.DataObject, f: pb.FrameTokens) -> None:
    bad = st.one_of(
        st.tuples(st.sampled_from(["", "a b", "x" * 33, "é"]), st.floats(0, 1)),
        st.tuples(st.just("motion"), st.sampled_from([math.nan, -0.5, 1.5])),
    )
    name, value = d.draw(bad)
    f.components[name] = value


def _pixel_change(d: st.DataObject, f: pb.FrameTokens) -> None:
    f.pixel_change = d.draw(st.sampled_from([math.nan, math.inf, -0.5, 1.5]))


def _brightness(d: st.DataObject, f: pb.FrameTokens) -> None:
    f.brightness = d.draw(st.sampled_from([math.nan, -math.inf, -1.5, 1.25]))


def _detail(d: st.DataObject, f: pb.FrameTokens) -> None:
    f.detail = d.draw(st.sampled_from([math.nan, math.inf, -0.1, 1e6]))


MUTATIONS: dict[str, tuple[Mutation, set[str]]] = {
    "dtype": (_dtype, {"dtype"}),
    "shape": (_shape, {"shape", "size"}),
    "size": (_size, {"size"}),
    "scales": (_scales, {"size"}),
    "indices": (_indices, {"indices"}),
    "score": (_score, {"score"}),
    "grid": (_grid, {"shape", "indices"}),
    "hot": (_hot, {"hot"}),
    "normality": (_normality, {"normality"}),
    "components": (_components, {"components"}),
    "pixel_change": (_pixel_change, {"pixel_change"}),
    "brightness": (_brightness, {"brightness"}),
    "detail": (_detail, {"detail"}),
}


def _fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


def _reject(chan: grpc.Channel, payload: pb.EdgeMessage | bytes) -> tuple[grpc.StatusCode, str]:
    stream, _ = open_session(chan, "fuzz")
    stream.send(payload)
    err, _ = stream.until_error()
    return err.code(), stream.trailing().get("vau-reject-reason", "")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), name=st.sampled_from(sorted(MUTATIONS)))
def test_f1_when_frame_tensor_malformed_then_invalid_argument_with_reason(
    chan: grpc.Channel, data: st.DataObject, name: str
) -> None:
    msg = frame("cam-0", 1)
    mutate, reasons = MUTATIONS[name]
    mutate(data, msg.record.frame)
    code, reason = _reject(chan, msg)
    OUTCOMES[f"{name}->{reason}"] += 1
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in reasons


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(max_size=300))
def test_f1_when_garbage_bytes_follow_hello_then_invalid_argument(
    chan: grpc.Channel, garbage: bytes
) -> None:
    code, reason = _reject(chan, garbage)
    OUTCOMES[f"garbage->{reason}"] += 1
    assert code == grpc.StatusCode.INVALID_ARGUMENT


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(max_size=300))
def test_f1_when_garbage_is_the_first_message_then_invalid_argument(
    chan: grpc.Channel, garbage: bytes
) -> None:
    assume(not isinstance(decode_edge(garbage), Hello))
    from support.cloud_harness import RawStream

    stream = RawStream(chan)
    stream.send(garbage)
    err, seen = stream.until_error()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and not seen


def test_f1_after_fuzzing_server_still_serves_and_counted_every_rejection(
    server: ServerThread, chan: grpc.Channel
) -> None:
    stream, _ = open_session(chan, "after-fuzz")
    assert send_frames(stream, "cam-0", [1, 2])[-1].seq == 2
    stream.close()
    rejected = sum(
        server.metric("vau_cloud_rejected_total", {"reason": r})
        for r in ("dtype", "shape", "size", "indices", "score", "decode", "hello", "camera",
                  "body", "seq", "epoch", "time", "text", "values", "state", "device", "hot",
                  "normality", "components", "pixel_change", "brightness", "detail")
    )  # fmt: skip
    print(f"F1 outcomes {dict(sorted(OUTCOMES.items()))}; rejected total {rejected:.0f}")
    assert rejected >= sum(OUTCOMES.values())
    assert "fuzz" not in server.stats()["devices"]


# ----- the validator on its own (no server) ---------------------------------------------------

LIMITS = LimitSettings()
V = Validator(LIMITS, retention_s=30 * 86400)
HELLO = Hello("dev-a", ("cam-0",), 1, "t")


def _wire(msg: pb.EdgeMessage) -> WireRecord:
    wire = decode_edge(msg.SerializeToString())
    assert isinstance(wire, WireRecord)
    return wire


@pytest.mark.parametrize("dtype", ["fp16", "int8", "fp32"])
def test_validator_when_frame_valid_then_tokens_decoded_to_float32(dtype: TokenDType) -> None:
    rec = V.record(_wire(frame(k=5, c=16, dtype=dtype)), "dev-a", HELLO, time.time())
    assert rec.kind == "frame" and rec.device == "dev-a"
    assert isinstance(rec.body, TokenFrame)
    assert rec.body.tokens.shape == (5, 16) and rec.body.tokens.dtype == np.float32


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("capture_time", time.time() + 3600, "time"),
        ("capture_time", time.time() - 40 * 86400, "time"),
        ("capture_time", math.nan, "time"),
        ("t", -1.0, "time"),
        ("seq", 0, "seq"),
        ("seq", 2**63, "seq"),
    ],
)
def test_validator_when_record_header_insane_then_rejected(
    field: str, value: float, reason: str
) -> None:
    msg = frame()
    setattr(msg.record, field, value)
    with pytest.raises(RecordRejected) as exc:
        V.record(_wire(msg), "dev-a", HELLO, time.time())
    assert exc.value.reason == reason


def test_validator_when_fp32_tokens_hold_nan_then_values_rejected() -> None:
    msg = frame(dtype="fp32")
    msg.record.frame.tokens = b"\x00\x00\xc0\x7f" + msg.record.frame.tokens[4:]
    with pytest.raises(RecordRejected, match="values"):
        V.record(_wire(msg), "dev-a", HELLO, time.time())


def test_validator_when_hello_lists_bad_cameras_then_rejected() -> None:
    for cams in (("cam 0",), ("a", "a"), tuple(f"c{i}" for i in range(65))):
        with pytest.raises(RecordRejected, match="camera"):
            V.hello(Hello("dev-a", cams, 1, ""))
    with pytest.raises(RecordRejected, match="device"):
        V.hello(Hello("", ("c",), 1, ""))
    wire = decode_edge(hello("dev-a", ["c"], 2**64 - 1).SerializeToString())
    assert isinstance(wire, Hello)
    with pytest.raises(RecordRejected, match="epoch"):
        V.hello(wire)


def test_validator_when_event_state_unknown_or_end_missing_then_rejected(tmp_path: Path) -> None:
    from support.cloud_harness import event

    msg = event()
    msg.record.event.state = 9
    with pytest.raises(RecordRejected, match="state"):
        V.record(_wire(msg), "dev-a", HELLO, time.time())
    msg.record.event.state = pb.EVENT_STATE_END
    with pytest.raises(RecordRejected, match="time"):
        V.record(_wire(msg), "dev-a", HELLO, time.time())
    msg.record.event.end = 3.0
    body = V.record(_wire(msg), "dev-a", HELLO, time.time()).body
    assert isinstance(body, EventChange) and body.state == "end"


def test_validator_when_frame_predates_hot_and_normality_then_accepted_with_none_and_empty() -> (
    None
):
    body = V.record(_wire(frame()), "dev-a", HELLO, time.time()).body
    assert isinstance(body, TokenFrame)
    assert body.normality is None and body.hot.size == 0 and body.components == ()
    assert body.pixel_change is None and body.brightness is None and body.detail is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hot", [3, 256]),  # index out of range on the 16x16 grid
        ("hot", [5, 9, 5]),  # duplicate
        ("hot", [0] * 300),  # more entries than the grid has patches
        ("normality", math.nan),
        ("normality", 1.5),
        ("normality", -0.01),
        ("components", {"motion": 1.5}),
        ("components", {"bad name": 0.5}),
        ("components", {f"c{i}": 0.5 for i in range(17)}),
        ("pixel_change", math.nan),
        ("pixel_change", 1.01),
        ("detail", -0.5),
        ("detail", math.inf),
    ],
)
def test_validator_when_hot_normality_components_or_pixel_change_invalid_then_rejected_naming_it(
    field: str, value: object
) -> None:
    msg = frame()
    msg.record.frame.MergeFrom(pb.FrameTokens(**{field: value}))
    with pytest.raises(RecordRejected) as exc:
        V.record(_wire(msg), "dev-a", HELLO, time.time())
    assert exc.value.reason == field and field in str(exc.value)


@pytest.mark.parametrize(("field", "value"), [("hot", [7, 7]), ("normality", math.nan)])
def test_server_when_hot_or_normality_invalid_then_invalid_argument_naming_the_field(
    chan: grpc.Channel, field: str, value: object
) -> None:
    msg = frame("cam-0", 1)
    msg.record.frame.MergeFrom(pb.FrameTokens(**{field: value}))
    stream, _ = open_session(chan, "bad-" + field)
    stream.send(msg)
    err, _ = stream.until_error()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (err.details() or "")
    trailing = stream.trailing()
    assert trailing.get("vau-reject-reason") == field and trailing.get("vau-reject-seq") == "1"
