"""The cloud gRPC server: Uplink ingest, Query, health and reflection on one grpc.aio server.

`create_server(settings)` builds everything and binds the port (listen "127.0.0.1:0" picks a free
one); `await server.start()` serves; `await server.shutdown()` flips health to NOT_SERVING, refuses
new streams, ends open ones after their current batch (UNAVAILABLE), `stop(grace)`s gRPC and
closes the store. Call both on the event loop that will run the server.

Replicas: singleton work (event projector, MQTT alert publisher, retention of the event store and
of the ingest log) runs only while this process holds its role (`Roles`, advisory locks on
PostgreSQL; always held on SQLite), and the explainer claims each trigger before explaining it
(docs/storage.md).

Storage is opened once (`open_server_storage`, from `store.url`) and injected into ingest, the event
projector, the explainer, the MQTT alerts, the Query service and the review page; none of them
opens a database by path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from vau.cloud.admission import Admission, AskAdmission
from vau.cloud.auth import Authenticator, CredentialWatch, OpenStream, TokenFileError
from vau.cloud.codec import SERVICE
from vau.cloud.event_projector import EventProjector, Retention
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.service import ExplainerService
from vau.cloud.ingest import IngestDeps
from vau.cloud.ingest_retention import IngestRetention
from vau.cloud.metrics import CloudMetrics
from vau.cloud.mqtt import MqttConfigError, MqttService
from vau.cloud.notify import LogNotifier, Notifier
from vau.cloud.query.query_codec import SERVICE as QUERY_SERVICE
from vau.cloud.query.servicer import QueryServicer
from vau.cloud.replicas import Roles, replica_of
from vau.cloud.review import ReviewBindError, ReviewPage
from vau.cloud.servicer import UplinkServicer
from vau.cloud.sessions import SessionRegistry
from vau.cloud.settings import CloudSettings, TlsSettings, is_loopback
from vau.cloud.storage.factory import Storage, open_storage, store_errors
from vau.cloud.storage.ingest_log import StoreError
from vau.cloud.validate import Validator
from vau.cloud.writer import AsyncStore

log = logging.getLogger("vau.cloud.server")
SERVING = health_pb2.HealthCheckResponse.SERVING


class ServerConfigError(Exception):
    """The server cannot start as configured; the message says what to change."""


@dataclass
class CloudServer:
    settings: CloudSettings
    grpc_server: grpc.aio.Server
    health: health_aio.HealthServicer
    admission: Admission
    store: AsyncStore
    sessions: SessionRegistry
    metrics: CloudMetrics
    auth_mode: str
    roles: Roles
    port: int = 0
    projector: EventProjector | None = None  # events from accepted records, explainer or not
    retention: IngestRetention | None = None  # ingest retention, explainer or not
    metrics_port: int | None = None  # bound Prometheus port, once started
    mqtt: MqttService | None = None  # set when settings.mqtt.host is
    explainer: ExplainerService | None = None  # set when settings.explain.enabled
    query: QueryServicer | None = None
    review: ReviewPage | None = None  # set when settings.http_port is
    credentials: CredentialWatch | None = None  # open streams, re-checked against the tokens
    _stopping: bool = field(default=False, repr=False)
    _sweeper: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self) -> None:
        await self.grpc_server.start()
        for service in ("", SERVICE, QUERY_SERVICE):
            await self.health.set(service, SERVING)
        if self.credentials is not None and self.auth_mode == "token":
            sweep = self.credentials.run(self.settings.tokens_recheck_s)
            self._sweeper = asyncio.get_running_loop().create_task(sweep)
        if self.mqtt is not None:
            await self.mqtt.start()
        if self.projector is not None:
            await self.projector.start()
            self.store.on_commit.append(self.projector.committed)
        if self.explainer is not None:
            await self.explainer.start()
        if self.retention is not None:
            await self.retention.start()
        await self.roles.start()  # after the role listeners: a free role is taken at once
        if self.settings.metrics_port is not None:
            host = self.settings.metrics_bind_host
            self.metrics_port = self.metrics.serve(self.settings.metrics_port, host)
        if self.review is not None:
            await self.review.start()

    async def shutdown(self, grace: float | None = None) -> None:
        """Graceful stop; safe to call twice."""
        if self._stopping:
            return
        self._stopping = True
        await self.health.enter_graceful_shutdown()
        if self.settings.shutdown.drain_delay_s:
            await asyncio.sleep(self.settings.shutdown.drain_delay_s)
        self.admission.stop_all()
        await self.grpc_server.stop(self.settings.shutdown.grace_s if grace is None else grace)
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.sessions.close()
        if self.review is not None:
            await self.review.stop()
        if self.query is not None:
            await self.query.close()
        if self.explainer is not None:
            await self.explainer.stop()
        if self.projector is not None:
            await self.projector.stop()
        if self.retention is not None:
            await self.retention.stop()
        if self.mqtt is not None:
            await self.mqtt.stop()
        await self.roles.stop()  # the work stopped: another replica may take the roles now
        await asyncio.to_thread(self.store.close)

    async def wait_for_termination(self) -> None:
        await self.grpc_server.wait_for_termination()


def open_server_storage(settings: CloudSettings) -> Storage:
    """The one store of this process, from `store.url` (unset: `data_dir`); StoreError if the
    URL is not usable (a folder that cannot be made, a PostgreSQL server that refuses).

    Ingest retention keeps dedup rows `limits.max_clock_skew_s` past `dedup_retention_days`: a
    record may arrive with a capture time up to that far ahead of the cloud's clock, and a replay
    of it must still be refused as too old (`time`) once its row is gone (docs/storage.md)."""
    kept_s = settings.dedup_retention_days * 86_400 + settings.limits.max_clock_skew_s
    return open_storage(settings.store.url, settings.data_dir, kept_s)


def create_server(
    settings: CloudSettings, storage: Storage | None = None
) -> tuple[CloudServer, int]:
    """Build and bind the server (not started) on `storage` (default: the one the settings name).
    ServerConfigError for unusable settings."""
    creds = _credentials(settings)
    auth = _authenticator(settings)
    metrics = CloudMetrics()
    ss = settings.sessions
    sessions = SessionRegistry(ss.recent_records, ss.queue_size, metrics.session_dropped.inc)
    storage = storage if storage is not None else _storage(settings)
    store = _open_store(storage)
    admission = Admission(settings.limits, metrics)
    names = ("projector", "retention") + (("mqtt",) if settings.mqtt.host else ())
    roles = Roles(storage, names, settings.replicas.lease_check_s, metrics)
    mqtt = _mqtt_service(settings, storage, sessions, metrics, store, roles)
    deps = IngestDeps(
        Validator(settings.limits, settings.dedup_retention_days * 86_400),
        auth, admission, store, sessions, metrics, settings.limits, settings.batch,
        None if mqtt is None else mqtt.stream_changed,
    )  # fmt: skip
    server = grpc.aio.server(options=server_options(settings))
    credentials = CredentialWatch(auth, partial(_revoked, metrics))
    lim = settings.limits
    asks = AskAdmission(lim.ask_per_identity, lim.ask_in_flight, _ask_refused(metrics))
    query = QueryServicer(auth, settings.query_readers, storage, credentials, asks)
    uplink = UplinkServicer(deps, credentials)
    server.add_generic_rpc_handlers((uplink.handler(), query.handler()))
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = (SERVICE, QUERY_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
    port = _bind(server, settings.listen, creds, store)
    cloud = CloudServer(
        settings, server, health, admission, store, sessions, metrics, auth.mode, roles
    )
    cloud.port, cloud.mqtt, cloud.query, cloud.credentials = port, mqtt, query, credentials
    cloud.review = _review_page(settings, storage, metrics, store)
    cloud.projector = _projector(settings, storage, metrics, roles)
    days, check_s = settings.dedup_retention_days, settings.dedup_retention_check_s
    held = partial(roles.holds, "retention")
    cloud.retention = IngestRetention(storage, days, check_s, metrics, held)
    roles.on_change("retention", cloud.retention.wake)
    if settings.explain.enabled:
        notifier: Notifier = mqtt.notifier if mqtt is not None else LogNotifier()
        cloud.explainer = ExplainerService(
            settings.explain, storage, notifier, metrics.registry, limits=settings.limits,
            replica=replica_of(roles, settings.replicas.claim_s),
        )  # fmt: skip
        query.explainer = cloud.explainer
    return cloud, port


def _projector(
    s: CloudSettings, storage: Storage, metrics: CloudMetrics, roles: Roles
) -> EventProjector:
    """The event projector (while this replica holds the `projector` role); with the explainer
    off it also runs the repository's retention (the explainer does otherwise) while it holds
    the `retention` role, counted in the explainer's retention metrics."""
    e = s.explain
    active = partial(roles.holds, "projector")
    if e.enabled:
        return EventProjector(storage, s.limits, e.poll_s, active=active)
    counters = ExplainMetrics(metrics.registry)

    def counted(deleted: dict[str, int]) -> None:
        counters.retention_runs.inc()
        for table, n in deleted.items():
            counters.pruned.labels(table).inc(n)
        if any(deleted.values()):
            log.info("retention (%g days): pruned %s", e.retention_days, deleted)

    def unreadable(_position: int, reason: str) -> None:
        counters.unreadable.labels(reason).inc()

    retention = Retention(
        e.retention_days * 86_400.0, e.retention_check_s, counted, partial(roles.holds, "retention")
    )
    return EventProjector(
        storage, s.limits, e.poll_s, on_unreadable=unreadable, retention=retention, active=active
    )


