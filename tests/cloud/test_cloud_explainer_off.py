"""Events exist whether or not the explainer runs (the event projector makes them): with
`explain.enabled = false` Query lists them and Ask answers FAILED_PRECONDITION, not NOT_FOUND.
With the explainer off the projector also runs the event retention; after an upgrade it starts
at the explainer's cursor. Also the store URL as a user gives it: `store.url`,
`vau-cloud stats --store`, PostgreSQL refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.cloud_harness import ServerThread, cloud_settings, open_session

from vau.cloud.cli import main
from vau.cloud.event_projector import EventProjector
from vau.cloud.records import AcceptedRecord
from vau.cloud.settings import LimitSettings
from vau.cloud.storage.factory import open_storage
from vau.edge.uplink import codec as edge
from vau.protos.v1 import query_pb2 as qpb

sys.path.insert(0, str(Path(__file__).parent / "explain"))
from support_explain import event_records

CLI = [sys.executable, "-m", "vau.cloud.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("VAU_CLOUD__")}


def _ship(server: ServerThread, records: list[AcceptedRecord]) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stream, _ = open_session(channel, "dev-a")
        for r in records:
            stream.send(edge.serialize(edge.record_message(r.camera, r.epoch, r.seq, r.raw)))
        stream.acks_until("cam-0", records[-1].seq)
        stream.close()


def _list(channel: grpc.Channel) -> list[qpb.EventDetail]:
    call = channel.unary_unary(
        "/vau.v1.Query/ListEvents",
        request_serializer=qpb.ListEventsRequest.SerializeToString,
        response_deserializer=qpb.ListEventsResponse.FromString,
    )
    return list(call(qpb.ListEventsRequest(), timeout=10).events)


def _listed(server: ServerThread, n: int, ended: bool = False) -> list[qpb.EventDetail]:
    """ListEvents until it shows `n` events (with `ended`: each with its end) or 10 s: the
    projector runs behind ingest, and an event is listed from its first record, before the
    record that ends it is projected."""

    def done(found: list[qpb.EventDetail]) -> bool:
        return len(found) >= n and (not ended or all(e.end > 0 for e in found))

    with grpc.insecure_channel(server.target) as channel:
        deadline = time.monotonic() + 10
        while not done(found := _list(channel)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return found


@pytest.fixture
def explainer_off(tmp_path: Path) -> Iterator[ServerThread]:
    server = ServerThread(cloud_settings(tmp_path / "data", explain={"enabled": False}))
    yield server
    server.stop()


def test_events_are_listed_with_the_explainer_off(explainer_off: ServerThread) -> None:
    # given a cloud with the explainer off, when an edge ships two events
    _ship(explainer_off, [*event_records("ev-1", 1), *event_records("ev-2", 100)])
    # then Query lists both, ended, without explanations
    found = _listed(explainer_off, 2, ended=True)
    assert sorted(e.event.event_id for e in found) == ["ev-1", "ev-2"]
    assert all(e.end == 6.0 and not e.HasField("explanation") for e in found)
    assert explainer_off.server.explainer is None


def test_ask_with_the_explainer_off_is_failed_precondition(explainer_off: ServerThread) -> None:
    _ship(explainer_off, event_records("ev-1", 1))
    assert len(_listed(explainer_off, 1)) == 1
    with grpc.insecure_channel(explainer_off.target) as channel:
        ask = channel.unary_unary(
            "/vau.v1.Query/Ask",
            request_serializer=qpb.AskRequest.SerializeToString,
            response_deserializer=qpb.AskResponse.FromString,
        )
        ref = qpb.EventRef(device_id="dev-a", camera="cam-0", event_id="ev-1")
        with pytest.raises(grpc.RpcError) as info:
            ask(qpb.AskRequest(event=ref, question="What happened?"), timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "explanations are off" in (info.value.details() or "")


def test_store_url_when_set_then_records_there_and_stats_reads_them(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    url = f"sqlite://{folder.resolve()}"
    server = ServerThread(cloud_settings(tmp_path / "data", store={"url": url}))
    try:
        _ship(server, event_records("ev-1", 1))
        assert len(_listed(server, 1)) == 1
    finally:
        server.stop()
    assert (folder / "ingest.sqlite3").is_file() and (folder / "events.sqlite3").is_file()
    assert not (tmp_path / "data" / "ingest.sqlite3").exists()
    done = subprocess.run(
        [*CLI, "stats", "--store", url, "--json"], capture_output=True, text=True, env=ENV
    )
    assert done.returncode == 0, done.stderr
    assert '"accepted": 7' in done.stdout
    assert main(["stats", "--store", str(folder), "--json"]) == 0


def test_store_url_when_postgresql_then_serve_exits_2_with_one_line(tmp_path: Path) -> None:
    url = "postgresql://vau:secret@db.example/vau"
    serve = [*CLI, "serve", "--data-dir", str(tmp_path)]
    done = subprocess.run([*serve, "--store", url], capture_output=True, text=True, env=ENV)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect" in lines[0]  # db.example: unreachable
    assert "secret" not in done.stderr and "Traceback" not in done.stderr
    env = {**ENV, "VAU_CLOUD__STORE__URL": url}
    done = subprocess.run(serve, capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "PostgreSQL" in done.stderr


def test_projector_after_an_upgrade_starts_at_the_explainers_cursor(tmp_path: Path) -> None:
    # given a repository the explainer filled before the projector existed (its cursor only)
    storage = open_storage(None, tmp_path, 86_400)
    writer = storage.ingest_log()
    writer.commit(event_records("ev-old", 1), time.time())
    repo = storage.event_repository()
    repo.set_cursor("explainer", writer.last_position())
    repo.close()
    writer.commit(event_records("ev-new", 100), time.time())
    writer.close()

    # when the projector runs
    async def run() -> None:
        projector = EventProjector(storage, LimitSettings(), poll_s=0.05)
        await projector.start()
        await asyncio.sleep(0.5)
        await projector.stop()

    asyncio.run(run())
    # then it projected only what the explainer had not (no old event made "updated now")
    repo = storage.event_repository()
    try:
        assert [e.event_id for e in repo.events()] == ["ev-new"]
    finally:
        repo.close()


def test_event_retention_runs_and_is_counted_with_the_explainer_off(tmp_path: Path) -> None:
    explain = {"enabled": False, "retention_days": 1.0 / 86_400, "retention_check_s": 0.2}
    server = ServerThread(cloud_settings(tmp_path / "data", explain=explain))
    try:
        _ship(server, event_records("ev-1", 1))
        deadline = time.monotonic() + 15
        labels = {"table": "events"}
        while server.metric("vau_cloud_event_store_pruned_total", labels) < 1:
            assert time.monotonic() < deadline, "the projected event was never pruned"
            time.sleep(0.1)
        assert server.metric("vau_cloud_event_store_retention_runs_total") >= 2
        assert _list_now(server) == []
    finally:
        server.stop()


def _list_now(server: ServerThread) -> list[qpb.EventDetail]:
    with grpc.insecure_channel(server.target) as channel:
        return _list(channel)
