"""The MQTT publisher against a real Mosquitto: delivery with the contract keys, discovery, a
broker restart mid-stream (M1), a restart of the publisher itself, the last will on kill (M4)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from support.mosquitto import Mosquitto, Subscriber, require_mosquitto

from vau.cloud.mqtt import MqttNotifier, MqttPublisher
from vau.cloud.mqtt.metrics import MqttMetrics
from vau.cloud.mqtt.topics import EVENT_KEYS, EXPLANATION_KEYS
from vau.cloud.settings import MqttSettings

EXPLAINED = {
    "title": "Two people fighting", "summary": "A fight near the door.", "anomaly": True,
    "category": "Fighting", "start": 8.5, "end": 14.0, "confidence": 0.87, "threat_level": 2,
    "visual_tokens": False, "where": ["centre", "lower centre"], "movement": "right",
    "view_change": False, "evidence": ["The anomalous region moved right."],
}  # fmt: skip


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    require_mosquitto()
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def settings(broker: Mosquitto, **kw: Any) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=broker.port, **kw)


def publisher(broker: Mosquitto, data: Path, **kw: Any) -> MqttPublisher:
    return MqttPublisher(settings(broker, **kw), data, MqttMetrics(CollectorRegistry()))


def event_fields(i: int, kind: str = "new") -> dict[str, Any]:
    end = 3.0 + i if kind == "end" else None
    return {"type": kind, "start": 1.0 + i, "end": end, "score": 0.9, "prior": "Fighting."}


def test_publisher_when_connected_delivers_event_and_explanation_with_contract_keys(
    broker: Mosquitto, tmp_path: Path
) -> None:
    sub = Subscriber(broker, ["vau/#"])
    pub = publisher(broker, tmp_path / "data")
    pub.start()
    notifier = MqttNotifier(pub, pub.s)

    async def send() -> None:
        await notifier.event("edge-1", "cam-0", "ev-1", event_fields(0))
        await notifier.event("edge-1", "cam-0", "ev-1", event_fields(0, "end"))
        await notifier.explanation("edge-1", "cam-0", "ev-1", EXPLAINED)
        await notifier.device_status("edge-1", True)

    asyncio.run(send())
    assert sub.wait_for(lambda s: len(s.payloads("/explanation")) == 1, 10)
    assert sub.wait_for(lambda s: len(s.payloads("/status")) == 1, 10)
    events = sub.payloads("vau/edge-1/cam-0/event")
    assert [e["type"] for e in events] == ["new", "end"]
    assert all(set(EVENT_KEYS) <= e.keys() for e in events)
    assert events[0]["end"] is None and events[1]["end"] == 3.0
    assert events[0]["schema"] == "vau.alert/1" and events[0]["alert_id"] != events[1]["alert_id"]
    (expl,) = sub.payloads("vau/edge-1/cam-0/explanation")
    assert set(EXPLANATION_KEYS) <= expl.keys()
    assert expl["event_id"] == "ev-1" and expl["device_id"] == "edge-1"
    assert sub.payloads("vau/edge-1/status")[0]["state"] == "connected"
    assert sub.wait_for(lambda s: pub.outbox.depth == 0, 5)
    assert pub.metrics.published._value.get() == 6  # 4 alerts + 2 discovery configs
    sub.close()
    pub.stop()


def test_publisher_when_subscriber_joins_later_sees_retained_discovery_and_availability(
    broker: Mosquitto, tmp_path: Path
) -> None:
    pub = publisher(broker, tmp_path / "data")
    pub.start()
    asyncio.run(MqttNotifier(pub, pub.s).event("edge-1", "cam-0", "ev-1", event_fields(0)))
    assert pub.wait_connected(10)
    deadline = time.monotonic() + 10
    while pub.outbox.depth and time.monotonic() < deadline:
        time.sleep(0.02)
    late = Subscriber(broker, ["homeassistant/#", "vau/cloud/availability"])
    assert late.wait_for(lambda s: len(s.messages) == 3, 10), late.messages
    assert all(retain for _t, _p, retain in late.messages)
    configs = {t: json.loads(p) for t, p, _r in late.messages if t.startswith("homeassistant/")}
    assert set(configs) == {
        "homeassistant/event/edge-1_cam-0/event/config",
        "homeassistant/binary_sensor/edge-1_cam-0/anomaly/config",
    }
    assert all(c["availability_topic"] == "vau/cloud/availability" for c in configs.values())
    assert ("vau/cloud/availability", b"online", True) in late.messages
    late.close()
    pub.stop()


def test_publisher_when_broker_restarts_mid_stream_loses_no_alert(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """M1: 150 alerts, 50 before, 50 while the broker is down, 50 after it is back."""
    sub = Subscriber(broker, ["vau/+/+/event"], client_id="m1-sub", persistent=True)
    pub = publisher(broker, tmp_path / "data")
    pub.start()
    assert pub.wait_connected(10)
    topic = "vau/edge-1/cam-0/event"
    sent = []
    for i in range(150):
        if i == 50:
            broker.stop()
        if i == 100:
            broker.start()
        alert = {"alert_id": f"a-{i}", "type": "update", "event_id": "ev-1"}
        pub.put(topic, json.dumps(alert).encode())
        sent.append(alert["alert_id"])
        time.sleep(0.01)
    unique = lambda s: {str(p["alert_id"]) for p in s.payloads()}  # noqa: E731
    sub.wait_for(lambda s: unique(s) >= set(sent), 30)
    lost = set(sent) - unique(sub)
    print(f"M1: sent {len(sent)}, received {len(sub.messages)}, unique lost {len(lost)}")
    assert not lost
    assert pub.metrics.evicted._value.get() == 0
    sub.close()
    pub.stop()


def test_publisher_when_restarted_while_broker_down_delivers_its_outbox(
    broker: Mosquitto, tmp_path: Path
) -> None:
    broker.stop()
    first = publisher(broker, tmp_path / "data")
    first.start()
    for i in range(5):
        first.put("vau/edge-1/cam-0/event", json.dumps({"alert_id": f"b-{i}"}).encode())
    first.stop()
    broker.start()
    sub = Subscriber(broker, ["vau/+/+/event"])
    second = publisher(broker, tmp_path / "data")
    assert second.outbox.depth == 5
    second.start()
    assert sub.wait_for(lambda s: len(s.messages) >= 5, 15)
    assert [p["alert_id"] for p in sub.payloads()] == [f"b-{i}" for i in range(5)]
    sub.close()
    second.stop()


def test_publisher_when_outbox_is_full_evicts_oldest_and_counts(tmp_path: Path) -> None:
    s = MqttSettings(host="127.0.0.1", port=1, outbox_max_records=10)
    pub = MqttPublisher(s, tmp_path / "data", MqttMetrics(CollectorRegistry()))
    for i in range(15):
        pub.put("vau/d/c/event", json.dumps({"alert_id": i}).encode())
    assert pub.outbox.depth == 10
    assert pub.metrics.evicted._value.get() == 5
    assert json.loads(pub.outbox.pending(0, 1)[0].payload)["alert_id"] == 5
    pub.outbox.close()


KILLED = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from prometheus_client import CollectorRegistry
    from vau.cloud.mqtt import MqttPublisher
    from vau.cloud.mqtt.metrics import MqttMetrics
    from vau.cloud.settings import MqttSettings
    s = MqttSettings(host="127.0.0.1", port=int(sys.argv[1]), keepalive_s=2, client_id="m4")
    pub = MqttPublisher(s, Path(sys.argv[2]), MqttMetrics(CollectorRegistry()))
    pub.start()
    assert pub.wait_connected(10)
    print("ready", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["kill", "frozen"])
def test_publisher_when_killed_broker_sends_offline_within_one_and_a_half_keepalives(
    broker: Mosquitto, tmp_path: Path, sig: signal.Signals
) -> None:
    """M4: SIGKILL the publishing process (its socket closes: the will is immediate) or freeze it
    with SIGSTOP (a dead host: only keepalive notices); "offline" within 1.5 x keepalive."""
    keepalive = 2.0
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(broker.port), str(tmp_path / "data")],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        sub = Subscriber(broker, ["vau/cloud/availability"])
        assert sub.wait_for(lambda s: (s.messages or [("", b"")])[-1][1] == b"online", 5)
        proc.send_signal(sig)
        killed = time.monotonic()
        assert sub.wait_for(lambda s: s.messages[-1][1] == b"offline", 5 * keepalive)
        took = time.monotonic() - killed
    finally:
        proc.kill()
    print(f"M4: offline {took:.2f} s after {sig.name} (keepalive {keepalive} s)")
    # A killed process's socket closes, so the will is immediate. A frozen one is noticed by the
    # broker's keepalive check, which Mosquitto 2.0 runs with whole-second clocks (measured: 4-6 s
    # at keepalive 2 s), hence the slack.
    assert took <= 1.5 * keepalive + (0.5 if sig == signal.SIGKILL else 3.5)
    sub.close()
