"""The one MQTT client of the cloud: paho-mqtt v2, MQTT 3.1.1, QoS 1, persistent session, a retained
availability topic with a last will, and a durable outbox in front of it (unlike Frigate's
comms/mqtt.py, nothing is dropped while disconnected).

Flow: `put` writes the alert to the outbox (durable) and kicks the feeder thread; the feeder hands
outbox rows to paho in id order, at most `window` unacked at a time; paho keeps them across
reconnects and resends them (DUP) until the broker's PUBACK, whose `on_publish` deletes the row.
After a restart of this process every row still in the outbox is handed to paho again, in order.
With replicas the outbox is the shared one (`Storage.alert_outbox`): `start` when this replica
takes the `mqtt` role, `release` when it loses it; the next holder sends what is left.
"""

from __future__ import annotations

import logging
import ssl
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from vau.cloud.mqtt.metrics import MqttMetrics
from vau.cloud.mqtt.outbox import Outbox
from vau.cloud.mqtt.topics import OFFLINE, ONLINE, availability_topic
from vau.cloud.settings import MqttSettings
from vau.cloud.storage.alert_outbox import AlertOutbox

log = logging.getLogger("vau.cloud.mqtt")
QOS = 1


class MqttConfigError(Exception):
    """The MQTT settings cannot be used (e.g. an unreadable TLS file); the message says which."""


