"""MQTT alerts: topic contract (`topics`), durable outbox, publisher, notifier and the fast-path
service that turns accepted event records into alerts. See docs/mqtt.md."""

from vau.cloud.mqtt.notifier import MqttNotifier
from vau.cloud.mqtt.publisher import MqttConfigError, MqttPublisher
from vau.cloud.mqtt.service import MqttService

__all__ = ["MqttConfigError", "MqttNotifier", "MqttPublisher", "MqttService"]
