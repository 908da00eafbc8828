"""Admission and limits: oversize messages (G4), max_streams, one stream per device, rate."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
from support.cloud_harness import (
    RawStream,
    ServerThread,
    cloud_settings,
    frame,
    hello,
    open_session,
    send_frames,
)


def test_g4_when_message_over_size_cap_then_resource_exhausted_and_others_still_served(
    tmp_path: Path,
) -> None:
    server = ServerThread(cloud_settings(tmp_path, limits={"max_message_bytes": 65536}))
    try:
        with grpc.insecure_channel(server.target) as ch:
            big, ack = open_session(ch, "dev-big")
            assert ack.max_message_bytes == 65536
            big.send(frame("cam-0", 1, k=64, c=1024, dtype="fp16"))  # 128 KiB of tokens
            err, _ = big.until_error()
            print(f"G4 status {err.code().name}: {err.details()}")
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

            other, _ = open_session(ch, "dev-ok")
            assert send_frames(other, "cam-0", [1, 2])[-1].seq == 2
            other.close()
        with grpc.insecure_channel(server.target) as fresh:
            again, _ = open_session(fresh, "dev-ok2")
            assert send_frames(again, "cam-0", [1])[-1].seq == 1
        assert "dev-big" not in server.stats()["devices"]
    finally:
        server.stop()


def test_admission_when_max_streams_reached_then_resource_exhausted(tmp_path: Path) -> None:
    server = ServerThread(cloud_settings(tmp_path, limits={"max_streams": 2}))
    try:
        with grpc.insecure_channel(server.target) as ch:
            a, _ = open_session(ch, "dev-1")
            b, _ = open_session(ch, "dev-2")
            assert server.metric("vau_cloud_streams_active") == 2
            third = RawStream(ch)
            third.send(hello("dev-3"))
            err, seen = third.until_error()
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and not seen
            assert third.trailing()["vau-reject-reason"] == "streams"
            a.close()
            b.close()
    finally:
        server.stop()
    assert server.metric("vau_cloud_rejected_total", {"reason": "streams"}) == 1


def test_admission_when_device_opens_second_stream_then_older_one_aborted(
    dev_server: ServerThread, channel: grpc.Channel
) -> None:
    old, _ = open_session(channel, "dev-a")
    send_frames(old, "cam-0", [1, 2])
    new, ack = open_session(channel, "dev-a")
    assert dict(ack.resume_after) == {"cam-0": 2}
    err, _ = old.until_error()
    assert err.code() == grpc.StatusCode.ABORTED
    assert old.trailing()["vau-reject-reason"] == "superseded"
    assert send_frames(new, "cam-0", [3])[-1].seq == 3
    assert dev_server.metric("vau_cloud_streams_superseded_total") == 1
    assert dev_server.metric("vau_cloud_streams_active") == 1
    new.close()


def test_rate_when_device_exceeds_rate_then_flow_control_then_resource_exhausted(
    tmp_path: Path,
) -> None:
    limits = {"per_device_records_per_s": 10.0, "burst": 2, "max_in_flight": 2}
    server = ServerThread(cloud_settings(tmp_path, limits=limits))
    try:
        with grpc.insecure_channel(server.target) as ch:
            stream, _ = open_session(ch, "dev-a")
            for seq in (1, 2, 3):
                stream.send(frame("cam-0", seq))
            seen = stream.acks_until("cam-0", 3)
            flows = [m.flow for m in seen if m.WhichOneof("body") == "flow"]
            assert len(flows) == 1 and flows[0].reason == "rate" and flows[0].pause_ms > 0
            for seq in range(4, 10):  # ignores the pause
                stream.send(frame("cam-0", seq))
            err, _ = stream.until_error()
            print(f"rate: pause_ms={flows[0].pause_ms}, then {err.code().name}")
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert stream.trailing()["vau-reject-reason"] == "rate"
    finally:
        server.stop()
    assert server.metric("vau_cloud_flow_control_sent_total") == 1


def test_rate_when_device_obeys_pause_then_it_keeps_streaming(tmp_path: Path) -> None:
    limits = {"per_device_records_per_s": 20.0, "burst": 2, "max_in_flight": 2}
    server = ServerThread(cloud_settings(tmp_path, limits=limits))
    try:
        with grpc.insecure_channel(server.target) as ch:
            stream, _ = open_session(ch, "dev-a")
            seq = 0
            for _ in range(3):
                for _ in range(3):
                    seq += 1
                    stream.send(frame("cam-0", seq))
                seen = stream.acks_until("cam-0", seq)
                pauses = [m.flow.pause_ms for m in seen if m.WhichOneof("body") == "flow"]
                time.sleep(max(pauses, default=0) / 1000)
            stream.close()
        assert server.stats()["devices"]["dev-a"]["cam-0"]["accepted"] == 9
    finally:
        server.stop()


def test_protocol_when_no_hello_in_time_or_hello_repeated_then_invalid_argument(
    tmp_path: Path,
) -> None:
    server = ServerThread(cloud_settings(tmp_path, limits={"hello_timeout_s": 0.2}))
    try:
        with grpc.insecure_channel(server.target) as ch:
            silent = RawStream(ch)
            err, _ = silent.until_error()
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert silent.trailing()["vau-reject-reason"] == "hello"

            first = RawStream(ch)
            first.send(frame("cam-0", 1))
            err, seen = first.until_error()
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and not seen

            twice, _ = open_session(ch, "dev-a")
            twice.send(hello("dev-a"))
            err, _ = twice.until_error()
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert twice.trailing()["vau-reject-reason"] == "hello"
    finally:
        server.stop()
