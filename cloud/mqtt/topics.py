"""The MQTT topic contract, as pure functions (docs/mqtt.md documents every topic).

Every topic a device's alerts use lies under `<base>/<device>/`, so one broker ACL line
(`pattern read vau/%u/#`) confines an identity to its own alerts. Payloads are JSON objects with
a `schema` and an `alert_id` (unique per alert; a QoS 1 redelivery repeats the same id).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

EVENT_SCHEMA = "vau.alert/1"
EXPLANATION_SCHEMA = "vau.explanation/1"
STATUS_SCHEMA = "vau.status/1"
ONLINE, OFFLINE = "online", "offline"

EVENT_KEYS = ("schema", "type", "event_id", "device_id", "camera", "start", "end", "score")
EXPLANATION_KEYS = (
    "schema", "event_id", "device_id", "camera", "title", "summary", "anomaly", "category",
    "start", "end", "confidence", "threat_level", "visual_tokens",
    "where", "movement", "view_change", "evidence",
)  # fmt: skip
_EXPLANATION_FIELDS = EXPLANATION_KEYS[4:]


def event_topic(base: str, device: str, camera: str) -> str:
    return f"{base}/{device}/{camera}/event"


def explanation_topic(base: str, device: str, camera: str) -> str:
    return f"{base}/{device}/{camera}/explanation"


def status_topic(base: str, device: str) -> str:
    return f"{base}/{device}/status"


def availability_topic(base: str) -> str:
    return f"{base}/cloud/availability"


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def event_payload(
    device: str, camera: str, event_id: str, fields: Mapping[str, Any], alert_id: str, ts: float
) -> dict[str, Any]:
    """Fast-path alert. `fields`: type, start, end (None while open), score, prior (optional)."""
    kind = fields["type"]
    if kind not in ("new", "update", "end"):
        raise ValueError(f"event type must be new, update or end, not {kind!r}")
    return {
        "schema": EVENT_SCHEMA,
        "type": kind,
        "event_id": event_id,
        "device_id": device,
        "camera": camera,
        "start": fields["start"],
        "end": fields.get("end"),
        "score": fields["score"],
        "prior": fields.get("prior", ""),
        "capture_time": fields.get("capture_time"),  # UNIX time the edge saw the change
        "alert_id": alert_id,
        "ts": ts,
    }


def explanation_payload(
    device: str, camera: str, event_id: str, fields: Mapping[str, Any], alert_id: str, ts: float
) -> dict[str, Any]:
    """Slow-path alert; extra fields (model ids, fallback flags...) pass through unchanged."""
    missing = [k for k in _EXPLANATION_FIELDS if k not in fields]
    if missing:
        raise ValueError(f"explanation fields missing: {', '.join(missing)}")
    base = {"schema": EXPLANATION_SCHEMA, "event_id": event_id, "device_id": device}
    return {**fields, **base, "camera": camera, "alert_id": alert_id, "ts": ts}


def status_payload(device: str, connected: bool, alert_id: str, ts: float) -> dict[str, Any]:
    state = "connected" if connected else "disconnected"
    return {
        "schema": STATUS_SCHEMA, "device_id": device, "state": state,
        "alert_id": alert_id, "ts": ts,
    }  # fmt: skip


def discovery_configs(
    prefix: str, base: str, device: str, camera: str
) -> list[tuple[str, dict[str, Any]]]:
    """Home Assistant MQTT discovery: (topic, retained config) for an `event` entity and an anomaly
    `binary_sensor` (ON at new, OFF at end) of one camera, both tied to the availability topic."""
    node = _node_id(device, camera)
    ha_device = {
        "identifiers": [f"vau_{node}"],
        "name": f"vau {device} {camera}",
        "manufacturer": "vau",
        "model": "edge camera",
    }
    common = {"availability_topic": availability_topic(base), "device": ha_device}
    event_cfg = {
        **common,
        "name": "Anomaly event",
        "unique_id": f"vau_{node}_event",
        "state_topic": event_topic(base, device, camera),
        "event_types": ["new", "update", "end"],
        "value_template": '{{ {"event_type": value_json.type} | tojson }}',
        "json_attributes_topic": event_topic(base, device, camera),
    }
    sensor_cfg = {
        **common,
        "name": "Anomaly",
        "unique_id": f"vau_{node}_anomaly",
        "device_class": "problem",
        "state_topic": event_topic(base, device, camera),
        "value_template": "{{ 'OFF' if value_json.type == 'end' else 'ON' }}",
        "json_attributes_topic": explanation_topic(base, device, camera),
    }
    return [
        (f"{prefix}/event/{node}/event/config", event_cfg),
        (f"{prefix}/binary_sensor/{node}/anomaly/config", sensor_cfg),
    ]


def _node_id(device: str, camera: str) -> str:
    """HA node ids allow [a-zA-Z0-9_-]; device and camera ids may also hold . : @."""
    raw = f"{device}_{camera}"
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in raw)


def broker_acl(base: str, cloud_user: str, discovery_prefix: str = "homeassistant") -> str:
    """A mosquitto acl_file: the cloud's user writes every vau topic and the discovery configs;
    any other identity (user name = device id) reads only `<base>/<its id>/#` and the cloud's
    availability. Subscribers that must see every device (dashboards, vau-alerts) get their own
    `user` block with `topic read <base>/#`."""
    return (
        f"user {cloud_user}\n"
        f"topic readwrite {base}/#\n"
        f"topic readwrite {discovery_prefix}/#\n"
        "\n"
        f"pattern read {base}/%u/#\n"
        f"pattern read {availability_topic(base)}\n"
    )
