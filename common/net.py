"""HOST:PORT addresses, shared by the cloud's listen setting and the edge's cloud address."""

from __future__ import annotations

import ipaddress


def host_port(address: str) -> tuple[str, int]:
    """Split HOST:PORT ("[::1]:50051" for IPv6); ValueError names the expected form."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT (127.0.0.1:50051, [::1]:50051), got {address!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: traffic that never leaves the machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback(address: str) -> bool:
    return is_loopback_host(host_port(address)[0])
