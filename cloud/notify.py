"""Where the cloud's alerts go: the seam between explanations and their delivery (MQTT by default).

Payloads are JSON-ready mappings; the notifier adds what identifies them (schema version, device,
camera, event id) and must deliver without loss (a durable outbox behind it) or raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


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
