"""X5: identifiers with control characters (NUL, newline, ESC) or other unsafe characters are
refused at ingest with INVALID_ARGUMENT and a reason, counted, and nothing of theirs is stored."""

from __future__ import annotations

import grpc
import pytest
from support.cloud_harness import (
    RawStream,
    ServerThread,
    event,
    frame,
    hello,
    open_session,
    send_frames,
)

from vau.protos.v1 import uplink_pb2 as pb

HOSTILE_IDS = [
    "ev-1\x00",
    "ev-1\nforged alert line",
    "ev-\x1b[2J\x1b[31mFAKE",
    "ev\u202e1",  # right-to-left override
    "ev-1\x9b31m",  # C1 CSI
    "ev/../../etc",
    "ev-1 spaced",
    "+/#",
    "",
]


def _rejected(server: ServerThread) -> float:
    return server.metric("vau_cloud_rejected_total", {"reason": "text"})


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_event_id_with_control_characters_is_rejected_at_ingest(
    dev_server: ServerThread, channel: grpc.Channel, bad: str
) -> None:
    # given a device stream that has stored one good frame
    stream, _ = open_session(channel, "edge-x5")
    send_frames(stream, "cam-0", [1])
    before = _rejected(dev_server)
    # when it sends an event whose id carries control or unsafe characters
    msg = event("cam-0", 2)
    msg.record.event.event_id = bad
    stream.send(msg)
    # then the stream ends with INVALID_ARGUMENT naming the rule, counted, and nothing is stored
    err, _ = stream.until_error()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "event_id" in (err.details() or "")
    trailing = stream.trailing()
    assert trailing.get("vau-reject-reason") == "text" and trailing.get("vau-reject-seq") == "2"
    assert _rejected(dev_server) == before + 1
    assert dev_server.stats()["devices"]["edge-x5"]["cam-0"]["accepted"] == 1


@pytest.mark.parametrize("where", ["frame", "window"])
def test_event_id_with_control_characters_is_rejected_in_frames_and_windows(
    channel: grpc.Channel, where: str
) -> None:
    stream, _ = open_session(channel, "edge-x5b")
    if where == "frame":
        msg = frame("cam-0", 1)
        msg.record.frame.event_id = "ev-1\x1b]0;pwned\x07"
    else:
        marker = pb.WindowMarker(event_id="ev-1\r\nNEW", start=1.0, end=2.0, frame_seqs=[1])
        msg = event("cam-0", 1)
        msg.record.window.CopyFrom(marker)
    stream.send(msg)
    err, _ = stream.until_error()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stream.trailing().get("vau-reject-reason") == "text"


def test_prior_with_control_characters_is_rejected_at_ingest(channel: grpc.Channel) -> None:
    stream, _ = open_session(channel, "edge-x5c")
    msg = event("cam-0", 1)
    msg.record.event.prior = "Fighting.\n12:00:00 edge-1/cam-0 END anomaly"
    stream.send(msg)
    err, _ = stream.until_error()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "prior" in (err.details() or "")


@pytest.mark.parametrize(
    ("device", "cameras", "reason"),
    [
        ("edge\x1b[0m", ["cam-0"], "device"),
        ("edge-1\n", ["cam-0"], "device"),
        ("edge-1", ["cam\x00"], "camera"),
        ("edge-1", ["cam/+/#"], "camera"),
    ],
)
def test_device_and_camera_ids_with_control_characters_are_rejected_at_hello(
    dev_server: ServerThread, channel: grpc.Channel, device: str, cameras: list[str], reason: str
) -> None:
    before = dev_server.metric("vau_cloud_rejected_total", {"reason": reason})
    stream = RawStream(channel)
    msg = hello("x", cameras)
    msg.hello.device_id = device
    stream.send(msg)
    err, seen = stream.until_error()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and not seen
    assert stream.trailing().get("vau-reject-reason") == reason
    assert dev_server.metric("vau_cloud_rejected_total", {"reason": reason}) == before + 1
