"""Prometheus metrics of the edge agent, declared once.

Every drop, reconnect and error is a counter here and a log line where it happens. Metrics live in a
module-level registry so a process has one set; `serve(port)` exposes them over HTTP.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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


def serve(port: int, addr: str = "0.0.0.0") -> int:
    """Expose /metrics; returns the bound port (pass 0 for a free one)."""
    server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
    return int(server.server_port)
