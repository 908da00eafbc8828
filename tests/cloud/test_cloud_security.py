"""X1 / X2: only a credential proves identity, and a device cannot write as another."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from support.cloud_harness import (
    RawStream,
    ServerThread,
    cloud_settings,
    frame,
    hello,
    open_session,
    send_frames,
)

from vau.cloud.auth import add_token
from vau.cloud.certs import (
    init_dir,
    issue_device,
    issue_expired_device,
    load_ca,
    make_ca,
    write_pair,
)


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca: bytes

    def pair(self, stem: str) -> tuple[bytes, bytes]:
        return (self.dir / f"{stem}.key").read_bytes(), (self.dir / f"{stem}.crt").read_bytes()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    out = tmp_path_factory.mktemp("pki")
    init_dir(out, devices=["dev-a", "dev-b"])
    ca = load_ca(out)
    write_pair(issue_expired_device(ca, "dev-old"), out, "dev-old")
    write_pair(issue_device(make_ca("rogue CA"), "dev-a"), out, "rogue-dev-a")
    return Pki(out, (out / "ca.crt").read_bytes())


@pytest.fixture(scope="module")
def mtls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tls = {"server_cert": pki.dir / "server.crt", "server_key": pki.dir / "server.key",
           "client_ca": pki.dir / "ca.crt", "require_client_cert": True}  # fmt: skip
    server = ServerThread(cloud_settings(tmp_path_factory.mktemp("mtls"), tls=tls))
    yield server
    server.stop()


def _tls_channel(server: ServerThread, pki: Pki, stem: str | None) -> grpc.Channel:
    key, chain = pki.pair(stem) if stem else (None, None)
    creds = grpc.ssl_channel_credentials(pki.ca, private_key=key, certificate_chain=chain)
    return grpc.secure_channel(server.target, creds)


def _status(channel: grpc.Channel, device: str, metadata: list[tuple[str, str]] | None = None
            ) -> grpc.StatusCode:  # fmt: skip
    stream = RawStream(channel, metadata, timeout=10)
    stream.send(hello(device))
    stream.send(frame("cam-0", 1))
    err, seen = stream.until_error()
    assert not any(m.WhichOneof("body") == "ack" for m in seen)
    return err.code()


def test_mtls_when_device_cert_valid_then_identity_is_the_cn(
    mtls_server: ServerThread, pki: Pki
) -> None:
    with _tls_channel(mtls_server, pki, "dev-a") as ch:
        stream, ack = open_session(ch, "dev-a")
        assert ack.device_id == "dev-a"
        assert send_frames(stream, "cam-0", [1])[-1].seq == 1
        stream.close()


@pytest.mark.parametrize("stem", [None, "rogue-dev-a", "dev-old"])
def test_x1_when_no_cert_other_ca_or_expired_then_refused(
    mtls_server: ServerThread, pki: Pki, stem: str | None
) -> None:
    before = mtls_server.stats()["devices"].get("dev-a", {}).get("cam-0", {}).get("accepted", 0)
    with _tls_channel(mtls_server, pki, stem) as ch:
        code = _status(ch, "dev-a")
    print(f"X1 {stem or 'no cert'} -> {code.name}")
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)
    after = mtls_server.stats()["devices"].get("dev-a", {}).get("cam-0", {}).get("accepted", 0)
    assert after == before


def test_x1_when_plaintext_client_meets_tls_server_then_refused(mtls_server: ServerThread) -> None:
    with grpc.insecure_channel(mtls_server.target) as ch:
        assert _status(ch, "dev-a") == grpc.StatusCode.UNAVAILABLE


def test_x2_when_cert_of_a_claims_device_b_then_permission_denied(
    mtls_server: ServerThread, pki: Pki
) -> None:
    with _tls_channel(mtls_server, pki, "dev-a") as ch:
        code = _status(ch, "dev-b")
    written_for_b = mtls_server.stats()["devices"].get("dev-b", {})
    print(f"X2 dev-a as dev-b -> {code.name}; records written for dev-b: {written_for_b}")
    assert code == grpc.StatusCode.PERMISSION_DENIED and written_for_b == {}
    assert mtls_server.metric("vau_cloud_rejected_total", {"reason": "permission"}) >= 1


@pytest.fixture(scope="module")
def token_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data = tmp_path_factory.mktemp("tok")
    tls = {"server_cert": pki.dir / "server.crt", "server_key": pki.dir / "server.key",
           "require_client_cert": False}  # fmt: skip
    add_token(data / "tokens.json", "dev-b")  # the file must exist before start
    server = ServerThread(cloud_settings(data, tls=tls, tokens_file=data / "tokens.json"))
    yield server
    server.stop()


def test_tokens_when_token_valid_then_accepted_and_unknown_or_missing_unauthenticated(
    token_server: ServerThread, pki: Pki
) -> None:
    tokens_file = token_server.settings.tokens_file
    assert tokens_file is not None
    token = add_token(tokens_file, "dev-a")  # picked up without a restart
    assert token not in tokens_file.read_text()
    with _tls_channel(token_server, pki, None) as ch:
        stream, ack = open_session(ch, "dev-a", metadata=[("authorization", f"Bearer {token}")])
        assert ack.device_id == "dev-a"
        assert send_frames(stream, "cam-0", [1])[-1].seq == 1
        stream.close()
        wrong = [("authorization", "Bearer " + "x" * 43)]
        assert _status(ch, "dev-a", wrong) == grpc.StatusCode.UNAUTHENTICATED
        assert _status(ch, "dev-a") == grpc.StatusCode.UNAUTHENTICATED
        good = [("authorization", f"Bearer {token}")]
        assert _status(ch, "dev-b", good) == grpc.StatusCode.PERMISSION_DENIED
    assert set(token_server.stats()["devices"]) == {"dev-a"}
    assert token_server.metric("vau_cloud_rejected_total", {"reason": "unauthenticated"}) == 2


def test_tokens_when_plaintext_loopback_with_tokens_file_then_token_required(
    tmp_path: Path,
) -> None:
    token = add_token(tmp_path / "t.json", "dev-a")
    server = ServerThread(cloud_settings(tmp_path, tokens_file=tmp_path / "t.json"))
    try:
        with grpc.insecure_channel(server.target) as ch:
            assert _status(ch, "dev-a") == grpc.StatusCode.UNAUTHENTICATED
            stream, _ = open_session(ch, "dev-a", metadata=[("authorization", f"Bearer {token}")])
            stream.close()
        assert server.server.auth_mode == "token"
    finally:
        server.stop()
