"""Every cloud setting, declared once: default, bounds, description.

Layers, lowest to highest: defaults < `--config FILE` (TOML) < `VAU_CLOUD__...` environment <
command-line flags. Unknown keys are errors at every layer; values are never silently "fixed".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from vau.cloud.explain.settings import ExplainSettings
from vau.common.net import host_port, is_loopback, is_loopback_host
from vau.common.settings import LayeredSettings, SettingsError, Strict, environment_keys, load

__all__ = [
    "CloudSettings",
    "MqttSettings",
    "SettingsError",
    "cloud_environment_keys",
    "is_loopback",
    "load_settings",
]

MIB = 2**20


class TlsSettings(Strict):
    server_cert: Path | None = Field(None, description="PEM certificate chain of this server.")
    server_key: Path | None = Field(None, description="PEM private key of server_cert.")
    client_ca: Path | None = Field(
        None, description="PEM CA that signs device certificates (mTLS); needed for client certs."
    )
    require_client_cert: bool = Field(
        True,
        description="true: devices authenticate with a client certificate (device id = subject "
        "CN); false: TLS without client certificates, devices send a bearer token.",
    )

    @property
    def enabled(self) -> bool:
        return self.server_cert is not None

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.server_cert is None) != (self.server_key is None):
            raise ValueError("tls.server_cert and tls.server_key must be set together")
        if self.enabled and self.require_client_cert and self.client_ca is None:
            raise ValueError("tls.require_client_cert needs tls.client_ca (the device CA)")
        return self


class LimitSettings(Strict):
    max_streams: int = Field(256, ge=1, le=100_000, description="Concurrent device streams.")
    per_device_records_per_s: float = Field(
        200.0, gt=0, le=1e6, description="Sustained records per second one device may send."
    )
    burst: int = Field(400, ge=1, le=1_000_000, description="Token-bucket size of that rate.")
    max_message_bytes: int = Field(
        4 * MIB, ge=2**16, le=64 * MIB, description="Receive cap; larger -> RESOURCE_EXHAUSTED."
    )
    max_in_flight: int = Field(
        64, ge=1, le=10_000, description="Unacked records a device may have outstanding."
    )
    max_tokens_per_frame: int = Field(4096, ge=1, le=65_536, description="K of a token frame.")
    max_channels: int = Field(4096, ge=1, le=65_536, description="C of a token frame.")
    max_grid: int = Field(128, ge=1, le=1024, description="Patch grid rows and cols, each.")
    max_text_chars: int = Field(4096, ge=16, le=65_536, description="Prior text and ids.")
    max_cameras: int = Field(64, ge=1, le=4096, description="Cameras one Hello may list.")
    max_clock_skew_s: float = Field(
        300.0, ge=0, le=86_400, description="How far capture_time may lie in the future."
    )
    ask_per_identity: int = Field(
        1,
        ge=1,
        le=64,
        description="Query.Ask calls one identity may have in flight; beyond, "
        "RESOURCE_EXHAUSTED (answers share the explainer's one LLM worker).",
    )
    ask_in_flight: int = Field(
        4, ge=1, le=1024, description="Query.Ask calls in flight on the server, all identities."
    )
    hello_timeout_s: float = Field(
        10.0, gt=0, le=600, description="A stream must send Hello within this time."
    )


class KeepaliveSettings(Strict):
    permit_without_calls: bool = Field(
        True, description="Allow client pings while no stream is open."
    )
    min_ping_interval_s: float = Field(
        10.0, ge=1, le=3600, description="Pings closer than this are a policy violation."
    )
    time_s: float = Field(60.0, ge=1, le=7200, description="Server ping period on idle links.")
    timeout_s: float = Field(20.0, ge=1, le=600, description="Wait for a ping's reply.")


class ShutdownSettings(Strict):
    grace_s: float = Field(
        10.0, ge=0, le=600, description="Streams get this long to finish before being cancelled."
    )
    drain_delay_s: float = Field(
        0.0, ge=0, le=60, description="Health reads NOT_SERVING this long before stop begins."
    )


class BatchSettings(Strict):
    max_records: int = Field(256, ge=1, le=10_000, description="Records per store transaction.")
    max_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="Wait this long for more records before committing."
    )


class SessionSettings(Strict):
    recent_records: int = Field(
        16, ge=0, le=10_000, description="Accepted records kept in memory per camera (decoded)."
    )
    queue_size: int = Field(
        256, ge=1, le=100_000, description="Records queued per subscriber; beyond, drops counted."
    )


class MqttTlsSettings(Strict):
    ca: Path | None = Field(
        None, description="PEM CA that signs the broker's certificate; set = TLS."
    )
    cert: Path | None = Field(None, description="PEM client certificate (broker mTLS).")
    key: Path | None = Field(None, description="PEM private key of cert.")
    insecure: bool = Field(
        False,
        description="Skip the broker hostname check (test brokers only).",
    )

    @model_validator(mode="after")
    def _pair(self) -> MqttTlsSettings:
        if (self.cert is None) != (self.key is None):
            raise ValueError("mqtt.tls.cert and mqtt.tls.key must be set together")
        if self.cert is not None and self.ca is None:
            raise ValueError("mqtt.tls.cert needs mqtt.tls.ca (the broker's CA)")
        return self


class MqttSettings(Strict):
    host: str | None = Field(None, description="Broker host name or address; unset = MQTT off.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 is usual with TLS).")
    client_id: str = Field(
        "vau-cloud",
        min_length=1,
        max_length=128,
        description="MQTT client id; the broker keeps this id's persistent session.",
    )
    keepalive_s: int = Field(
        10, ge=2, le=3600, description="MQTT keepalive; the broker sends the last will after 1.5x."
    )
    base_topic: str = Field(
        "vau",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$",
        description="First topic level(s) of every vau topic.",
    )
    username: str | None = Field(None, description="Broker user name.")
    password: SecretStr | None = Field(None, description="Broker password (needs username).")
    tls: MqttTlsSettings = MqttTlsSettings()
    qos: Literal[1] = Field(1, description="Fixed: QoS 1 (at least once; alert_id marks repeats).")
    outbox_max_records: int = Field(
        100_000, ge=10, le=10_000_000, description="Unacked alerts kept; beyond, oldest evicted."
    )
    outbox_max_bytes: int = Field(
        256 * MIB, ge=2**16, le=2**34, description="Payload bytes kept; beyond, oldest evicted."
    )
    discovery: bool = Field(True, description="Publish Home Assistant MQTT discovery configs.")
    discovery_prefix: str = Field(
        "homeassistant", min_length=1, max_length=64, description="Home Assistant's prefix."
    )
    poll_s: float = Field(
        0.5, gt=0, le=60, description="How often the alert tail re-reads the store if not woken."
    )

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttSettings:
        if self.password is not None and self.username is None:
            raise ValueError("mqtt.password needs mqtt.username")
        return self


class StoreSettings(Strict):
    url: str | None = Field(
        None,
        min_length=1,
        description="Where the ingest log and the event repository live: a folder path or "
        "sqlite:///ABS/PATH (SQLite files in that folder), or postgresql://USER:PW@HOST:PORT/DB "
        "(docs/storage.md); unset = data_dir.",
    )


class ReplicaSettings(Strict):
    lease_check_s: float = Field(
        1.0,
        ge=0.1,
        le=60,
        description="How often a replica tries to take a free singleton role (projector, MQTT "
        "publisher, retention) and checks the ones it holds (docs/storage.md).",
    )
    claim_s: float = Field(
        300.0,
        ge=5,
        le=86_400,
        description="An explanation claimed by a replica that died is taken over by another "
        "after this long; longer than one explanation takes.",
    )


class CloudSettings(LayeredSettings):
    model_config = SettingsConfigDict(env_prefix="VAU_CLOUD__")
    env_prefix: ClassVar[str] = "VAU_CLOUD__"

    listen: str = Field(
        "127.0.0.1:50051", min_length=3, description="HOST:PORT to serve gRPC on (port 0 = any)."
    )
    data_dir: Path = Field(
        Path("vau-cloud-data"), description="Folder of ingest.sqlite3 (dedup state and records)."
    )
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus port.")
    metrics_host: str | None = Field(
        None,
        min_length=1,
        description="Address the Prometheus endpoint (no login) binds; unset = the listen host, "
        "so a loopback server keeps its metrics on loopback. Set 0.0.0.0 to expose it.",
    )
    tokens_file: Path | None = Field(
        None, description="JSON file of per-device token hashes (`vau-cloud tokens add`)."
    )
    tokens_recheck_s: float = Field(
        0.5,
        ge=0.05,
        le=60,
        description="How often open streams re-check the tokens file: a stream (uplink or "
        "watch) whose token was revoked or rotated ends with UNAUTHENTICATED within this.",
    )
    http_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of the review page (events live, explanations, where they happened) "
        "and its JSON API; 0 = any free one; unset = no page.",
    )
    http_host: str | None = Field(
        None, min_length=1, description="Address the review page binds; unset = the listen host."
    )
    http_public: bool = Field(
        False,
        description="Allow the review page, which has no login, on a non-loopback address "
        "(put an authenticating proxy in front of it).",
    )
    query_readers: tuple[str, ...] = Field(
        (),
        description="Identities (certificate CN or tokens-file name) that may read every "
        "device's events over the Query service; any other device reads only its own.",
    )
    dedup_retention_days: float = Field(
        30.0,
        ge=8,
        le=3650,
        description="Dedup state and records are kept this long; must outlive the edge's "
        "outbox TTL (edge default 7 days). Older capture times are rejected.",
    )
    dedup_retention_check_s: float = Field(
        3600.0,
        gt=0,
        le=86_400,
        description="How often ingest retention deletes records and dedup state older than "
        "dedup_retention_days (also at start; on the replica holding the retention role).",
    )
    tls: TlsSettings = TlsSettings()
    limits: LimitSettings = LimitSettings()
    keepalive: KeepaliveSettings = KeepaliveSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    batch: BatchSettings = BatchSettings()
    sessions: SessionSettings = SessionSettings()
    mqtt: MqttSettings = MqttSettings()
    explain: ExplainSettings = ExplainSettings()
    store: StoreSettings = StoreSettings()
    replicas: ReplicaSettings = ReplicaSettings()

    @field_validator("listen")
    @classmethod
    def _listen_is_host_port(cls, v: str) -> str:
        host_port(v)
        return v

    @property
    def http_bind_host(self) -> str:
        """The review page's address: http_host, else the host of `listen`."""
        return self.http_host if self.http_host is not None else host_port(self.listen)[0]

    @property
    def metrics_bind_host(self) -> str:
        """The metrics endpoint's address: metrics_host, else the host of `listen`."""
        return self.metrics_host if self.metrics_host is not None else host_port(self.listen)[0]

    @model_validator(mode="after")
    def _public_page_needs_consent(self) -> CloudSettings:
        host = self.http_bind_host
        if self.http_port is not None and not self.http_public and not is_loopback_host(host):
            raise ValueError(
                f"the review page has no login: refusing to serve it on {host}; set http_host "
                "= 127.0.0.1 (with an authenticating proxy in front) or http_public = true"
            )
        return self

    @model_validator(mode="after")
    def _token_mode_needs_tokens(self) -> CloudSettings:
        if self.tls.enabled and not self.tls.require_client_cert and self.tokens_file is None:
            raise ValueError("TLS without client certificates needs tokens_file (device tokens)")
        return self


def load_settings(
    config: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> CloudSettings:
    """Build settings from the four layers; raise SettingsError with a readable message."""
    return load(CloudSettings, config, overrides)


def cloud_environment_keys() -> list[str]:
    return environment_keys(CloudSettings.env_prefix)
