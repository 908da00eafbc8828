"""Where the cloud's alerts go: the seam between explanations and their delivery (MQTT by default).

Payloads are JSON-ready mappings; the notifier adds what identifies them (schema version, device,
camera, event id) and must deliver without loss (a durable outbox behind it) or raise.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol

log = logging.getLogger("vau.cloud.alerts")


class Notifier(Protocol):
    async def event(
        self, device: str, camera: str, event_id: str, fields: Mapping[str, Any]
    ) -> None:
        """Fast path: an event lifecycle change (new/update/end) as soon as ingest accepted it.
        `fields` has at least type ("new" | "update" | "end"), start, end (None while open),
        score (peak so far), prior."""
        ...

    async def explanation(
        self, device: str, camera: str, event_id: str, fields: Mapping[str, Any]
    ) -> None:
        """Slow path: a validated explanation of the event. `fields` has at least title,
        summary, anomaly, category, start, end, confidence, threat_level, visual_tokens."""
        ...

    async def device_status(self, device: str, connected: bool) -> None:
        """A device's uplink stream connected or disconnected."""
        ...


class LogNotifier:
    """Without a broker: every alert is one structured log line (nothing else delivers it)."""

    async def event(
        self, device: str, camera: str, event_id: str, fields: Mapping[str, Any]
    ) -> None:
        _log("event", device, camera, event_id, fields)

    async def explanation(
        self, device: str, camera: str, event_id: str, fields: Mapping[str, Any]
    ) -> None:
        _log("explanation", device, camera, event_id, fields)

    async def device_status(self, device: str, connected: bool) -> None:
        log.info("device %s %s", device, "connected" if connected else "disconnected")


def _log(kind: str, device: str, camera: str, event_id: str, fields: Mapping[str, Any]) -> None:
    body = {"device": device, "camera": camera, "event_id": event_id, **fields}
    log.info("%s %s", kind, json.dumps(body, default=str))
