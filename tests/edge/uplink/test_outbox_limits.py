"""S2 (an outage longer than the byte cap) and S3 (a TTL shorter than the outage), on real files."""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from vau.edge.metrics import REGISTRY
from vau.edge.uplink.outbox import EXPIRE_EVERY_S, FILENAME, Outbox
from vau.edge.uplink.records import OutboxItem, Priority

KINDS = {Priority.FRAME: "frame", Priority.SUMMARY: "summary", Priority.WINDOW: "window",
         Priority.EVENT: "event"}  # fmt: skip
CAMERAS = ("cam-a", "cam-b")


@dataclass
class FakeClock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Held(NamedTuple):
    camera: str
    seq: int
    kind: str
    priority: int
    capture_time: float
    size: int


def held(data_dir: Path) -> dict[tuple[str, int], Held]:
    """What the file holds (read beside the outbox, as another process would)."""
    query = "SELECT camera, seq, kind, priority, capture_time, LENGTH(body) FROM records"
    with contextlib.closing(sqlite3.connect(data_dir / FILENAME)) as db:
        return {(r[0], r[1]): Held(*r) for r in db.execute(query)}


def metric_counts(name: str, reason: str | None = None) -> Counter[str]:
    labels = {"reason": reason} if reason else {}
    return Counter({kind: REGISTRY.get_sample_value(name, {**labels, "kind": kind}) or 0.0
                    for kind in KINDS.values()})  # fmt: skip


def outage_items(rng: random.Random, clock: FakeClock) -> list[OutboxItem]:
    """Normal time (frames, summaries) then an incident (windows, events) then normal again."""
    plan = [(Priority.FRAME, 90), (Priority.SUMMARY, 12)] * 3 + [
        (Priority.WINDOW, 80),
        (Priority.EVENT, 8),
        (Priority.FRAME, 60),
        (Priority.SUMMARY, 6),
        (Priority.EVENT, 4),
    ]
    sizes = {Priority.FRAME: 20_000, Priority.SUMMARY: 2_000, Priority.WINDOW: 20_000,
             Priority.EVENT: 3_000}  # fmt: skip
    items = []
    for priority, count in plan:
        for _ in range(count):
            clock.now += 0.5
            size = rng.randint(sizes[priority] // 2, sizes[priority])
            items.append(OutboxItem(rng.choice(CAMERAS), KINDS[priority], priority, clock.now,
                                    rng.randbytes(size)))  # fmt: skip
    return items


def check_eviction(before: dict[tuple[str, int], Held], after: dict[tuple[str, int], Held],
                   new: Held, cap: int) -> list[Held]:  # fmt: skip
    """The records one put removed obey the order; returns them (the new one if dropped)."""
    gone = [s for key, s in before.items() if key not in after]
    kept = (new.camera, new.seq) in after
    if not kept:
        assert not gone, "a record dropped on arrival must not evict anything"
        lower = sum(s.size for s in after.values() if s.priority <= new.priority)
        need = sum(s.size for s in after.values()) + new.size - cap
        assert lower < need, "dropped although lower records could have made room"
        return [new]
    for victim in gone:
        assert victim.priority <= new.priority, "evicted a higher priority to admit a lower"
        for other in after.values():
            assert other.priority >= victim.priority, f"kept {other.kind}, evicted {victim.kind}"
            if other.priority == victim.priority:
                assert other.capture_time > victim.capture_time, "evicted a newer one first"
    return gone


def test_outage_longer_than_the_cap_evicts_frames_first_and_never_events(tmp_path: Path) -> None:
    cap, clock, rng = 1_000_000, FakeClock(), random.Random(2)
    metrics_before = metric_counts("vau_edge_outbox_evicted_total", "full")
    evicted: Counter[str] = Counter()
    order: list[int] = []
    max_bytes = 0
    with Outbox(tmp_path, cap, 30 * 86400.0, clock=clock) as outbox:
        for new in outage_items(rng, clock):
            before = held(tmp_path)
            s = outbox.put(new)
            after = held(tmp_path)
            new_row = Held(s.camera, s.seq, s.kind, s.priority, s.capture_time, s.size)
            gone = check_eviction(before, after, new_row, cap)
            evicted.update(h.kind for h in gone)
            order += sorted(h.priority for h in gone)
            on_disk = sum(h.size for h in after.values())
            max_bytes = max(max_bytes, on_disk)
            assert outbox.stats().bytes == on_disk <= cap
        stats = outbox.stats()
        kinds_left = Counter(h.kind for h in held(tmp_path).values())
    file_bytes = sum(p.stat().st_size for p in tmp_path.glob(FILENAME + "*"))
    grown = metric_counts("vau_edge_outbox_evicted_total", "full") - metrics_before
    print(
        f"\nS2: cap {cap} B, peak {max_bytes} B of bodies held ({file_bytes} B of files); "
        f"enqueued {stats.enqueued}, evicted by kind {dict(stats.evicted_by_kind)}, "
        f"left by kind {dict(kinds_left)}"
    )
    assert evicted["event"] == 0 and kinds_left["event"] == 12
    assert evicted["frame"] and evicted["summary"] and evicted["window"]
    first = {p: order.index(p) for p in set(order)}
    assert first[Priority.FRAME] < first[Priority.SUMMARY] < first[Priority.WINDOW]
    assert stats.evicted_by_kind == dict(evicted) == {k: int(v) for k, v in grown.items() if v}
    assert stats.evicted == sum(evicted.values())
    assert stats.enqueued == stats.pending + stats.evicted and stats.expired == 0


def test_a_lower_priority_record_is_dropped_rather_than_evict_a_higher_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "vau.edge.uplink.outbox")
    with Outbox(tmp_path, 100, 86400.0) as outbox:
        outbox.put(OutboxItem("cam-a", "event", Priority.EVENT, 1e9 * 2, b"e" * 60))
        outbox.put(OutboxItem("cam-a", "window", Priority.WINDOW, 1e9 * 2, b"w" * 40))
        dropped = outbox.put(OutboxItem("cam-a", "frame", Priority.FRAME, 1e9 * 2, b"f" * 10))
        assert dropped.seq == 3
        assert [s.kind for s in outbox.pending("cam-a", 0, 10)] == ["event", "window"]
        assert outbox.stats().evicted_by_kind == {"frame": 1}
        assert outbox.put(OutboxItem("cam-a", "event", Priority.EVENT, 1e9 * 2, b"E" * 30)).seq == 4
        assert [s.seq for s in outbox.pending("cam-a", 0, 10)] == [1, 4]  # the window made room
    assert "dropped the new frame record of camera cam-a (seq 3" in caplog.text
    assert "evicted 1 records (1 window; 40 bytes)" in caplog.text


