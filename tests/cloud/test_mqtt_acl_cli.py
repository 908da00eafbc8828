"""The generated broker ACL confines device identities; `vau-alerts tail` prints alerts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from support.mosquitto import Mosquitto, Subscriber, free_port, require_mosquitto

from vau.cloud.alerts_cli import format_line
from vau.cloud.mqtt import MqttPublisher
from vau.cloud.mqtt.metrics import MqttMetrics
from vau.cloud.mqtt.topics import broker_acl
from vau.cloud.settings import MqttSettings

ALERTS = [sys.executable, "-m", "vau.cloud.alerts_cli"]


def test_broker_acl_when_device_reaches_for_another_device_is_denied(tmp_path: Path) -> None:
    require_mosquitto()
    users = {"vau-cloud": "c-pw", "edge-a": "a-pw", "edge-b": "b-pw"}
    broker = Mosquitto(tmp_path / "broker", users, broker_acl("vau", "vau-cloud")).start()
    try:
        cloud = MqttPublisher(
            MqttSettings(host="127.0.0.1", port=broker.port, username="vau-cloud", password="c-pw"),
            tmp_path / "data",
            MqttMetrics(CollectorRegistry()),
        )
        watcher = Subscriber(broker, ["vau/+/+/event"], auth=("vau-cloud", "c-pw"))
        snoop = Subscriber(broker, ["vau/edge-b/#"], auth=("edge-a", "a-pw"))
        own = Subscriber(broker, ["vau/+/+/event"], auth=("edge-a", "a-pw"))
        cloud.start()
        cloud.put("vau/edge-b/cam-0/event", b'{"alert_id": "for-b"}')
        cloud.put("vau/edge-a/cam-0/event", b'{"alert_id": "for-a"}')
        assert own.wait_for(lambda s: len(s.messages) >= 1, 10)
        # edge-a publishes into edge-b's tree (and its own: devices only read)
        snoop.client.publish("vau/edge-b/cam-0/event", b'{"alert_id": "forged"}', qos=1)
        snoop.client.publish("vau/edge-a/cam-0/event", b'{"alert_id": "forged-own"}', qos=1)
        assert watcher.wait_for(lambda s: len(s.messages) >= 2, 10)
        time.sleep(0.5)
        assert snoop.messages == []  # Mosquitto 2.0 grants the SUBACK but delivers nothing
        assert [p["alert_id"] for p in own.payloads()] == ["for-a"]
        assert sorted(str(p["alert_id"]) for p in watcher.payloads()) == ["for-a", "for-b"]
        for s in (watcher, snoop, own):
            s.close()
        cloud.stop()
    finally:
        broker.stop()


def test_alerts_tail_when_alerts_arrive_prints_json_lines_and_exits_on_sigint(
    tmp_path: Path,
) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker").start()
    pub = MqttPublisher(
        MqttSettings(host="127.0.0.1", port=broker.port),
        tmp_path / "d",
        MqttMetrics(CollectorRegistry()),
    )
    pub.start()
    status = {"schema": "vau.status/1", "device_id": "edge-1", "state": "connected", "ts": 1.0}
    pub.put("vau/edge-1/status", json.dumps(status).encode(), retain=True)
    proc = subprocess.Popen(
        [*ALERTS, "tail", "--json", "--broker", broker.url],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # the retained status: it is subscribed
        assert first["topic"] == "vau/edge-1/status" and first["state"] == "connected"
        alert = {"schema": "vau.alert/1", "type": "new", "event_id": "ev-9", "alert_id": "x"}
        pub.put("vau/edge-1/cam-0/event", json.dumps(alert).encode())
        second = json.loads(proc.stdout.readline())
        assert second["event_id"] == "ev-9" and second["topic"] == "vau/edge-1/cam-0/event"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        pub.stop()
        broker.stop()


def test_alerts_tail_when_broker_unreachable_exits_2_with_reason() -> None:
    done = subprocess.run(
        [*ALERTS, "tail", "--broker", f"mqtt://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "cannot reach the broker" in done.stderr


@pytest.mark.parametrize(
    ("topic", "payload", "expected"),
    [
        (
            "vau/edge-1/cam-0/event",
            {"type": "new", "device_id": "edge-1", "camera": "cam-0", "start": 8.5, "end": None,
             "score": 0.94, "event_id": "ev-1", "capture_time": 0},
            "edge-1/cam-0 NEW anomaly 8.5s- score 0.94 event ev-1",
        ),
        (
            "vau/edge-1/cam-0/explanation",
            {"device_id": "edge-1", "camera": "cam-0", "event_id": "ev-1", "title": "Fight",
             "category": "Fighting", "threat_level": 2, "confidence": 0.87, "anomaly": True,
             "start": 8.5, "end": 14.0, "summary": "Two people.", "ts": 0},
            'EXPLAINED ev-1 "Fight" (Fighting, threat 2, 87%) anomaly 8.5s-14.0s: Two people.',
        ),
        (
            "vau/edge-1/cam-0/explanation",
            {"device_id": "edge-1", "camera": "cam-0", "event_id": "ev-2", "title": "View change",
             "category": "other", "observed_category": "Camera Tamper", "threat_level": 1,
             "confidence": 0.9, "anomaly": True, "start": 8.0, "end": 16.0, "summary": "S.",
             "ts": 0},
            '"View change" (other, looks like Camera Tamper, threat 1, 90%) anomaly 8.0s-16.0s: S.',
        ),
    ],
)  # fmt: skip
def test_alerts_line_when_formatted_reads_for_a_person(
    topic: str, payload: dict[str, object], expected: str
) -> None:
    assert expected in format_line(topic, payload)