def _ask_refused(metrics: CloudMetrics) -> Callable[[str], None]:
    return lambda reason: metrics.ask_refused.labels(reason).inc()


def _revoked(metrics: CloudMetrics, stream: OpenStream) -> None:
    metrics.streams_revoked.labels(stream.kind).inc()
    log.warning(
        "token of %s revoked or rotated: ending its open %s stream (UNAUTHENTICATED)",
        stream.principal,
        stream.kind,
    )


def _mqtt_service(
    s: CloudSettings,
    storage: Storage,
    sessions: SessionRegistry,
    metrics: CloudMetrics,
    store: AsyncStore,
    roles: Roles,
) -> MqttService | None:
    if s.mqtt.host is None:
        return None
    errors: tuple[type[Exception], ...] = (MqttConfigError, *store_errors())
    try:
        return MqttService(s.mqtt, s.data_dir, storage, sessions, metrics.registry, roles)
    except errors as exc:
        store.close()
        raise ServerConfigError(f"cannot set up MQTT alerts: {exc}") from None


def _review_page(
    s: CloudSettings, storage: Storage, metrics: CloudMetrics, store: AsyncStore
) -> ReviewPage | None:
    if s.http_port is None:
        return None
    try:
        return ReviewPage.bind(s.http_bind_host, s.http_port, storage, metrics.registry, s.limits)
    except ReviewBindError as exc:
        store.close()
        raise ServerConfigError(str(exc)) from None


