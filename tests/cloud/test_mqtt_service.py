"""The fast path end to end on loopback: a real cloud server accepts an edge's event record and a
real Mosquitto subscriber receives the alert; a cloud restart neither repeats nor loses one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.cloud_harness import ServerThread, cloud_settings, event, open_session
from support.mosquitto import Mosquitto, Subscriber, require_mosquitto

from vau.cloud.mqtt.topics import EVENT_KEYS


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    require_mosquitto()
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def serve(broker: Mosquitto, data: Path) -> ServerThread:
    mqtt = {"host": "127.0.0.1", "port": broker.port, "poll_s": 0.2}
    return ServerThread(cloud_settings(data, mqtt=mqtt))


def send_event(server: ServerThread, seq: int) -> None:
    with grpc.insecure_channel(server.target) as ch:
        stream, _ack = open_session(ch, "edge-1")
        stream.send(event("cam-0", seq))
        stream.acks_until("cam-0", seq)
        stream.close()


def test_cloud_when_event_accepted_publishes_alert_and_device_status(
    broker: Mosquitto, tmp_path: Path
) -> None:
    sub = Subscriber(broker, ["vau/#"])
    server = serve(broker, tmp_path / "data")
    try:
        send_event(server, 1)
        assert sub.wait_for(lambda s: len(s.payloads("/event")) == 1, 10)
        (alert,) = sub.payloads("vau/edge-1/cam-0/event")
        assert set(EVENT_KEYS) <= alert.keys()
        assert (alert["type"], alert["event_id"], alert["end"]) == ("new", "ev-1", None)
        assert alert["score"] == pytest.approx(0.8) and alert["alert_id"] == "edge-1/cam-0/1/1"
        states = lambda s: [p["state"] for p in s.payloads("vau/edge-1/status")]  # noqa: E731
        assert sub.wait_for(lambda s: states(s) == ["connected", "disconnected"], 10)
        assert sub.wait_for(
            lambda s: server.metric("vau_cloud_mqtt_published_total") >= 5, 10
        )  # event + 2 discovery configs + 2 statuses
        assert server.metric("vau_cloud_mqtt_connected") == 1
    finally:
        server.stop()
    restarted = serve(broker, tmp_path / "data")
    try:
        send_event(restarted, 2)
        assert sub.wait_for(lambda s: len(s.payloads("/event")) >= 2, 10)
        ids = [p["alert_id"] for p in sub.payloads("/event")]
        assert sub.wait_for(lambda s: len(s.payloads("/event")) > 2, 1.0) is False
        assert ids == ["edge-1/cam-0/1/1", "edge-1/cam-0/1/2"]
    finally:
        restarted.stop()
        sub.close()
