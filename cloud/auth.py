"""Who is on the other end of a stream: identity comes from the credential, never the payload.

Modes, chosen by the settings:
- "mtls": TLS with required client certificates signed by `tls.client_ca`; the device id is the
  certificate's subject common name (CN). gRPC verifies chain and validity at the handshake.
- "token": a per-device bearer token in the `authorization: Bearer <token>` metadata; the tokens
  file keeps only sha256(token) per device (tokens are 32 random bytes, so a fast hash suffices).
- "dev": plaintext on loopback with no tokens file: the Hello's device id is trusted (warned at
  start). Plaintext with a tokens file is "token" mode.
A credential that names no known device -> UNAUTHENTICATED; a Hello that names another device
than the credential -> PERMISSION_DENIED.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vau.cloud.records import AuthError, RecordRejected
from vau.cloud.settings import CloudSettings
from vau.cloud.validate import valid_id

log = logging.getLogger("vau.cloud.auth")
AuthMode = Literal["mtls", "token", "dev"]
TOKENS_FORMAT = "vau-device-tokens/1"


CLOUD_NAME = "vau-cloud"  # the cloud's own name (MQTT client id and broker user): no device's
RESERVED_DEVICE_IDS = frozenset({CLOUD_NAME})


def device_id_problem(device: str) -> str | None:
    """Why `device` cannot be a device id (format, or a name reserved for the cloud), or None."""
    if not valid_id(device):
        return f"device id {device[:80]!r} must be 1-64 chars [A-Za-z0-9._:@-]"
    if device.lower() in RESERVED_DEVICE_IDS:
        return f"device id {device!r} is reserved for the cloud itself; pick another device id"
    return None


class TokenFileError(Exception):
    """The tokens file is unreadable or malformed; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class Credential:
    """What the transport proved, extracted from the call by the servicer."""

    cert_cn: str | None  # subject CN of a client certificate gRPC verified
    bearer: str | None  # the token of an `authorization: Bearer <token>` header


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def read_tokens(path: Path) -> dict[str, str]:
    """device -> sha256 hex of its token."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = "create it with `vau-cloud tokens add DEVICE --tokens-file FILE`"
        raise TokenFileError(f"tokens file {path} does not exist; {hint}") from None
    except (OSError, ValueError) as exc:
        raise TokenFileError(f"tokens file {path} is not readable JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != TOKENS_FORMAT:
        raise TokenFileError(f"tokens file {path} is not a {TOKENS_FORMAT} file")
    devices = doc.get("devices")
    if not isinstance(devices, dict):
        raise TokenFileError(f"tokens file {path} is not a {TOKENS_FORMAT} file")
    ok = all(isinstance(v, str) and len(v) == 64 for v in devices.values())
    if not ok:
        raise TokenFileError(f"tokens file {path}: every device needs a sha256 hex digest")
    return dict(devices)


def add_token(path: Path, device: str) -> str:
    """Make a new token for `device` (replacing any old one), store its hash, return the token."""
    problem = device_id_problem(device)
    if problem is not None:
        raise TokenFileError(problem)
    devices = read_tokens(path) if path.exists() else {}
    token = secrets.token_urlsafe(32)
    devices[device] = token_hash(token)
    _write_tokens(path, devices)
    return token


def revoke_token(path: Path, device: str) -> None:
    """Remove `device`'s token: new calls and its open streams are refused (UNAUTHENTICATED)."""
    devices = read_tokens(path)
    if devices.pop(device, None) is None:
        raise TokenFileError(f"tokens file {path} has no token for {device!r}; nothing revoked")
    _write_tokens(path, devices)


