"""The gRPC channel to the cloud: credentials, keepalive and size caps from UplinkSettings.

Plaintext is allowed only to a loopback address; anything else needs `uplink.tls_ca` (and a client
certificate or a token). A token is sent only where the channel is encrypted or stays on the host.

`uplink.cloud` is one HOST:PORT or several, comma-separated (`a:50051,b:50051`): replicas of one
cloud on one database, which the uplink fails over between (`vau.edge.uplink.client`).
"""

from __future__ import annotations

from typing import Any

import grpc

from vau.common.net import host_port, is_loopback_host
from vau.edge.settings import UplinkSettings

STREAM_METHOD = "/vau.v1.Uplink/Stream"


class UplinkConfigError(Exception):
    """The uplink cannot be configured as asked; the message says what to set."""


def channel_options(cfg: UplinkSettings) -> list[tuple[str, Any]]:
    return [
        ("grpc.keepalive_time_ms", int(cfg.keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_send_message_length", cfg.max_message_bytes),
        ("grpc.max_receive_message_length", cfg.max_message_bytes),
        ("grpc.enable_retries", 0),  # a stream is resumed by sequence numbers, not retried
    ]


def addresses(cfg: UplinkSettings) -> list[str]:
    """The cloud addresses in failover order, each checked; UplinkConfigError says what is wrong."""
    if cfg.cloud is None or not cfg.cloud.strip():
        raise UplinkConfigError("no cloud address: set uplink.cloud or pass --cloud HOST:PORT")
    found = [a.strip() for a in cfg.cloud.split(",")]
    if "" in found:
        raise UplinkConfigError(
            f"uplink.cloud {cfg.cloud!r} has an empty address; use HOST:PORT[,HOST:PORT...]"
        )
    if len(set(found)) != len(found):
        raise UplinkConfigError(f"uplink.cloud {cfg.cloud!r} lists an address twice")
    for address in found:
        try:
            host, _port = host_port(address)
        except ValueError as exc:
            raise UplinkConfigError(f"uplink.cloud: {exc}") from None
        if cfg.tls_ca is None and not is_loopback_host(host):
            raise UplinkConfigError(
                f"plaintext uplink only to a loopback address, not {host}; set uplink.tls_ca "
                "(and tls_cert/tls_key or a token) to reach a remote cloud"
            )
    return found


def check(cfg: UplinkSettings) -> str:
    """The cloud address(es), once the settings are known to make usable channels."""
    found = addresses(cfg)
    for name in ("tls_ca", "tls_cert", "tls_key"):
        if getattr(cfg, name) is not None:
            _read(cfg, name)
    return ",".join(found)


def open_channel(cfg: UplinkSettings, address: str | None = None) -> grpc.aio.Channel:
    """A channel to `address` (one of `addresses(cfg)`; default: the first)."""
    check(cfg)
    address = address or addresses(cfg)[0]
    options = channel_options(cfg)
    if cfg.tls_ca is None:
        return grpc.aio.insecure_channel(address, options=options)
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read(cfg, "tls_ca"),
        private_key=_read(cfg, "tls_key") if cfg.tls_key else None,
        certificate_chain=_read(cfg, "tls_cert") if cfg.tls_cert else None,
    )
    return grpc.aio.secure_channel(address, creds, options=options)


def call_metadata(cfg: UplinkSettings) -> tuple[tuple[str, str], ...]:
    if cfg.token is None:
        return ()
    return (("authorization", f"Bearer {cfg.token.get_secret_value()}"),)


def _read(cfg: UplinkSettings, field: str) -> bytes:
    path = getattr(cfg, field)
    try:
        return bytes(path.read_bytes())
    except OSError as exc:
        raise UplinkConfigError(f"uplink.{field} = {path}: {exc.strerror}") from None
