"""Prometheus metrics of the edge agent, declared once.

Every drop, reconnect and error is a counter here and a log line where it happens. Metrics live in a
module-level registry so a process has one set; `serve(port)` exposes them over HTTP.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from vau.common.net import port_error

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)

FRAMES = Counter(
    "vau_edge_frames_total", "Frames processed by the encoder.", ["camera"], registry=REGISTRY
)
FRAMES_READ = Counter(
    "vau_edge_frames_read_total", "Frames decoded from the source.", ["camera"], registry=REGISTRY
)
FRAMES_DROPPED = Counter(
    "vau_edge_frames_dropped_total",
    "Frames not processed, by reason: 'overrun' (live buffer full, newest wins), "
    "'sampling' (above the target fps), 'decode' (unreadable frame).",
    ["camera", "reason"],
    registry=REGISTRY,
)
SOURCE_RECONNECTS = Counter(
    "vau_edge_source_reconnects_total",
    "Attempts to reopen a live source after it failed.",
    ["camera"],
    registry=REGISTRY,
)
SOURCE_UP = Gauge(
    "vau_edge_source_up", "1 while the source delivers frames.", ["camera"], registry=REGISTRY
)
FRAME_LATENCY = Histogram(
    "vau_edge_frame_latency_seconds",
    "From a frame leaving its source to its scores reaching the sinks, per camera (includes the "
    "wait for its turn in the shared model stage).",
    ["camera"],
    buckets=(*_LATENCY_BUCKETS, 5.0, 10.0),
    registry=REGISTRY,
)
CAMERA_FAILURES = Counter(
    "vau_edge_camera_failures_total",
    "Cameras ended by a source error while other cameras of the process went on.",
    ["camera"],
    registry=REGISTRY,
)
ENCODER_SECONDS = Histogram(
    "vau_edge_encoder_seconds",
    "Wall time of one encoder call (one batch).",
    ["backend"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STAGE_SECONDS = Histogram(
    "vau_edge_stage_seconds",
    "Wall time per frame of each pipeline stage.",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
EVENTS = Counter(
    "vau_edge_events_total",
    "Event lifecycle changes emitted, by state (new, update, end).",
    ["camera", "state"],
    registry=REGISTRY,
)
EVENTS_DISCARDED = Counter(
    "vau_edge_events_discarded_total",
    "Candidate events shorter than events.min_duration_s.",
    ["camera"],
    registry=REGISTRY,
)
TOKENS_KEPT = Counter(
    "vau_edge_tokens_kept_total", "Patch tokens kept by SETS.", ["camera"], registry=REGISTRY
)
ANOMALY_SCORE = Gauge(
    "vau_edge_anomaly_score", "Latest smoothed anomaly score.", ["camera"], registry=REGISTRY
)

UPLINK_BYTES = Counter(
    "vau_edge_uplink_bytes_total", "Bytes of records written to the uplink stream.",
    registry=REGISTRY,
)  # fmt: skip
UPLINK_RECORDS_SENT = Counter(
    "vau_edge_uplink_records_sent_total",
    "Records written to the uplink (re-sends after a reconnect count again).",
    ["camera", "kind"],
    registry=REGISTRY,
)
UPLINK_CONNECTED = Gauge(
    "vau_edge_uplink_connected", "1 while a stream to the cloud is up.", registry=REGISTRY
)
UPLINK_RECONNECTS = Counter(
    "vau_edge_uplink_reconnects_total", "Uplink streams that ended and were retried.",
    registry=REGISTRY,
)  # fmt: skip
UPLINK_FAILOVERS = Counter(
    "vau_edge_uplink_failovers_total",
    "Times the uplink moved to the next of several cloud addresses (uplink.cloud) after a "
    "stream to the current one failed.",
    registry=REGISTRY,
)
UPLINK_REJECTED = Counter(
    "vau_edge_uplink_rejected_total",
    "Records the cloud refused as invalid; dropped from the outbox and logged.",
    ["reason"],
    registry=REGISTRY,
)
WINDOW_FRAMES_MISSING = Counter(
    "vau_edge_window_frames_missing_total",
    "Frames ATS chose for a window that had already left the in-memory ring (uplink.ring_frames).",
    ["camera"],
    registry=REGISTRY,
)


def serve(port: int, addr: str = "0.0.0.0") -> int:
    """Expose /metrics; returns the bound port (pass 0 for a free one). PortError when taken."""
    try:
        server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
    except OSError as exc:
        raise port_error("metrics", port, exc, "--metrics-port (output.metrics_port)") from None
    return int(server.server_port)


# Durable outbox (vau.edge.uplink.outbox). Its exact lifetime totals live in the outbox file itself
# (`vau-edge outbox stats`); these count what this process did.
RECORDS_ENQUEUED = Counter(
    "vau_edge_records_enqueued_total",
    "Records written to the outbox (each got a seq; includes ones dropped on arrival when full).",
    ["camera", "kind"],
    registry=REGISTRY,
)
RECORDS_ACKED = Counter(
    "vau_edge_records_acked_total",
    "Records the cloud acknowledged, deleted from the outbox.",
    ["camera"],
    registry=REGISTRY,
)
OUTBOX_BYTES = Gauge(
    "vau_edge_outbox_bytes", "Record body bytes held in the outbox.", registry=REGISTRY
)
OUTBOX_RECORDS = Gauge(
    "vau_edge_outbox_records", "Records held in the outbox (unacked).", registry=REGISTRY
)
OUTBOX_EVICTED = Counter(
    "vau_edge_outbox_evicted_total",
    "Records removed unsent, by reason: 'full' (the byte cap; lowest priority, oldest first) or "
    "'expired' (older than ttl_s).",
    ["reason", "kind"],
    registry=REGISTRY,
)
OUTBOX_EXPIRED = Counter(
    "vau_edge_outbox_expired_total",
    "Records removed unsent because they were older than ttl_s.",
    ["kind"],
    registry=REGISTRY,
)
OUTBOX_ACKS_IGNORED = Counter(
    "vau_edge_outbox_acks_ignored_total",
    "Acks ignored because they named another outbox epoch.",
    ["camera"],
    registry=REGISTRY,
)
OUTBOX_PUT_SECONDS = Histogram(
    "vau_edge_outbox_put_seconds",
    "Wall time of one outbox put, fsync included.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
NORMALITY_MEMORY = Counter(
    "vau_edge_normality_memory_total",
    "Online adaptation of the camera's normality memory: 'added' (normal patches joined), "
    "'evicted' (older adapted patches left to bound the memory), 'refused' (frames kept out: "
    "scored anomalous, or seen within normality.horizon_s of an open event).",
    ["camera", "change"],
    registry=REGISTRY,
)
NORMALITY_SCORE = Gauge(
    "vau_edge_normality_score",
    "Latest calibrated normality score of the camera in [0, 1].",
    ["camera"],
    registry=REGISTRY,
)
