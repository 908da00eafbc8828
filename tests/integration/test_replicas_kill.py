"""Two `vau-cloud serve` replicas on one real PostgreSQL, a real Mosquitto, and the edge's real
uplink client streaming to both addresses (`uplink.cloud = "A,B"`): `kill -9` of the replica the
edge streams to, which also holds every singleton role (event projector, MQTT publisher,
retention), in the middle of the stream.

Figures (printed): records enqueued / accepted / duplicates dropped, failovers, MQTT alerts. Target
(issue 11): 0 lost, 0 duplicated; MQTT alerts equal event records, none published twice; the other
replica takes the roles and resumes from the stored cursors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from support.mosquitto import Mosquitto, Subscriber, require_mosquitto
from support.postgres import PostgresServer, start_postgres
from support.procs import CloudProcess

from vau.edge import metrics
from vau.edge.settings import UplinkSettings
from vau.edge.types import EffectiveTokens, EventState, EventUpdate, FrameScore
from vau.edge.uplink import codec
from vau.edge.uplink.client import Uplink
from vau.edge.uplink.outbox import Outbox
from vau.edge.uplink.records import OutboxItem, Priority
from vau.edge.uplink.thread import UplinkThread

DEVICE, CAMERAS = "edge-r", ("cam-0", "cam-1")
EVENTS_PER_CAMERA = 8  # each: new, update, end
FRAMES_PER_EVENT = 12
PACE_S = 0.025  # between frames: ~5 s of streaming in all


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    yield from start_postgres()


def frame(camera: str, i: int) -> OutboxItem:
    rng = np.random.default_rng(i)
    eff = EffectiveTokens(i, i * 0.1, time.time(), np.arange(16, dtype=np.int64),
                          rng.normal(size=(16, 384)).astype(np.float32), np.ones(16, np.float32),
                          256, (16, 16), False)  # fmt: skip
    body = codec.frame_body(eff, FrameScore(i, i * 0.1, 0.2, 0.2), "fp16")
    return OutboxItem(camera, "frame", Priority.FRAME, time.time(), body)


def event(camera: str, n: int, state: EventState) -> OutboxItem:
    start = n * 10.0
    end = start + 2.0 if state is EventState.END else None
    update = EventUpdate(f"{camera}-ev-{n:04d}", state, start, end, 0.9, start + 1.0, "prior")
    body = codec.event_body(update, time.time())
    return OutboxItem(camera, "event", Priority.EVENT, time.time(), body)


def produce(box: Outbox, wake: UplinkThread) -> None:
    """What a two-camera edge would enqueue: frames, and each event's new, update and end."""
    for n in range(EVENTS_PER_CAMERA):
        for state in (EventState.NEW, EventState.UPDATE, EventState.END):
            for camera in CAMERAS:
                box.put(event(camera, n, state))
                for i in range(FRAMES_PER_EVENT // 3):
                    box.put(frame(camera, n * 100 + i))
                    wake.wake()
                    time.sleep(PACE_S)


def replica(tmp_path: Path, name: str, url: str, broker: Mosquitto) -> CloudProcess:
    env = {
        "VAU_CLOUD__MQTT__HOST": "127.0.0.1",
        "VAU_CLOUD__MQTT__PORT": str(broker.port),
        "VAU_CLOUD__MQTT__DISCOVERY": "false",
        "VAU_CLOUD__REPLICAS__LEASE_CHECK_S": "0.2",
        "VAU_CLOUD__EXPLAIN__POLL_S": "0.1",
    }
    return CloudProcess(tmp_path / name, store=url, env=env)


def stored(url: str) -> tuple[list[tuple[str, int, str]], list[tuple[str, str, str]]]:
    with psycopg.connect(url) as conn:
        records = conn.execute(
            "SELECT camera, seq, kind FROM vau_records WHERE device = %s ORDER BY pos", (DEVICE,)
        ).fetchall()
        events = conn.execute(
            "SELECT camera, event_id, state FROM vau_events WHERE device = %s", (DEVICE,)
        ).fetchall()
    return records, events


def test_replica_killed_mid_stream_loses_and_duplicates_nothing_and_alerts_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    require_mosquitto()
    url = postgres_server.create_database()
    broker = Mosquitto(tmp_path / "broker").start()
    sub = Subscriber(broker, ["vau/+/+/event"])
    a = replica(tmp_path, "a", url, broker).start()
    time.sleep(1.0)  # a takes every role first
    b = replica(tmp_path, "b", url, broker).start()
    cfg = UplinkSettings(
        cloud=f"127.0.0.1:{a.port},127.0.0.1:{b.port}", data_dir=tmp_path / "edge",
        reconnect_initial_s=0.1, reconnect_max_s=0.5,
    )  # fmt: skip
    failovers0 = metrics.REGISTRY.get_sample_value("vau_edge_uplink_failovers_total") or 0.0
    box = Outbox(cfg.data_dir, cfg.outbox_max_bytes, cfg.ttl_s)
    uplink = UplinkThread(Uplink(cfg, DEVICE, list(CAMERAS), box), box)
    uplink.start()
    try:
        producer = threading.Thread(target=produce, args=(box, uplink))
        producer.start()
        time.sleep(2.5)
        acked_at_kill, alerts_at_kill = box.stats().acked, len(sub.payloads("/event"))
        a.kill9()  # mid-stream: the edge's replica and every role's holder
        producer.join(60)
        assert uplink.drain(60), "every record acked"
        out = box.stats()
        records, events = stored(url)
        n_events = len(CAMERAS) * EVENTS_PER_CAMERA * 3
        assert sub.wait_for(lambda s: len(s.payloads("/event")) >= n_events, 30)
        time.sleep(1.0)  # anything published twice would arrive by now
        alerts = sub.payloads("/event")
        stats = b.stats()["devices"][DEVICE]
    finally:
        uplink.stop()
        box.close()
        sub.close()
        b.stop()
        a.stop()
        broker.stop()
    failovers = (metrics.REGISTRY.get_sample_value("vau_edge_uplink_failovers_total") or 0) - (
        failovers0
    )
    accepted = sum(c["accepted"] for c in stats.values())
    duplicates = sum(c["duplicates"] for c in stats.values())
    ids = [str(p["alert_id"]) for p in alerts]
    print(f"replica kill: enqueued {out.enqueued}, acked {out.acked}, accepted {accepted}, "
          f"duplicates dropped {duplicates}, failovers {failovers:.0f}, alerts {len(alerts)} "
          f"({len(set(ids))} distinct) for {n_events} event records; at the kill {acked_at_kill} "
          f"acked, {alerts_at_kill} alerted")  # fmt: skip
    assert 0 < acked_at_kill < out.enqueued and 0 < alerts_at_kill < n_events  # mid-stream
    # 0 lost, 0 duplicated: every record stored once, per camera in order.
    assert out.pending == 0 and out.acked == out.enqueued == accepted == len(records)
    assert len(set((c, s) for c, s, _k in records)) == len(records)
    for camera in CAMERAS:
        seqs = [s for c, s, _k in records if c == camera]
        assert seqs == list(range(1, len(seqs) + 1))
    assert all(c["gaps"] == 0 for c in stats.values())
    assert failovers >= 1
    # MQTT alerts equal the event records, none published twice (two replicas, one publisher).
    expected = {f"{DEVICE}/{c}/{box.epoch}/{s}" for c, s, k in records if k == "event"}
    assert len(expected) == n_events
    assert set(ids) == expected
    assert len(ids) == len(set(ids)), "an alert was published twice"
    # the projector's role moved to b, which projected every event from the stored cursor.
    assert sorted(events) == sorted(
        (c, f"{c}-ev-{n:04d}", "end") for c in CAMERAS for n in range(EVENTS_PER_CAMERA)
    )
    log_b = b.log.read_text()
    for role in ("projector", "mqtt", "retention"):
        assert f"lease acquired: {role}" in log_b
    assert "Traceback" not in log_b
