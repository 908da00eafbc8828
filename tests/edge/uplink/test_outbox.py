"""The durable outbox on real SQLite files: sequence numbers, epochs, acks, errors, speed."""

from __future__ import annotations

import logging
import sqlite3
import statistics
import time
from pathlib import Path

import pytest

from vau.edge.metrics import REGISTRY
from vau.edge.uplink.outbox import FILENAME, Outbox, OutboxError, read_stats
from vau.edge.uplink.outbox_db import PENDING_QUERY
from vau.edge.uplink.records import OutboxItem, Priority

BIG = 2**30
DAY = 86400.0


def item(camera: str = "cam-a", size: int = 100, priority: Priority = Priority.FRAME) -> OutboxItem:
    return OutboxItem(camera, priority.name.lower(), priority, time.time(), b"x" * size)


def seqs(outbox: Outbox, camera: str) -> list[int]:
    return [s.seq for s in outbox.pending(camera, 0, 10_000)]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_seqs_start_at_1_and_increase_per_camera(tmp_path: Path) -> None:
    with Outbox(tmp_path, BIG, DAY) as outbox:
        got = [(c, outbox.put(item(c)).seq) for c in ["a", "b", "a", "a", "b"]]
        assert got == [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("b", 2)]
        assert outbox.cameras() == ["a", "b"]
        assert (outbox.last_seq("a"), outbox.last_seq("b"), outbox.last_seq("zz")) == (3, 2, 0)
        assert seqs(outbox, "a") == [1, 2, 3]


def test_seqs_are_never_reused_after_ack_eviction_or_restart(tmp_path: Path) -> None:
    with Outbox(tmp_path, 1000, DAY) as outbox:
        for _ in range(3):
            outbox.put(item(size=400))  # the third evicts the first
        assert seqs(outbox, "cam-a") == [2, 3]
        assert outbox.ack("cam-a", outbox.epoch, 3) == 2
        assert seqs(outbox, "cam-a") == []
    with Outbox(tmp_path, 1000, DAY) as outbox:
        assert outbox.put(item()).seq == 4
        assert outbox.last_seq("cam-a") == 4


def test_epoch_persists_across_reopen_and_a_new_file_gets_a_new_one(tmp_path: Path) -> None:
    with Outbox(tmp_path / "one", BIG, DAY) as outbox:
        first = outbox.epoch
        stored = outbox.put(item())
    with Outbox(tmp_path / "one", BIG, DAY) as outbox:
        assert outbox.epoch == first == stored.epoch
    with Outbox(tmp_path / "two", BIG, DAY) as other:
        assert other.epoch != first
    assert 0 < first < 2**63


def test_put_returns_the_stored_record_and_pending_returns_it_intact(tmp_path: Path) -> None:
    with Outbox(tmp_path, BIG, DAY) as outbox:
        new = OutboxItem("cam-a", "event", Priority.EVENT, time.time() - 0.5, bytes(range(256)))
        stored = outbox.put(new)
        assert outbox.pending("cam-a", 0, 10) == [stored]
        assert stored.priority is Priority.EVENT and stored.body == new.body
        assert outbox.pending("cam-a", 1, 10) == [] and outbox.pending("other", 0, 10) == []


def test_pending_pages_by_after_seq_and_limit(tmp_path: Path) -> None:
    with Outbox(tmp_path, BIG, DAY) as outbox:
        for _ in range(10):
            outbox.put(item())
        assert [s.seq for s in outbox.pending("cam-a", 3, 4)] == [4, 5, 6, 7]
        assert [s.seq for s in outbox.pending("cam-a", 8, 100)] == [9, 10]


def test_pending_reads_through_the_camera_seq_index(tmp_path: Path) -> None:
    with Outbox(tmp_path, BIG, DAY):
        pass
    with sqlite3.connect(tmp_path / FILENAME) as db:
        plan = " ".join(str(r[-1]) for r in db.execute("EXPLAIN QUERY PLAN " + PENDING_QUERY,
                                                        ("cam-a", 0, 0.0, 10)))  # fmt: skip
    assert "USING INDEX records_camera_seq (camera=? AND seq>?)" in plan, plan


