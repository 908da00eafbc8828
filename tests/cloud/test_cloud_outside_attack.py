"""The defects an outside client (generated from the protos) found, each on a real loopback server:
X4 revocation of open streams, X6 work before authentication, X7 the metrics endpoint's address."""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.cloud_harness import ServerThread, cloud_settings, open_session, send_frames

from vau.cloud.auth import add_token, revoke_token
from vau.protos.v1 import query_pb2 as qpb

RECHECK_S = 0.2
BOUND_S = RECHECK_S + 2.0  # one recheck period plus the batch in progress, with slack for CI


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[ServerThread]:
    tokens_file = tmp_path / "tokens.json"
    add_token(tokens_file, "dev-b")
    settings = cloud_settings(
        tmp_path / "data", tokens_file=tokens_file, tokens_recheck_s=RECHECK_S
    )
    server = ServerThread(settings)
    yield server
    server.stop()


def _bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def _watch(ch: grpc.Channel, meta: list[tuple[str, str]] | None, cursor: str = "") -> Any:
    call = ch.unary_stream(
        "/vau.v1.Query/WatchEvents",
        request_serializer=qpb.WatchEventsRequest.SerializeToString,
        response_deserializer=qpb.EventDetail.FromString,
    )
    return call(qpb.WatchEventsRequest(cursor=cursor), metadata=meta, timeout=20)


def _ends_within(call: Any) -> tuple[grpc.StatusCode, float]:
    """Read `call` to its end in a thread; its status and when it ended (monotonic)."""
    done: queue.Queue[tuple[grpc.StatusCode, float]] = queue.Queue()

    def read() -> None:
        try:
            for _ in call:
                pass
            done.put((grpc.StatusCode.OK, time.monotonic()))
        except grpc.RpcError as exc:
            done.put((exc.code(), time.monotonic()))

    threading.Thread(target=read, daemon=True).start()
    return done.get(timeout=30)


@pytest.mark.parametrize("how", ["revoked", "rotated"])
def test_revoked_token_ends_an_open_uplink_stream(token_server: ServerThread, how: str) -> None:
    tokens_file = token_server.settings.tokens_file
    assert tokens_file is not None
    token = add_token(tokens_file, "dev-a")
    with grpc.insecure_channel(token_server.target) as ch:
        stream, _ = open_session(ch, "dev-a", metadata=_bearer(token))
        assert send_frames(stream, "cam-0", [1, 2])[-1].seq == 2
        started = time.monotonic()
        if how == "revoked":
            revoke_token(tokens_file, "dev-a")
        else:
            add_token(tokens_file, "dev-a")  # a new token replaces the old one
        err, seen = stream.until_error()
        took = time.monotonic() - started
    print(f"X4 uplink {how}: {err.code().name} after {took:.2f} s ({err.details()})")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in (err.details() or "")
    assert not any(m.WhichOneof("body") == "ack" for m in seen)
    assert took < BOUND_S
    assert token_server.stats()["devices"]["dev-a"]["cam-0"]["accepted"] == 2
    assert token_server.metric("vau_cloud_streams_revoked_total", {"kind": "uplink"}) == 1


def test_revoked_token_ends_an_open_watch(token_server: ServerThread) -> None:
    tokens_file = token_server.settings.tokens_file
    assert tokens_file is not None
    token = add_token(tokens_file, "dev-a")
    with grpc.insecure_channel(token_server.target) as ch:
        call = _watch(ch, _bearer(token))
        time.sleep(3 * RECHECK_S)  # the watch is open and polling
        started = time.monotonic()
        revoke_token(tokens_file, "dev-a")
        code, ended = _ends_within(call)
        # another identity's watch, opened before, is untouched
        other = _watch(ch, _bearer(add_token(tokens_file, "dev-b")))
        with pytest.raises(grpc.RpcError) as info:
            next(iter(_watch(ch, _bearer(token))))
    print(f"X4 watch revoked: {code.name} after {ended - started:.2f} s")
    assert code == grpc.StatusCode.UNAUTHENTICATED and ended - started < BOUND_S
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED  # and no new one opens
    other.cancel()
    assert token_server.metric("vau_cloud_streams_revoked_total", {"kind": "watch"}) == 1


def test_revoking_one_device_leaves_the_others_streams_open(token_server: ServerThread) -> None:
    tokens_file = token_server.settings.tokens_file
    assert tokens_file is not None
    tokens = {d: add_token(tokens_file, d) for d in ("dev-a", "dev-c")}
    with grpc.insecure_channel(token_server.target) as ch:
        a, _ = open_session(ch, "dev-a", metadata=_bearer(tokens["dev-a"]))
        c, _ = open_session(ch, "dev-c", metadata=_bearer(tokens["dev-c"]))
        revoke_token(tokens_file, "dev-a")
        assert a.until_error()[0].code() == grpc.StatusCode.UNAUTHENTICATED
        time.sleep(3 * RECHECK_S)
        assert send_frames(c, "cam-0", [1])[-1].seq == 1  # dev-c streams on
        c.close()


NESTED = "[" * 200_000


def test_deeply_nested_cursor_is_refused_after_authentication(
    token_server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    token = add_token(token_server.settings.tokens_file or Path(), "dev-a")
    with grpc.insecure_channel(token_server.target) as ch, caplog.at_level(logging.INFO):
        codes = {}
        for name, meta in (("no credential", None), ("bad token", _bearer("x" * 43))):
            with pytest.raises(grpc.RpcError) as info:
                next(iter(_watch(ch, meta, NESTED)))
            codes[name] = info.value.code()
        details = {}
        flat_long = '[1,"a","b","' + "c" * 5000 + '"]'
        for cursor in (NESTED, '[[1],"a","b","c"]', flat_long, "not json"):
            with pytest.raises(grpc.RpcError) as info:
                next(iter(_watch(ch, _bearer(token), cursor)))
            details[cursor[:20]] = (info.value.code(), info.value.details())
    print(f"X6 nested cursor: {codes}; with a token: {details}")
    assert set(codes.values()) == {grpc.StatusCode.UNAUTHENTICATED}
    for code, detail in details.values():
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "cursor" in (detail or "")
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.parametrize("method", ["ListEvents", "GetEvent", "Ask"])
def test_query_methods_authenticate_before_decoding(
    token_server: ServerThread, method: str
) -> None:
    garbage = b"\x0a\xff\xff\xff\xff\x0f" + b"\x5b" * 1000  # not a protobuf message
    with grpc.insecure_channel(token_server.target) as ch:
        call = ch.unary_unary(f"/vau.v1.Query/{method}")
        with pytest.raises(grpc.RpcError) as info:
            call(garbage, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        token = add_token(token_server.settings.tokens_file or Path(), "dev-a")
        with pytest.raises(grpc.RpcError) as info:
            call(garbage, metadata=_bearer(token), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _listening_hosts(port: int) -> set[str]:
    """The local addresses a TCP socket listens on at `port` (from /proc/net/tcp)."""
    hosts = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
            hosts.add(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return hosts


def test_metrics_endpoint_binds_the_grpc_listener_host_by_default(tmp_path: Path) -> None:
    server = ServerThread(cloud_settings(tmp_path, metrics_port=0))
    try:
        port = server.server.metrics_port
        assert port is not None
        assert _listening_hosts(port) == {"127.0.0.1"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            assert b"vau_cloud_streams_revoked_total" in reply.read()
    finally:
        server.stop()
    exposed = cloud_settings(tmp_path, metrics_port=0, metrics_host="0.0.0.0")
    assert exposed.metrics_bind_host == "0.0.0.0"