def _write_tokens(path: Path, devices: dict[str, str]) -> None:
    """Replace the file atomically (a new inode: servers notice the change)."""
    body = json.dumps({"format": TOKENS_FORMAT, "devices": devices}, indent=2, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(body + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class TokenTable:
    """The tokens file, re-read when it changes (modification time, inode or size: `tokens add`
    replaces the file, and needs no restart). `version` counts the reloads. Lookups compare
    against every entry with hmac.compare_digest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] = (-1, -1, -1)
        self._hashes: dict[str, str] = {}
        self.version = 0
        self._refresh()

    def _refresh(self) -> None:
        st = self.path.stat() if self.path.exists() else None
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size) if st is not None else (0, 0, 0)
        if stamp != self._stamp:
            self._hashes = read_tokens(self.path)
            self._stamp = stamp
            self.version += 1

    def refresh(self) -> None:
        """Re-read the file if it changed; a broken edit keeps the last good table (the next
        change is read again)."""
        with contextlib.suppress(OSError, TokenFileError):
            self._refresh()

    def device_of(self, token: str) -> str | None:
        self.refresh()
        digest = token_hash(token)
        found = None
        for device, expected in self._hashes.items():
            if hmac.compare_digest(digest, expected):
                found = device
        return found


class Authenticator:
    def __init__(self, mode: AuthMode, tokens: TokenTable | None) -> None:
        if mode == "token" and tokens is None:
            raise ValueError("token mode needs a TokenTable")
        self.mode, self._tokens = mode, tokens

    @classmethod
    def from_settings(cls, s: CloudSettings) -> Authenticator:
        tokens = TokenTable(s.tokens_file) if s.tokens_file is not None else None
        if s.tls.enabled and s.tls.require_client_cert:
            return cls("mtls", None)
        return cls("token" if tokens is not None else "dev", tokens)

    def authenticate(self, cred: Credential) -> str | None:
        """The credential's device id (None in dev mode: the Hello decides), or AuthError."""
        if self.mode == "dev":
            return None
        if self.mode == "mtls":
            if not cred.cert_cn:
                raise AuthError("unauthenticated", "no verified client certificate with a CN")
            return cred.cert_cn
        if not cred.bearer:
            raise AuthError("unauthenticated", "missing `authorization: Bearer <token>` metadata")
        assert self._tokens is not None
        device = self._tokens.device_of(cred.bearer)
        if device is None:
            raise AuthError("unauthenticated", "unknown device token")
        return device

    @property
    def version(self) -> int:
        """Changes whenever the credentials that `authenticate` checks against change."""
        if self._tokens is None:
            return 0
        self._tokens.refresh()
        return self._tokens.version

    def still_names(self, cred: Credential, principal: str) -> bool:
        """Whether `cred` still authenticates as `principal` (False once its token is revoked or
        rotated). A certificate's identity is fixed for its connection: always True."""
        if self.mode != "token":
            return True
        try:
            return self.authenticate(cred) == principal
        except AuthError:
            return False

    @staticmethod
    def authorize(principal: str | None, claimed: str) -> str:
        """The device this stream writes as; PERMISSION_DENIED when the Hello claims another,
        INVALID_ARGUMENT ("device") when it claims a name reserved for the cloud."""
        if principal is not None and principal != claimed:  # ids are not secrets
            raise AuthError("permission", "Hello.device_id differs from the credential's device")
        if claimed.lower() in RESERVED_DEVICE_IDS:
            raise RecordRejected("device", detail=device_id_problem(claimed) or "")
        return claimed


StreamKind = Literal["uplink", "watch"]


@dataclass(eq=False, slots=True)
class OpenStream:
    """One open stream and the identity its credential proved when it was opened."""

    cred: Credential
    principal: str
    kind: StreamKind
    stop: Callable[[], None]  # asks the stream to end; called again on every sweep until it has
    version: int  # the credentials' version last checked against
    revoked: bool = False


class CredentialWatch:
    """Open streams by credential. `sweep` (every `tokens_recheck_s`, from `run`) re-checks the
    open streams whenever the tokens file changed, and stops each whose token no longer names its
    device (revoked, or rotated by `tokens add`): it ends with UNAUTHENTICATED within one period
    (plus the batch being committed). Certificate identities are fixed for their connection;
    dev mode has none: neither is watched."""

    def __init__(self, auth: Authenticator, on_revoke: Callable[[OpenStream], None]) -> None:
        self.auth, self._on_revoke = auth, on_revoke
        self._open: list[OpenStream] = []

    def watch(self, cred: Credential, kind: StreamKind, stop: Callable[[], None]) -> OpenStream:
        """Register a stream whose `cred` authenticated; AuthError when it does not (any more)."""
        version = self.auth.version
        principal = self.auth.authenticate(cred)
        watched = OpenStream(cred, principal or "", kind, stop, version)
        if self.auth.mode == "token":
            self._open.append(watched)
        return watched

    def forget(self, watched: OpenStream) -> None:
        if watched in self._open:
            self._open.remove(watched)

    def sweep(self) -> int:
        """Stop the streams whose credential was revoked since their last check; how many."""
        version, newly = self.auth.version, 0
        for watched in list(self._open):
            if not watched.revoked and watched.version != version:
                watched.version = version
                watched.revoked = not self.auth.still_names(watched.cred, watched.principal)
                if watched.revoked:
                    newly += 1
                    self._on_revoke(watched)
            if watched.revoked:
                watched.stop()
        return newly

    async def run(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                self.sweep()
            except Exception:  # a bug here must not end the watch
                log.exception("credential sweep failed")
