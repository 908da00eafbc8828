"""The uplink's reconnect backoff starts again after a healthy stream: failures against a cloud that
is down count up, a stream the cloud answered and acked on (or one that stayed up
`reconnect_max_s`) resets the count, so the next outage starts at attempt 1 and the first, short
delay, not where the last outage left off (a real in-process cloud on loopback)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.cloud_harness import ServerThread, cloud_settings
from support.procs import free_port
from test_uplink_client import frame_item

from vau.edge.settings import UplinkSettings
from vau.edge.uplink.client import Uplink
from vau.edge.uplink.outbox import Outbox
from vau.edge.uplink.thread import UplinkThread

LOGGER = "vau.edge.uplink.client"


def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _attempts(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The attempt numbers the uplink logged, in order."""
    found = (re.search(r"reconnecting \(attempt (\d+)\)", r.getMessage()) for r in caplog.records)
    return [int(m.group(1)) for m in found if m]


@pytest.fixture
def uplink_to_a_down_cloud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> Iterator[tuple[Uplink, Outbox, str]]:
    """An uplink streaming to a loopback address where nothing listens yet; it has failed 3 times
    in a row when the test gets it."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    target = f"127.0.0.1:{free_port()}"
    cfg = UplinkSettings(
        cloud=target, data_dir=tmp_path / "edge", reconnect_initial_s=0.05,
        reconnect_max_s=request.param,
    )  # fmt: skip
    with Outbox(cfg.data_dir, cfg.outbox_max_bytes, cfg.ttl_s) as box:
        uplink = Uplink(cfg, "edge-a", ["cam-0"], box)
        thread = UplinkThread(uplink, box)
        thread.start()
        try:
            _until(lambda: uplink.failures >= 3)
            yield uplink, box, target
        finally:
            thread.stop()


def _serve(tmp_path: Path, target: str) -> ServerThread:
    return ServerThread(cloud_settings(tmp_path / "cloud", listen=target))


@pytest.mark.parametrize("uplink_to_a_down_cloud", [10.0], indirect=True)
def test_uplink_backoff_when_a_stream_was_acked_then_the_next_outage_starts_at_attempt_1(
    uplink_to_a_down_cloud: tuple[Uplink, Outbox, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    uplink, box, target = uplink_to_a_down_cloud
    # given an uplink that failed at least 3 times in a row, when the cloud comes up and acks
    server = _serve(tmp_path, target)
    try:
        for seq in range(1, 6):
            box.put(frame_item(seq))
        uplink.wake()
        _until(lambda: box.stats().pending == 0)
        # then the healthy stream reset the count
        assert uplink.failures == 0 and uplink.connected
        assert server.stats()["devices"]["edge-a"]["cam-0"]["accepted"] == 5
        before = len(_attempts(caplog))
    finally:
        server.stop()
    # and when the cloud goes away again, the next failure is attempt 1, not before + 1
    _until(lambda: len(_attempts(caplog)) > before)
    assert _attempts(caplog)[before] == 1


@pytest.mark.parametrize("uplink_to_a_down_cloud", [0.3], indirect=True)
def test_uplink_backoff_when_an_idle_stream_stayed_up_then_the_next_outage_starts_at_attempt_1(
    uplink_to_a_down_cloud: tuple[Uplink, Outbox, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    uplink, _box, target = uplink_to_a_down_cloud
    # given an uplink that failed at least 3 times, when the cloud comes up and the stream stays
    # up (nothing to send, so nothing acked) longer than reconnect_max_s
    server = _serve(tmp_path, target)
    try:
        _until(lambda: uplink.connected)
        failed = uplink.failures
        assert failed >= 3  # answered but not acked: not counted healthy yet
        time.sleep(0.6)
        before = len(_attempts(caplog))
    finally:
        server.stop()
    # then the outage that ends it starts again at attempt 1
    _until(lambda: len(_attempts(caplog)) > before)
    assert _attempts(caplog)[before] == 1
