"""The review page's HTTP API on a real cloud server (loopback, port 0): filters, errors as JSON
status codes, the page and its assets, an event's frames from the ingest store, metrics, binding."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.cloud_harness import ServerThread, cloud_settings
from support.explanations import EXPLAINED
from support_review import HOT_BLOCK, EdgeStream, get

from vau.cloud.review import app as review_app
from vau.cloud.server import ServerConfigError, create_server
from vau.cloud.settings import CloudSettings, SettingsError, load_settings
from vau.cloud.storage.event_repository import StoredEvent, StoredWindow
from vau.cloud.storage.sqlite_events import SqliteEventRepository as EventStore

NOW = time.time()


def _event(device: str, camera: str, event_id: str, age_s: float) -> StoredEvent:
    return StoredEvent(device, camera, event_id, "end", 2.0, 7.0, 0.9, 4.5, "p", 1, NOW - age_s)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, str]]:
    """Events stored as the event projector stores them; dev-a/cam-0/ev-live's frames and window
    went through the real uplink (its rows are written here once the projector has written its
    own, so the values below are the ones read)."""
    data = tmp_path_factory.mktemp("review") / "data"
    server = ServerThread(cloud_settings(data, http_port=0))
    with grpc.insecure_channel(server.target) as channel:
        edge = EdgeStream(channel, "dev-a", ("cam-0",))
        edge.new_event("cam-0", "ev-live")
        shipped = edge.end_event("cam-0", "ev-live")
        edge.close()
    _wait_projected(data, ("dev-a", "cam-0", "ev-live"))
    store = EventStore(data)
    for e in (
        _event("dev-a", "cam-0", "ev-old", 3600),
        _event("dev-a", "cam-1", "ev-mid", 600),
        _event("dev-b", "cam-0", "ev-new", 60),
        _event("dev-a", "cam-0", "ev-live", 10),
    ):
        store.put_event(e)
    window_seq = edge.seq["cam-0"]  # the window marker was the stream's last record
    store.put_window(
        StoredWindow(*shipped.key.split("/"), 2.0, 7.0, shipped.frame_seqs, window_seq, NOW)
    )
    store.put_explanation(("dev-b", "cam-0", "ev-new"), "end", EXPLAINED, NOW)
    store.close()
    assert server.server.review is not None
    yield server, f"http://127.0.0.1:{server.server.review.port}"
    server.stop()


def _wait_projected(data: Path, key: tuple[str, str, str]) -> None:
    """Until the server's event projector has written the uplinked event's window."""
    store = EventStore(data)
    try:
        deadline = time.monotonic() + 10
        while store.window(key) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.window(key) is not None
    finally:
        store.close()


def _ids(base: str, query: str = "") -> list[str]:
    status, body = get(f"{base}/api/events{query}")
    assert status == 200, body
    return [e["event_id"] for e in body["events"]]


def test_review_api_events_when_unfiltered_then_newest_change_first(served: tuple) -> None:
    _, base = served
    assert _ids(base) == ["ev-live", "ev-new", "ev-mid", "ev-old"]
    _, body = get(f"{base}/api/events?limit=2")
    first = body["events"][1]
    assert (
        first["title"] == "Scuffle at the gate" and first["explanation"]["category"] == "Fighting"
    )
    assert body["events"][0]["title"] is None and body["events"][0]["explanation"] is None


def test_review_api_events_when_camera_device_time_filters_then_only_matching(
    served: tuple,
) -> None:
    _, base = served
    assert _ids(base, "?camera=cam-0") == ["ev-live", "ev-new", "ev-old"]
    assert _ids(base, "?camera=cam-0&device=dev-a") == ["ev-live", "ev-old"]
    assert _ids(base, f"?since={NOW - 700}") == ["ev-live", "ev-new", "ev-mid"]
    assert _ids(base, f"?since={NOW - 700}&until={NOW - 30}") == ["ev-new", "ev-mid"]
    assert _ids(base, f"?until={NOW - 30}&limit=1") == ["ev-new"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 1800))
    assert _ids(base, f"?until={iso}") == ["ev-old"]
    assert _ids(base, "?camera=cam-9") == []


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?camera=bad%20camera!", "camera 'bad camera!' must be"),
        ("?cam=cam-0", "unknown parameter 'cam'"),
        ("?since=20&until=10", "since is after until"),
        ("?since=yesterday", "since 'yesterday' must be UNIX seconds or an ISO 8601 time"),
        ("?until=nan", "until 'nan' must be"),
        ("?limit=0", "limit '0' must be a whole number from 1"),
        ("?limit=5000", "limit 5000 is above 1000"),
    ],
)
def test_review_api_events_when_bad_parameter_then_400_naming_it(
    served: tuple, query: str, says: str
) -> None:
    status, body = get(f"{served[1]}/api/events{query}")
    assert status == 400 and says in body["error"], body


def test_review_api_when_unknown_event_path_or_method_then_json_errors(served: tuple) -> None:
    _, base = served
    status, body = get(f"{base}/api/events/dev-a/cam-0/ev-nope")
    assert status == 404 and "no event dev-a/cam-0/ev-nope" in body["error"]
    assert get(f"{base}/api/events/bad%20dev/cam-0/ev-1")[0] == 400
    assert get(f"{base}/nope")[0] == 404
    status, body = get(f"{base}/api/events", method="POST")
    assert status == 405 and "error" in body


def test_review_api_event_when_window_stored_then_frames_with_kept_and_hot(served: tuple) -> None:
    status, d = get(f"{served[1]}/api/events/dev-a/cam-0/ev-live")
    assert status == 200, d
    assert d["event"]["event_id"] == "ev-live" and d["window"]["frame_seqs"] == list(
        range(20, 41, 2)
    )
    assert d["grid"] == [16, 16] and [f["seq"] for f in d["frames"]] == d["window"]["frame_seqs"]
    assert [f["t"] for f in d["frames"]] == [2.0 + 0.5 * i for i in range(11)]
    peak = max(d["frames"], key=lambda f: f["smoothed"])
    assert peak["t"] == 4.5 and peak["hot"] == list(HOT_BLOCK) and peak["normality"] > 0.9
    assert all(set(f["hot"]) <= set(f["kept"]) for f in d["frames"])
    assert not d["frames"][0]["hot"] and len(d["frames"][0]["kept"]) >= 64


def test_review_api_event_when_no_window_then_frames_since_its_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerThread(cloud_settings(data, http_port=0))
    try:
        with grpc.insecure_channel(server.target) as channel:
            edge = EdgeStream(channel, "dev-a", ("cam-0",))
            edge.end_event("cam-0", "ev-shipped")  # frames at 2.0-7.0 s
            edge.close()
        _wait_projected(data, ("dev-a", "cam-0", "ev-shipped"))  # its window is not ev-open's
        store = EventStore(data)
        store.put_event(
            StoredEvent("dev-a", "cam-0", "ev-open", "update", 4.0, None, 0.9, 4.5, "p", 1, NOW)
        )
        store.close()
        assert server.server.review is not None
        status, d = get(
            f"http://127.0.0.1:{server.server.review.port}/api/events/dev-a/cam-0/ev-open"
        )
    finally:
        server.stop()
    assert status == 200 and d["window"] is None
    assert [f["t"] for f in d["frames"]] == [4.0 + 0.5 * i for i in range(7)]


def test_review_page_when_served_then_html_script_and_chart_library(served: tuple) -> None:
    _, base = served
    status, html = get(f"{base}/")
    assert status == 200 and "<title>VAU review</title>" in html and "/static/uplot.js" in html
    status, js = get(f"{base}/static/uplot.js")
    assert status == 200 and "uPlot" in js
    assert get(f"{base}/static/review.js")[0] == 200
    assert get(f"{base}/static/other.js")[0] == 404


def test_review_page_when_chart_library_missing_then_503_saying_make_install(
    served: tuple, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(review_app.ASSETS, "uplot.js", (tmp_path / "absent.js", "text/javascript"))
    status, body = get(f"{served[1]}/static/uplot.js")
    assert status == 503 and "make install" in body["error"]


def test_review_requests_when_served_then_counted_by_route_and_status(served: tuple) -> None:
    server, base = served
    labels = {"route": "/api/events", "status": "400"}
    before = server.metric("vau_cloud_http_requests_total", labels)
    get(f"{base}/api/events?limit=x")
    assert server.metric("vau_cloud_http_requests_total", labels) == before + 1


async def _create(settings: CloudSettings) -> None:
    create_server(settings)


def test_review_page_when_port_in_use_then_config_error_and_cli_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = cloud_settings(tmp_path / "data", http_port=port)
        with pytest.raises(ServerConfigError, match=f"review page on 127.0.0.1:{port}"):
            asyncio.run(_create(settings))  # grpc.aio wants the loop that will serve
        cli = [sys.executable, "-m", "vau.cloud.cli", "serve", "--listen", "127.0.0.1:0"]
        args = ["--data-dir", str(tmp_path / "data"), "--http-port", str(port)]
        done = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("vau-cloud: error: cannot serve the review page") and "--http-port" in last
    )
    assert "Traceback" not in done.stderr


def test_review_settings_when_public_address_then_refused_unless_allowed(tmp_path: Path) -> None:
    base = {"listen": "127.0.0.1:0", "data_dir": tmp_path, "http_port": 0}
    assert load_settings(None, base).http_bind_host == "127.0.0.1"
    with pytest.raises(SettingsError, match="review page has no login"):
        load_settings(None, {**base, "http_host": "0.0.0.0"})
    allowed = load_settings(None, {**base, "http_host": "0.0.0.0", "http_public": True})
    assert allowed.http_bind_host == "0.0.0.0"


def test_review_page_when_server_stops_then_port_closed(tmp_path: Path) -> None:
    server = ServerThread(cloud_settings(tmp_path / "data", http_port=0))
    assert server.server.review is not None
    port = server.server.review.port
    assert get(f"http://127.0.0.1:{port}/api/events") == (200, {"events": []})
    server.stop()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass
