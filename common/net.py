"""HOST:PORT addresses, shared by the cloud's listen setting and the edge's cloud address."""

from __future__ import annotations

import errno
import ipaddress

MAX_PORT = 65535
_FORM = "HOST:PORT, e.g. 127.0.0.1:50051 or [::1]:50051"


class PortError(Exception):
    """A port cannot be listened on; the message names the port and what to change."""


def host_port(address: str) -> tuple[str, int]:
    """Split HOST:PORT ("[::1]:50051" for IPv6); ValueError says what is wrong with `address`."""
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{address!r} has no port; expected {_FORM}")
    if not port.isascii() or not port.isdigit():
        raise ValueError(f"port {port!r} of {address!r} is not a number; expected {_FORM}")
    if int(port) > MAX_PORT:
        raise ValueError(f"port {port} of {address!r} is out of range (0-{MAX_PORT})")
    host = host.removeprefix("[").removesuffix("]")
    if not host or (":" in host and not address.startswith("[")):
        raise ValueError(f"{address!r} is not {_FORM} (IPv6 hosts go in brackets)")
    return host, int(port)


def port_error(what: str, port: int, exc: OSError, flag: str) -> PortError:
    """The one-line error for a `port` that `what` ("metrics") could not listen on."""
    if exc.errno == errno.EADDRINUSE:
        why = "is already in use (another process listens there)"
    elif exc.errno == errno.EACCES:
        why = "needs privileges (ports below 1024 are reserved)"
    else:
        why = f"cannot be listened on ({exc.strerror or exc})"
    return PortError(f"{what} port {port} {why}; pick another {flag}")


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