def test_ack_is_cumulative_and_idempotent(tmp_path: Path) -> None:
    with Outbox(tmp_path, BIG, DAY) as outbox:
        for camera in ["a", "a", "a", "a", "a", "b"]:
            outbox.put(item(camera))
        before = sample("vau_edge_records_acked_total", camera="a")
        assert outbox.ack("a", outbox.epoch, 3) == 3
        assert outbox.ack("a", outbox.epoch, 3) == 0
        assert outbox.ack("a", outbox.epoch, 2) == 0
        assert seqs(outbox, "a") == [4, 5] and seqs(outbox, "b") == [1]
        assert outbox.ack("a", outbox.epoch, 5) == 2
        assert sample("vau_edge_records_acked_total", camera="a") - before == 5
        stats = outbox.stats()
        assert (stats.enqueued, stats.acked, stats.pending, stats.bytes) == (6, 5, 1, 100)


def test_ack_of_another_epoch_is_ignored_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "vau.edge.uplink.outbox")
    with Outbox(tmp_path, BIG, DAY) as outbox:
        outbox.put(item())
        before = sample("vau_edge_outbox_acks_ignored_total", camera="cam-a")
        assert outbox.ack("cam-a", outbox.epoch + 1, 1) == 0
        assert seqs(outbox, "cam-a") == [1]
        assert outbox.stats().ignored_acks == 1
        assert sample("vau_edge_outbox_acks_ignored_total", camera="cam-a") - before == 1
    assert "ignored an ack" in caplog.text


def test_put_rejects_a_record_larger_than_the_outbox(tmp_path: Path) -> None:
    with Outbox(tmp_path, 1000, DAY) as outbox:
        with pytest.raises(ValueError, match="larger than the whole outbox"):
            outbox.put(item(size=1001))
        assert outbox.put(item(size=1000)).seq == 1  # the rejected one used no seq


def test_stats_are_persisted_and_read_stats_matches_them(tmp_path: Path) -> None:
    with Outbox(tmp_path, 1000, DAY) as outbox:
        for _ in range(4):
            outbox.put(item(size=300))
        outbox.ack("cam-a", outbox.epoch, 2)
        live = outbox.stats()
    want = {"enqueued": 4, "acked": 1, "pending": 2, "evicted": 1, "expired": 0}
    assert {k: getattr(live, k) for k in want} == want
    assert read_stats(tmp_path) == want  # after a clean close
    with Outbox(tmp_path, 1000, DAY) as outbox:
        assert outbox.stats() == live


def test_read_stats_of_a_missing_outbox_raises_outbox_error(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match=r"no outbox at .*outbox\.sqlite3"):
        read_stats(tmp_path / "nowhere")


def test_a_second_outbox_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    with Outbox(tmp_path, BIG, DAY):
        with pytest.raises(OutboxError, match="in use by another edge agent"):
            Outbox(tmp_path, BIG, DAY)
        assert read_stats(tmp_path)["enqueued"] == 0  # reading is always allowed
    Outbox(tmp_path, BIG, DAY).close()  # free again once closed


@pytest.mark.parametrize("damage", ["garbage", "btree page"])
def test_a_corrupt_file_raises_outbox_error_naming_the_file_and_the_fix(
    tmp_path: Path, damage: str
) -> None:
    with Outbox(tmp_path, BIG, DAY) as outbox:
        for _ in range(20):
            outbox.put(item(size=500))
    path = tmp_path / FILENAME
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data[:4096] = b"\x17" * 4096
    else:
        data[4096 * 7 : 4096 * 7 + 64] = b"\xff" * 64  # page 8: the records table's root
    path.write_bytes(bytes(data))
    with pytest.raises(OutboxError) as caught:
        Outbox(tmp_path, BIG, DAY)
    assert str(path) in str(caught.value) and "move the file" in str(caught.value)
    assert "records in it are lost" in str(caught.value)


def test_using_a_closed_outbox_raises_outbox_error(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, BIG, DAY)
    outbox.close()
    outbox.close()  # idempotent
    with pytest.raises(OutboxError, match="closed"):
        outbox.put(item())


def test_a_50kb_put_is_on_disk_fast_enough_for_10_records_per_second(tmp_path: Path) -> None:
    body = bytes(range(256)) * 200  # 51,200 bytes
    with Outbox(tmp_path, BIG, DAY) as outbox:
        took = []
        for _ in range(40):
            start = time.perf_counter()
            outbox.put(OutboxItem("cam-a", "frame", Priority.FRAME, time.time(), body))
            took.append(time.perf_counter() - start)
    took.sort()
    p50, p95 = statistics.median(took), took[int(0.95 * len(took)) - 1]
    print(f"\nput of {len(body)} bytes, fsync included: p50 {p50 * 1e3:.1f} ms, "
          f"p95 {p95 * 1e3:.1f} ms, max {took[-1] * 1e3:.1f} ms")  # fmt: skip
    assert sum(took) < 4.0, "under 10 records/s"