def _storage(s: CloudSettings) -> Storage:
    try:
        return open_server_storage(s)
    except StoreError as exc:
        raise ServerConfigError(str(exc)) from None


def _open_store(storage: Storage) -> AsyncStore:
    try:
        return AsyncStore(storage)
    except store_errors() as exc:
        raise ServerConfigError(f"cannot open the store in {storage.description}: {exc}") from None


def server_options(s: CloudSettings) -> list[tuple[str, int]]:
    lim, ka = s.limits, s.keepalive
    return [
        ("grpc.max_receive_message_length", lim.max_message_bytes),
        ("grpc.max_send_message_length", lim.max_message_bytes),
        ("grpc.keepalive_time_ms", int(ka.time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(ka.timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", int(ka.permit_without_calls)),
        ("grpc.http2.min_ping_interval_without_data_ms", int(ka.min_ping_interval_s * 1000)),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.so_reuseport", 0),  # a port in use is an error, not a silently shared listener
    ]


def _credentials(s: CloudSettings) -> grpc.ServerCredentials | None:
    tls = s.tls
    if not tls.enabled:
        if not is_loopback(s.listen):
            raise ServerConfigError(
                f"refusing to serve plaintext on {s.listen}: set tls.server_cert and "
                "tls.server_key (and tls.client_ca for mTLS), or listen on 127.0.0.1"
            )
        return None
    return _tls_credentials(tls)


def _tls_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    assert tls.server_cert is not None and tls.server_key is not None
    try:
        chain, key = tls.server_cert.read_bytes(), tls.server_key.read_bytes()
        ca = tls.client_ca.read_bytes() if tls.require_client_cert and tls.client_ca else None
    except OSError as exc:
        raise ServerConfigError(f"cannot read a TLS file: {exc}; check the tls.* paths") from None
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=ca, require_client_auth=tls.require_client_cert
    )


def _authenticator(s: CloudSettings) -> Authenticator:
    try:
        auth = Authenticator.from_settings(s)
    except TokenFileError as exc:
        raise ServerConfigError(str(exc)) from None
    if auth.mode == "dev":
        log.warning(
            "DEV MODE: plaintext without a tokens file; the Hello's device_id is trusted. "
            "Set tokens_file or TLS before any real device connects."
        )
    return auth


def _bind(
    server: grpc.aio.Server, listen: str, creds: grpc.ServerCredentials | None, store: AsyncStore
) -> int:
    try:
        port = (
            server.add_insecure_port(listen)
            if creds is None
            else server.add_secure_port(listen, creds)
        )
    except RuntimeError as exc:
        port, reason = 0, str(exc)
    else:
        reason = "address in use or not local"
    if not port:
        store.close()
        raise ServerConfigError(f"cannot listen on {listen} ({reason}); pick another address")
    return int(port)