class MqttPublisher:
    """Start with `start()`, stop with `stop()`; `put` is thread-safe and never waits for the
    broker (only for the outbox's fsync)."""

    def __init__(
        self,
        settings: MqttSettings,
        data_dir: Path,
        metrics: MqttMetrics,
        window: int = 256,
        outbox: AlertOutbox | None = None,
    ) -> None:
        if settings.host is None:
            raise MqttConfigError("mqtt.host is not set: MQTT is off")
        self.s, self.metrics, self.window = settings, metrics, window
        self.outbox: AlertOutbox = (
            outbox
            if outbox is not None
            else Outbox(data_dir, settings.outbox_max_records, settings.outbox_max_bytes)
        )
        self.availability = availability_topic(settings.base_topic)
        self._map_lock = threading.Lock()
        self._kick = threading.Event()
        self._connected = threading.Event()
        self._fresh_session()
        metrics.outbox_depth.set(self.outbox.depth)

    def _fresh_session(self) -> None:
        """A new paho client and feeder: nothing handed yet (the outbox is sent from its start)."""
        self.client = self._client()
        self._handed: dict[int, int] = {}  # paho mid -> outbox row id, handed and not yet acked
        self._early: set[int] = set()  # mids acked before publish() returned their mid
        self._own: set[int] = set()  # mids of availability messages (not outbox rows)
        self._last_handed = 0  # highest outbox id handed to paho by this client
        self._stopping = threading.Event()
        self._connected.clear()
        self._feeder = threading.Thread(target=self._feed, name="vau-mqtt-feeder", daemon=True)
        self._used = False

    # ----- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Connect and send the outbox; after a `release`, with a fresh client."""
        if self._used:
            self._fresh_session()
        self._used = True
        s = self.s
        assert s.host is not None
        self.client.reconnect_delay_set(min_delay=1, max_delay=max(2, min(30, s.keepalive_s)))
        self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self.client.loop_start()
        self._feeder.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Publish "offline" (retained), disconnect cleanly; unacked alerts stay in the outbox."""
        self.release(timeout)
        self.outbox.close()

    def release(self, timeout: float = 2.0) -> None:
        """`stop` but the outbox stays open (`put` still works): this replica lost the `mqtt`
        role, or stops sending for a while."""
        if not self._used:
            return
        self._stopping.set()
        self._kick.set()
        if self._feeder.is_alive():
            self._feeder.join(timeout)
        if self._connected.is_set():
            info = self.client.publish(self.availability, OFFLINE, qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                log.warning("could not publish 'offline' before disconnecting")
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()
        self.metrics.connected.set(0)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # ----- alerts -------------------------------------------------------------------------

    def put(
        self,
        topic: str,
        payload: bytes,
        retain: bool = False,
        cursor: tuple[str, int] | None = None,
    ) -> int:
        """Write one alert to the outbox (durable on return; `cursor` moves with it, see
        `AlertOutbox.put`) and schedule its delivery."""
        row_id, evicted = self.outbox.put(topic, payload, retain, cursor)
        if evicted:
            self.metrics.evicted.inc(evicted)
            log.warning("MQTT outbox full: evicted the %d oldest unacked alert(s)", evicted)
        self.metrics.outbox_depth.set(self.outbox.depth)
        self._kick.set()
        return row_id

    def _feed(self) -> None:
        while not self._stopping.is_set():
            self._kick.wait(1.0)
            self._kick.clear()
            while not self._stopping.is_set() and self._hand_more():
                pass

    def _hand_more(self) -> bool:
        """Hand the next outbox rows to paho (up to the window); True if any were handed."""
        with self._map_lock:
            room = self.window - len(self._handed)
        if room <= 0:
            return False
        rows = self.outbox.pending(self._last_handed, room)
        for row in rows:
            info = self.client.publish(row.topic, row.payload, qos=QOS, retain=row.retain)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.error("paho refused alert %d (rc %s); retrying later", row.id, info.rc)
                return False  # keeps _last_handed: the row is handed again on the next kick
            self._last_handed = row.id
            with self._map_lock:
                early = info.mid in self._early
                if early:
                    self._early.discard(info.mid)
                else:
                    self._handed[info.mid] = row.id
            if early:
                self._release(row.id)
        return bool(rows)

    def _release(self, row_id: int) -> None:
        if self.outbox.ack(row_id):
            self.metrics.published.inc()
        self.metrics.outbox_depth.set(self.outbox.depth)

    # ----- paho callbacks (network thread) -------------------------------------------------

    def _on_publish(
        self,
        _c: mqtt.Client,
        _u: Any,
        mid: int,
        reason: ReasonCode,
        _p: Any,
    ) -> None:
        with self._map_lock:
            if mid in self._own:
                self._own.discard(mid)
                return
            row_id = self._handed.pop(mid, None)
            if row_id is None:
                self._early.add(mid)  # an outbox row whose publish() has not returned yet
        if row_id is not None:
            self._release(row_id)
            self._kick.set()

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        log.info("MQTT connected to %s:%s (session present: %s)", self.s.host, self.s.port,
                 getattr(flags, "session_present", None))  # fmt: skip
        info = client.publish(self.availability, ONLINE, qos=QOS, retain=True)
        with self._map_lock:  # its PUBACK is handled on this thread, after this callback
            self._own.add(info.mid)
        self._connected.set()
        self.metrics.connected.set(1)
        self._kick.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        self._connected.clear()
        self.metrics.connected.set(0)
        if not self._stopping.is_set():
            log.warning("MQTT disconnected (%s); reconnecting, alerts wait in the outbox", reason)

    def _client(self) -> mqtt.Client:
        s = self.s
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        c.max_queued_messages_set(0)
        c.will_set(self.availability, OFFLINE, qos=QOS, retain=True)
        if s.username is not None:
            pw = s.password.get_secret_value() if s.password is not None else None
            c.username_pw_set(s.username, pw)
        if s.tls.ca is not None:
            self._tls(c)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        return c

    def _tls(self, c: mqtt.Client) -> None:
        t = self.s.tls
        for path in (t.ca, t.cert, t.key):
            if path is not None and not path.is_file():
                raise MqttConfigError(f"mqtt.tls file {path} does not exist; fix the path")
        c.tls_set(
            ca_certs=str(t.ca),
            certfile=None if t.cert is None else str(t.cert),
            keyfile=None if t.key is None else str(t.key),
            cert_reqs=ssl.CERT_REQUIRED,
        )
        c.tls_insecure_set(t.insecure)
