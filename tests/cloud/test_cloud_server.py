"""Health, reflection and graceful shutdown of the real server."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support.cloud_harness import ServerThread, cloud_settings, open_session, send_frames

from vau.cloud.server import server_options

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_health_when_running_then_serving_for_server_and_uplink(
    dev_server: ServerThread, channel: grpc.Channel
) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "vau.v1.Uplink"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == SERVING


def test_reflection_when_listing_services_then_uplink_is_there(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    reply = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=5)))
    names = {s.name for s in reply.list_services_response.service}
    assert {"vau.v1.Uplink", "grpc.health.v1.Health"} <= names
    symbol = reflection_pb2.ServerReflectionRequest(file_containing_symbol="vau.v1.Uplink")
    reply = next(iter(stub.ServerReflectionInfo(iter([symbol]), timeout=5)))
    assert reply.file_descriptor_response.file_descriptor_proto


def test_shutdown_when_graceful_then_not_serving_first_and_streams_end_unavailable(
    tmp_path: Path,
) -> None:
    server = ServerThread(cloud_settings(tmp_path, shutdown={"drain_delay_s": 0.3}))
    with grpc.insecure_channel(server.target) as ch:
        watch = health_pb2_grpc.HealthStub(ch).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        assert next(watch).status == SERVING
        stream, _ = open_session(ch, "dev-a")
        send_frames(stream, "cam-0", [1, 2])
        stopper = threading.Thread(target=server.stop, kwargs={"grace": 2.0})
        stopper.start()
        assert next(watch).status == NOT_SERVING
        err, _ = stream.until_error()
        stopper.join(10)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert stream.trailing()["vau-reject-reason"] == "shutdown"

    reopened = ServerThread(cloud_settings(tmp_path))  # the store was flushed and closed
    try:
        assert reopened.stats()["devices"]["dev-a"]["cam-0"]["max_seq"] == 2
    finally:
        reopened.stop()


def test_server_options_match_limits_and_keepalive(tmp_path: Path) -> None:
    opts = dict(server_options(cloud_settings(tmp_path, limits={"max_message_bytes": 2**20})))
    assert opts["grpc.max_receive_message_length"] == 2**20
    assert opts["grpc.http2.min_ping_interval_without_data_ms"] == 10_000
    assert opts["grpc.http2.max_pings_without_data"] == 0
    assert opts["grpc.keepalive_permit_without_calls"] == 1


def test_metrics_when_port_given_then_prometheus_text_served(tmp_path: Path) -> None:
    server = ServerThread(cloud_settings(tmp_path, metrics_port=0))
    try:
        with grpc.insecure_channel(server.target) as ch:
            stream, _ = open_session(ch, "dev-a")
            send_frames(stream, "cam-0", [1, 2])
            stream.close()
        port = server.server.metrics_port
        assert port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        assert "vau_cloud_records_accepted_total 2.0" in text
        for name in ("vau_cloud_streams_active", "vau_cloud_store_commit_seconds_bucket",
                     "vau_cloud_acks_sent_total", "vau_cloud_records_received_total"):  # fmt: skip
            assert name in text
    finally:
        server.stop()
