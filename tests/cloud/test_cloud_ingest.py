"""Ingest over a real grpc.aio server: resume, cumulative acks, dedup, durable across restarts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from support.cloud_harness import (
    ServerThread,
    cloud_settings,
    event,
    frame,
    open_session,
    send_frames,
)


def test_ingest_when_new_device_then_resume_zero_and_cumulative_acks(
    dev_server: ServerThread, channel: grpc.Channel
) -> None:
    stream, ack = open_session(channel, "dev-a", ["cam-0", "cam-1"], epoch=7)
    assert ack.device_id == "dev-a"
    assert dict(ack.resume_after) == {"cam-0": 0, "cam-1": 0}
    assert ack.max_in_flight == 64 and ack.max_message_bytes == 4 * 2**20

    acks = send_frames(stream, "cam-0", [1, 2, 3], epoch=7)
    stream.send(event("cam-1", 1, epoch=7))
    acks += [m.ack for m in stream.acks_until("cam-1", 1) if m.WhichOneof("body") == "ack"]
    stream.close()

    assert [a.seq for a in acks if a.camera == "cam-0"][-1] == 3  # cumulative, ascending
    assert all(a.epoch == 7 for a in acks)
    stats = dev_server.stats()["devices"]["dev-a"]
    assert stats["cam-0"] == {"accepted": 3, "duplicates": 0, "max_seq": 3, "gaps": 0}
    assert stats["cam-1"]["accepted"] == 1
    assert dev_server.metric("vau_cloud_records_accepted_total") == 4
    assert dev_server.metric("vau_cloud_acks_sent_total") == len(acks)


def test_ingest_when_reconnecting_same_epoch_then_resume_after_last_seq(
    dev_server: ServerThread, channel: grpc.Channel
) -> None:
    stream, _ = open_session(channel, "dev-a", ["cam-0"], epoch=3)
    send_frames(stream, "cam-0", [1, 2, 3, 4], epoch=3)
    stream.close()

    again, ack = open_session(channel, "dev-a", ["cam-0", "cam-9"], epoch=3)
    assert dict(ack.resume_after) == {"cam-0": 4, "cam-9": 0}
    again.close()
    _, other_epoch = open_session(channel, "dev-a", ["cam-0"], epoch=4)
    assert dict(other_epoch.resume_after) == {"cam-0": 0}


def test_ingest_when_records_replayed_then_acked_but_never_stored_twice(
    dev_server: ServerThread, channel: grpc.Channel
) -> None:
    """X3: replaying captured messages is acked (so the edge drops them) and counted, not stored."""
    stream, _ = open_session(channel, "dev-a")
    send_frames(stream, "cam-0", [1, 2, 3])
    stream.close()

    replay, _ = open_session(channel, "dev-a")
    acks = send_frames(replay, "cam-0", [1, 2, 3])
    replay.close()

    assert acks[-1].seq == 3
    cam = dev_server.stats()["devices"]["dev-a"]["cam-0"]
    accepted_twice = cam["accepted"] - 3
    print(f"X3 replayed=3 accepted_twice={accepted_twice} duplicates={cam['duplicates']}")
    assert accepted_twice == 0 and cam["duplicates"] == 3
    assert dev_server.metric("vau_cloud_records_duplicate_total") == 3


def test_ingest_when_seqs_skipped_then_gaps_counted(
    dev_server: ServerThread, channel: grpc.Channel
) -> None:
    stream, _ = open_session(channel, "dev-a")
    send_frames(stream, "cam-0", [1, 2, 5, 9])
    stream.close()
    cam = dev_server.stats()["devices"]["dev-a"]["cam-0"]
    assert cam == {"accepted": 4, "duplicates": 0, "max_seq": 9, "gaps": 2 + 3}


def test_ingest_when_server_restarts_on_same_data_dir_then_dedup_survives(tmp_path: Path) -> None:
    """S6-lite: what was acked before a restart is durable, and its replay is a duplicate."""
    settings = cloud_settings(tmp_path / "data")
    first = ServerThread(settings)
    with grpc.insecure_channel(first.target) as ch:
        stream, _ = open_session(ch, "dev-a")
        send_frames(stream, "cam-0", [1, 2, 3])
        stream.close()
    first.stop()

    second = ServerThread(settings)
    try:
        with grpc.insecure_channel(second.target) as ch:
            stream, ack = open_session(ch, "dev-a")
            assert dict(ack.resume_after) == {"cam-0": 3}
            send_frames(stream, "cam-0", [3, 4])
            stream.close()
        cam = second.stats()["devices"]["dev-a"]["cam-0"]
        assert cam == {"accepted": 4, "duplicates": 1, "max_seq": 4, "gaps": 0}
    finally:
        second.stop()


def test_ingest_when_record_has_other_epoch_or_unlisted_camera_then_invalid_argument(
    dev_server: ServerThread, channel: grpc.Channel
) -> None:
    for bad, reason in ((frame("cam-0", 1, epoch=2), "epoch"), (frame("cam-x", 1), "camera")):
        stream, _ = open_session(channel, "dev-a", ["cam-0"], epoch=1)
        stream.send(bad)
        err, _ = stream.until_error()
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert stream.trailing()["vau-reject-reason"] == reason
    assert "dev-a" not in dev_server.stats()["devices"]


def test_ingest_when_bad_record_follows_good_ones_then_good_ones_acked_first(
    dev_server: ServerThread, channel: grpc.Channel
) -> None:
    stream, _ = open_session(channel, "dev-a")
    for seq in (1, 2):
        stream.send(frame("cam-0", seq))
    bad = frame("cam-0", 3)
    bad.record.frame.score = float("nan")
    stream.send(bad)
    err, seen = stream.until_error()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [m.ack.seq for m in seen if m.WhichOneof("body") == "ack"][-1] == 2
    assert stream.trailing() == {
        "vau-reject-reason": "score", "vau-reject-camera": "cam-0", "vau-reject-seq": "3",
    }  # fmt: skip
    assert dev_server.metric("vau_cloud_rejected_total", {"reason": "score"}) == 1


def test_ingest_when_many_devices_stream_concurrently_then_every_record_exactly_once(
    dev_server: ServerThread,
) -> None:
    devices, cameras, per_camera = 6, ("cam-0", "cam-1"), 150

    def device_run(i: int) -> None:
        with grpc.insecure_channel(dev_server.target) as ch:
            stream, _ = open_session(ch, f"dev-{i}", cameras)
            for seq in range(1, per_camera + 1):
                for cam in cameras:
                    stream.send(frame(cam, seq))
            for cam in cameras:
                stream.acks_until(cam, per_camera)
            stream.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(devices) as pool:
        list(pool.map(device_run, range(devices)))
    elapsed = time.perf_counter() - start
    total = devices * len(cameras) * per_camera
    commits = dev_server.metric("vau_cloud_store_commit_seconds_count")
    print(f"concurrent ingest: {total} records from {devices} devices in {elapsed:.2f} s "
          f"({total / elapsed:.0f} rec/s), {commits:.0f} transactions")  # fmt: skip
    stats = dev_server.stats()["devices"]
    for i in range(devices):
        for cam in cameras:
            assert stats[f"dev-{i}"][cam] == {
                "accepted": per_camera, "duplicates": 0, "max_seq": per_camera, "gaps": 0,
            }  # fmt: skip
    assert commits < total / 4  # batched and group-committed, not one fsync per record
