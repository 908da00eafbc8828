"""Prometheus metrics of the cloud ingest, declared once per server (each server has its own
registry, so tests and embedded servers never share counts). Every rejection, duplicate and
dropped delivery is counted here."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from vau.common.net import port_error

_COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class CloudMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.received = Counter(
            "vau_cloud_records_received_total", "Record messages read off streams.", registry=r
        )
        self.accepted = Counter(
            "vau_cloud_records_accepted_total", "Records validated and stored.", registry=r
        )
        self.duplicates = Counter(
            "vau_cloud_records_duplicate_total",
            "Records at or below the dedup high-water mark: acked, not stored again.",
            registry=r,
        )
        self.rejected = Counter(
            "vau_cloud_rejected_total",
            "Streams ended by bad input or refused admission, by reason (validation reasons, "
            "'decode', 'unauthenticated', 'permission', 'streams', 'rate').",
            ["reason"],
            registry=r,
        )
        self.streams_active = Gauge(
            "vau_cloud_streams_active", "Device streams admitted and open.", registry=r
        )
        self.streams_superseded = Counter(
            "vau_cloud_streams_superseded_total",
            "Streams ended because the same device opened a newer one.",
            registry=r,
        )
        self.commit_seconds = Histogram(
            "vau_cloud_store_commit_seconds",
            "Wall time of one store transaction (fsync included).",
            buckets=_COMMIT_BUCKETS,
            registry=r,
        )
        self.acks = Counter("vau_cloud_acks_sent_total", "Cumulative acks sent.", registry=r)
        self.flow = Counter(
            "vau_cloud_flow_control_sent_total", "FlowControl pauses sent to devices.", registry=r
        )
        self.streams_revoked = Counter(
            "vau_cloud_streams_revoked_total",
            "Open streams ended because their token was revoked or rotated, by kind "
            "('uplink', 'watch').",
            ["kind"],
            registry=r,
        )
        self.ask_refused = Counter(
            "vau_cloud_ask_refused_total",
            "Query.Ask calls refused by admission (RESOURCE_EXHAUSTED), by reason ('identity': "
            "its identity at limits.ask_per_identity; 'server': at limits.ask_in_flight).",
            ["reason"],
            registry=r,
        )
        self.session_dropped = Counter(
            "vau_cloud_session_dropped_total",
            "Accepted records a slow session subscriber missed (the store still has them).",
            registry=r,
        )

        self.lease_acquired = Counter(
            "vau_cloud_lease_acquired_total",
            "Singleton roles ('projector', 'mqtt', 'retention') this replica took.",
            ["role"],
            registry=r,
        )
        self.lease_lost = Counter(
            "vau_cloud_lease_lost_total",
            "Singleton roles this replica lost while running (its database session broke).",
            ["role"],
            registry=r,
        )
        self.lease_held = Gauge(
            "vau_cloud_lease_held", "1 while this replica holds the role.", ["role"], registry=r
        )
        self.ingest_pruned = Counter(
            "vau_cloud_ingest_pruned_total",
            "Ingest log rows deleted by retention (dedup_retention_days), by table ('records', "
            "'dedup').",
            ["table"],
            registry=r,
        )
        self.ingest_retention_runs = Counter(
            "vau_cloud_ingest_retention_runs_total",
            "Retention passes over the ingest log (every dedup_retention_check_s, on the replica "
            "holding the 'retention' role).",
            registry=r,
        )
        self.explain_claims = Counter(
            "vau_cloud_explain_claims_total",
            "Pending explanations this replica tried to claim, by outcome ('claimed'; 'taken': "
            "another replica holds an unexpired claim).",
            ["outcome"],
            registry=r,
        )

    def serve(self, port: int, addr: str) -> int:
        """Expose /metrics over HTTP on `addr`:`port` (0 = any free one) from a daemon thread;
        the port. PortError when it cannot be listened on."""
        try:
            httpd, _thread = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            raise port_error("metrics", port, exc, "--metrics-port") from None
        return int(httpd.server_port)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when never set), for tests and stats."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else float(found)