def test_ttl_shorter_than_the_outage_never_delivers_an_expired_record(tmp_path: Path) -> None:
    ttl, clock, rng = 60.0, FakeClock(), random.Random(3)
    before = metric_counts("vau_edge_outbox_expired_total")
    delivered: dict[str, int] = dict.fromkeys(CAMERAS, 0)
    put = late = 0
    with Outbox(tmp_path, 2**30, ttl, clock=clock) as outbox:
        for step in range(600):  # ~10 simulated minutes; the link is up only now and then
            clock.now += rng.uniform(0.2, 2.0)
            age = rng.choice([0.0, 0.0, 0.0, rng.uniform(0, 2 * ttl)])  # some arrive already old
            kind = rng.choice(list(Priority))
            outbox.put(OutboxItem(rng.choice(CAMERAS), KINDS[kind], kind, clock.now - age, b"r"))
            put += 1
            if step % 150 > 120:  # link up: deliver and ack
                for camera in CAMERAS:
                    for s in outbox.pending(camera, delivered[camera], 1000):
                        late += s.capture_time + ttl < clock.now
                        delivered[camera] = s.seq
                    outbox.ack(camera, outbox.epoch, delivered[camera])
        clock.now += ttl + EXPIRE_EVERY_S  # everything left is now past the TTL
        assert all(outbox.pending(c, 0, 1000) == [] for c in CAMERAS)
        stats = outbox.stats()
    grown = metric_counts("vau_edge_outbox_expired_total") - before
    print(
        f"\nS3: ttl {ttl:g} s, {put} records, acked {stats.acked}, expired {stats.expired} "
        f"{dict(stats.expired_by_kind)}, delivered past TTL {late}"
    )
    assert late == 0 and stats.pending == 0 and stats.expired > 0
    assert stats.enqueued == put == stats.acked + stats.expired
    assert stats.expired_by_kind == {k: int(v) for k, v in grown.items() if v}


def test_pending_hides_expired_records_between_expiry_passes(tmp_path: Path) -> None:
    clock = FakeClock()
    with Outbox(tmp_path, 2**30, 10.0, clock=clock) as outbox:
        outbox.put(OutboxItem("cam-a", "frame", Priority.FRAME, clock.now, b"old"))
        clock.now += 9.8
        outbox.put(OutboxItem("cam-a", "frame", Priority.FRAME, clock.now, b"new"))
        assert len(outbox.pending("cam-a", 0, 10)) == 2  # runs an expiry pass now
        clock.now += 0.5  # the first is past its TTL, and the next pass is not due yet
        assert [s.body for s in outbox.pending("cam-a", 0, 10)] == [b"new"]
        assert outbox.stats().expired == 0  # not yet deleted ...
        clock.now += EXPIRE_EVERY_S
        assert outbox.stats().expired == 1  # ... and counted when it is
