"""A development PKI for mTLS (EC P-256): one CA, a server certificate, device certificates.

Layout of a folder made by `vau-cloud certs init --out DIR`:
  ca.crt, ca.key           the CA (keep ca.key off the server in production)
  server.crt, server.key   SANs: localhost, 127.0.0.1, ::1 and every --server-name
  DEVICE.crt, DEVICE.key   subject CN = device id, clientAuth; the cloud reads the id from the CN
Key files are written 0600. Production sites use their own CA; these settings only need PEM files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vau.cloud.auth import device_id_problem

DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


class CertError(Exception):
    """A certificate cannot be made or loaded; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class PemPair:
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(common_name: str = "vau development CA", days: int = 3650) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue(
    ca: Issued,
    common_name: str,
    *,
    server_names: Sequence[str] = (),
    client: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """A leaf certificate: a server one when `server_names` are given, a client one if `client`."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or _now() - dt.timedelta(minutes=5)
    usage = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if server_names:
        alt = x509.SubjectAlternativeName([_alt_name(n) for n in server_names])
        builder = builder.add_extension(alt, critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def issue_device(ca: Issued, device: str, days: int = 825) -> Issued:
    problem = device_id_problem(device)
    if problem is not None:
        raise CertError(problem)
    return issue(ca, device, client=True, not_after=_now() + dt.timedelta(days=days))


def issue_expired_device(ca: Issued, device: str) -> Issued:
    """A device certificate that expired yesterday (for tests of the handshake's refusal)."""
    now = _now()
    return issue(
        ca, device, client=True, not_before=now - dt.timedelta(days=3),
        not_after=now - dt.timedelta(days=1),
    )  # fmt: skip


def write_pair(issued: Issued, out: Path, stem: str) -> PemPair:
    """Write STEM.crt (0644) and STEM.key (0600, created with that mode) under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    pair = PemPair(out / f"{stem}.crt", out / f"{stem}.key")
    pair.cert.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    pem = issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pair.key.unlink(missing_ok=True)
    fd = os.open(pair.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return pair


def load_ca(ca_dir: Path) -> Issued:
    cert_path, key_path = ca_dir / "ca.crt", ca_dir / "ca.key"
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CertError(f"cannot load the CA from {ca_dir} (ca.crt, ca.key): {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{key_path} is not an EC private key")
    return Issued(cert, key)


def init_dir(
    out: Path, devices: Sequence[str] = (), server_names: Sequence[str] = ()
) -> dict[str, PemPair]:
    """A new CA, server certificate and device certificates under `out`; refuses to overwrite."""
    if (out / "ca.key").exists():
        raise CertError(f"{out} already holds a CA; use `vau-cloud certs device` to add devices")
    problems = [p for p in map(device_id_problem, devices) if p is not None]
    if problems:
        raise CertError("; ".join(problems))
    ca = make_ca()
    names = list(dict.fromkeys([*DEFAULT_SERVER_NAMES, *server_names]))
    made = {"ca": write_pair(ca, out, "ca")}
    made["server"] = write_pair(issue(ca, names[0], server_names=names), out, "server")
    for device in devices:
        made[device] = write_pair(issue_device(ca, device), out, device)
    return made


def device_files(ca_dir: Path, device: str, out: Path) -> PemPair:
    """One more device certificate from the CA in `ca_dir`, written to `out`."""
    if device in ("ca", "server"):
        raise CertError(f"device id {device!r} would overwrite the {device} files; pick another")
    return write_pair(issue_device(load_ca(ca_dir), device), out, device)
