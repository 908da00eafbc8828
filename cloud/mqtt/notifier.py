"""The MQTT implementation of `vau.cloud.notify.Notifier`: payloads from `topics`, delivery by the
publisher's durable outbox (each call returns once the alert is durable, not once delivered)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from typing import Any

from vau.cloud.mqtt import topics
from vau.cloud.mqtt.publisher import MqttPublisher
from vau.cloud.settings import MqttSettings


class MqttNotifier:
    def __init__(self, publisher: MqttPublisher, settings: MqttSettings) -> None:
        self.p, self.s = publisher, settings
        self._announced: set[tuple[str, str]] = set()  # cameras whose discovery went out

    async def event(
        self,
        device: str,
        camera: str,
        event_id: str,
        fields: Mapping[str, Any],
        cursor: tuple[str, int] | None = None,
    ) -> None:
        """`cursor`: the alert tail's (name, log position), written with the alert."""
        alert_id = str(fields.get("alert_id") or uuid.uuid4())
        payload = topics.event_payload(device, camera, event_id, fields, alert_id, time.time())
        await self._announce(device, camera)
        topic = topics.event_topic(self.s.base_topic, device, camera)
        await asyncio.to_thread(self.p.put, topic, topics.encode(payload), False, cursor)

    async def explanation(
        self, device: str, camera: str, event_id: str, fields: Mapping[str, Any]
    ) -> None:
        alert_id = str(fields.get("alert_id") or uuid.uuid4())
        payload = topics.explanation_payload(
            device, camera, event_id, fields, alert_id, time.time()
        )
        await self._announce(device, camera)
        topic = topics.explanation_topic(self.s.base_topic, device, camera)
        await asyncio.to_thread(self.p.put, topic, topics.encode(payload))

    async def device_status(self, device: str, connected: bool) -> None:
        payload = topics.status_payload(device, connected, str(uuid.uuid4()), time.time())
        topic = topics.status_topic(self.s.base_topic, device)
        await asyncio.to_thread(self.p.put, topic, topics.encode(payload), True)

    async def _announce(self, device: str, camera: str) -> None:
        """Home Assistant discovery configs (retained), once per camera per process."""
        if not self.s.discovery or (device, camera) in self._announced:
            return
        self._announced.add((device, camera))
        configs = topics.discovery_configs(
            self.s.discovery_prefix, self.s.base_topic, device, camera
        )
        for topic, config in configs:
            await asyncio.to_thread(self.p.put, topic, topics.encode(config), True)
