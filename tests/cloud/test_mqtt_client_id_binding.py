"""M5: a device's broker user connecting with the client id `vau-cloud` cannot take over the
cloud's persistent session on a broker run with the generated config (real Mosquitto)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import CollectorRegistry
from support.mosquitto import Mosquitto, Subscriber, require_mosquitto

from vau.cloud.cli import main as vau_cloud
from vau.cloud.mqtt import MqttPublisher
from vau.cloud.mqtt.broker import ACL_NAME, CONF_NAME
from vau.cloud.mqtt.metrics import MqttMetrics
from vau.cloud.mqtt.topics import broker_acl
from vau.cloud.settings import MqttSettings

USERS = {"vau-cloud": "c-pw", "edge-a": "a-pw", "edge-b": "b-pw"}


class _Thief:
    """A device's user (`edge-a`) that connects with the cloud's client id and a persistent
    session, hoping to inherit the cloud's."""

    def __init__(self, broker: Mosquitto) -> None:
        self.session_present: bool | None = None
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="vau-cloud", clean_session=False
        )
        self.client.username_pw_set("edge-a", "a-pw")
        self.client.on_connect = self._on_connect
        self.client.connect("127.0.0.1", broker.port, keepalive=5)
        self.client.loop_start()

    def _on_connect(
        self, _c: mqtt.Client, _u: object, flags: object, rc: object, _p: object
    ) -> None:
        self.session_present = bool(getattr(flags, "session_present", False))
        self.connected.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _broker(tmp_path: Path, bound: bool) -> Mosquitto:
    """A broker with the vau users and ACL: the test broker's own security lines replaced by the
    generated vau.conf when `bound`, the ACL file alone otherwise (the configuration as found)."""
    if not bound:
        return Mosquitto(tmp_path / "broker", USERS, broker_acl("vau", "vau-cloud")).start()
    broker = Mosquitto(tmp_path / "broker", USERS)
    gen = tmp_path / "gen"
    passwords = str(broker.dir / "passwords")
    assert vau_cloud(["mqtt-config", "--out", str(gen), "--password-file", passwords]) == 0
    assert (gen / ACL_NAME).read_text() == broker_acl("vau", "vau-cloud")
    own = [
        line
        for line in broker.conf.read_text().splitlines()
        if not line.startswith(("allow_anonymous", "password_file", "acl_file"))
    ]
    broker.conf.write_text("\n".join(own) + "\n" + (gen / CONF_NAME).read_text())
    return broker.start()


def _cloud_dropped(cloud: MqttPublisher, seconds: float) -> bool:
    """Whether the cloud's connection dropped at any point within `seconds` (it reconnects after
    at least 1 s, so a 20 ms poll cannot miss it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not cloud.connected:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("bound", [True, False], ids=["generated-config", "acl-only"])
def test_device_user_connecting_as_vau_cloud_cannot_take_over_its_session(
    tmp_path: Path, bound: bool
) -> None:
    require_mosquitto()
    broker = _broker(tmp_path, bound)
    cloud = MqttPublisher(
        MqttSettings(host="127.0.0.1", port=broker.port, username="vau-cloud", password="c-pw"),
        tmp_path / "data",
        MqttMetrics(CollectorRegistry()),
    )
    watcher: Subscriber | None = None
    thief: _Thief | None = None
    try:
        # given the cloud connected with its persistent session
        cloud.start()
        assert cloud.wait_connected(10)
        # (not the cloud's user: with ids bound to users that would take the cloud's place)
        watcher = Subscriber(broker, ["vau/edge-b/+/event"], auth=("edge-b", "b-pw"))
        # when a device's user connects with the client id vau-cloud
        thief = _Thief(broker)
        assert thief.connected.wait(10)
        dropped = _cloud_dropped(cloud, 1.5)
        if not bound:  # the attack as found: the ACL alone does not bind client ids
            assert dropped and thief.session_present
            return
        # then the thief got a fresh session of its own, and the cloud kept its connection
        assert thief.session_present is False and not dropped
        cloud.put("vau/edge-b/cam-0/event", b'{"alert_id": "after-attack"}')
        assert watcher.wait_for(lambda s: len(s.messages) >= 1, 10)
        assert [p["alert_id"] for p in watcher.payloads()] == ["after-attack"]
    finally:
        for c in (thief, watcher):
            if c is not None:
                c.close()
        cloud.stop()
        broker.stop()
