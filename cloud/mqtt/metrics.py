"""Prometheus metrics of the MQTT alert path, on the cloud server's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class MqttMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.published = Counter(
            "vau_cloud_mqtt_published_total",
            "Alerts the broker acknowledged (PUBACK) and the outbox released.",
            registry=r,
        )
        self.outbox_depth = Gauge(
            "vau_cloud_mqtt_outbox_depth",
            "Alerts in the outbox, unacked.",
            registry=r,
        )
        self.connected = Gauge(
            "vau_cloud_mqtt_connected", "1 while connected to the broker, else 0.", registry=r
        )
        self.evicted = Counter(
            "vau_cloud_mqtt_evicted_total",
            "Unacked alerts evicted (oldest first) because the outbox hit its bound.",
            registry=r,
        )
