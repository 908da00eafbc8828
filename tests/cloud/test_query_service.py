"""vau.v1.Query on a real loopback server: list, get, watch, ask; identity from the token."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.cloud_harness import ServerThread, cloud_settings
from support.explanations import EXPLAINED

from vau.cloud.auth import add_token
from vau.cloud.storage.event_repository import StoredEvent
from vau.cloud.storage.sqlite_events import SqliteEventRepository as EventStore
from vau.protos.v1 import query_pb2 as qpb
from vau.protos.v1 import uplink_pb2 as upb

PRIOR = "Known common anomaly types are: Fighting."


def _event(device: str, event_id: str, updated: float, end: float | None = 6.0) -> StoredEvent:
    state = "new" if end is None else "end"
    return StoredEvent(device, "cam-0", event_id, state, 2.0, end, 0.9, 4.0, PRIOR, 1, updated)


class Client:
    def __init__(self, channel: grpc.Channel, token: str | None) -> None:
        self.meta = (("authorization", f"Bearer {token}"),) if token else None
        self.ch = channel

    def _unary(self, method: str, req: Any, reply: Any) -> Any:
        call = self.ch.unary_unary(
            f"/vau.v1.Query/{method}", request_serializer=type(req).SerializeToString,
            response_deserializer=reply.FromString,
        )  # fmt: skip
        return call(req, metadata=self.meta, timeout=10)

    def list(self, device: str = "", limit: int = 0) -> list[qpb.EventDetail]:
        req = qpb.ListEventsRequest(device_id=device, limit=limit)
        return list(self._unary("ListEvents", req, qpb.ListEventsResponse).events)

    def get(self, device: str, event_id: str, camera: str = "cam-0") -> qpb.EventDetail:
        ref = qpb.EventRef(device_id=device, camera=camera, event_id=event_id)
        return self._unary("GetEvent", qpb.GetEventRequest(event=ref), qpb.EventDetail)

    def ask(self, device: str, event_id: str, question: str) -> qpb.AskResponse:
        ref = qpb.EventRef(device_id=device, camera="cam-0", event_id=event_id)
        req = qpb.AskRequest(event=ref, question=question)
        return self._unary("Ask", req, qpb.AskResponse)

    def watch(self, cursor: str = "", device: str = "") -> Any:
        call = self.ch.unary_stream(
            "/vau.v1.Query/WatchEvents",
            request_serializer=qpb.WatchEventsRequest.SerializeToString,
            response_deserializer=qpb.EventDetail.FromString,
        )
        req = qpb.WatchEventsRequest(device_id=device, cursor=cursor)
        return call(req, metadata=self.meta, timeout=20)


def _code(fn: Any, *args: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args)
    code: grpc.StatusCode = info.value.code()
    return code


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerThread, dict[str, str]]]:
    root = tmp_path_factory.mktemp("query")
    data, tokens_file = root / "data", root / "tokens.json"
    tokens = {name: add_token(tokens_file, name) for name in ("dev-a", "dev-b", "ops")}
    store = EventStore(data)
    now = time.time()
    store.put_event(_event("dev-a", "ev-1", now - 30))
    store.put_event(_event("dev-a", "ev-2", now - 20, end=None))
    store.put_event(_event("dev-b", "ev-9", now - 10))
    store.put_explanation(("dev-a", "cam-0", "ev-1"), "end", EXPLAINED, now)
    store.close()
    settings = cloud_settings(data, tokens_file=tokens_file, query_readers=["ops"])
    server = ServerThread(settings)
    yield server, tokens
    server.stop()


@pytest.fixture
def ch(served: tuple[ServerThread, dict[str, str]]) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(served[0].target) as channel:
        yield channel


def _as(ch: grpc.Channel, served: tuple[ServerThread, dict[str, str]], who: str) -> Client:
    return Client(ch, served[1][who])


def test_query_list_when_device_then_own_events_newest_first(ch: grpc.Channel, served: Any) -> None:
    got = _as(ch, served, "dev-a").list()
    assert [e.event.event_id for e in got] == ["ev-2", "ev-1"]
    assert got[0].state == upb.EVENT_STATE_NEW and not got[0].HasField("end")
    assert not got[0].HasField("explanation") and got[1].explanation.title == "Scuffle at the gate"
    everything = _as(ch, served, "ops").list()
    assert [e.event.event_id for e in everything] == ["ev-9", "ev-2", "ev-1"]
    assert [e.event.event_id for e in _as(ch, served, "ops").list("dev-b")] == ["ev-9"]


def test_query_errors_when_bad_callers_or_requests_then_status_codes(
    ch: grpc.Channel, served: Any
) -> None:
    a = _as(ch, served, "dev-a")
    assert _code(a.list, "dev-b") == grpc.StatusCode.PERMISSION_DENIED
    assert _code(a.get, "dev-b", "ev-9") == grpc.StatusCode.PERMISSION_DENIED
    assert _code(a.get, "dev-a", "ev-404") == grpc.StatusCode.NOT_FOUND
    assert _code(a.get, "dev-a", "") == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(a.get, "dev-a", "ev-1", "bad camera!") == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(a.list, "", 5000) == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(a.ask, "dev-a", "ev-1", "  ") == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(a.watch("not a cursor").__next__) == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(a.watch("", "dev-b").__next__) == grpc.StatusCode.PERMISSION_DENIED
    assert _code(Client(ch, None).list) == grpc.StatusCode.UNAUTHENTICATED
    assert _code(Client(ch, "forged").list) == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        a.ask("dev-a", "ev-1", "Who started it?")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "explain.enabled" in (info.value.details() or "")


def test_query_get_when_explained_then_every_field(ch: grpc.Channel, served: Any) -> None:
    e = _as(ch, served, "dev-a").get("dev-a", "ev-1")
    assert (e.event.device_id, e.event.camera, e.event.event_id) == ("dev-a", "cam-0", "ev-1")
    assert (e.state, e.start, e.end, e.peak_t, e.prior) == (
        upb.EVENT_STATE_END,
        2.0,
        6.0,
        4.0,
        PRIOR,
    )
    assert e.peak == pytest.approx(0.9) and e.cursor
    x = e.explanation
    assert (x.category, x.threat_level, x.anomaly, x.fallback, x.projector) == (
        "Fighting", 1, True, False, "")  # fmt: skip
    assert x.confidence == pytest.approx(0.8) and (x.start, x.end) == (2.0, 6.0)


def test_query_health_when_serving_then_query_listed(ch: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(ch)
    reply = stub.Check(health_pb2.HealthCheckRequest(service="vau.v1.Query"), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_query_watch_when_event_stored_then_sent_and_again_explained(
    ch: grpc.Channel, served: Any
) -> None:
    server, _ = served
    a = _as(ch, served, "dev-a")
    newest = a.list()[0]
    stream = a.watch(newest.cursor)
    got: list[qpb.EventDetail] = []
    reader = threading.Thread(
        target=lambda: got.extend(e for _, e in zip(range(2), stream, strict=False))
    )
    reader.start()
    store = EventStore(server.settings.data_dir)
    store.put_event(_event("dev-b", "ev-other", time.time()))  # not dev-a's: never sent
    store.put_event(_event("dev-a", "ev-3", time.time()))
    time.sleep(0.6)
    store.put_explanation(("dev-a", "cam-0", "ev-3"), "end", EXPLAINED, time.time())
    store.close()
    reader.join(10)
    assert [(e.event.event_id, e.HasField("explanation")) for e in got] == [
        ("ev-3", False), ("ev-3", True)]  # fmt: skip
    stream.cancel()
    assert a.list()[0].event.event_id == "ev-3"  # still serving after the cancel
