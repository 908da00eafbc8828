"""Several cloud addresses (`uplink.cloud = "a:1,b:2"`): the address list is checked up front,
one address behaves as before, and a stream that fails moves the uplink to the next address,
counted, with every record accepted once (a real in-process cloud on loopback; the replica kill
test with real processes and PostgreSQL is tests/integration/test_replicas_kill.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from support.cloud_harness import ServerThread, cloud_settings
from support.procs import free_port

from vau.edge import metrics
from vau.edge.settings import UplinkSettings
from vau.edge.types import EffectiveTokens, FrameScore
from vau.edge.uplink import codec
from vau.edge.uplink.channel import UplinkConfigError, addresses, check
from vau.edge.uplink.client import Uplink
from vau.edge.uplink.outbox import Outbox
from vau.edge.uplink.records import OutboxItem, Priority
from vau.edge.uplink.thread import UplinkThread


def frame_item(seq: int) -> OutboxItem:
    rng = np.random.default_rng(seq)
    eff = EffectiveTokens(seq, seq * 0.5, time.time(), np.arange(8, dtype=np.int64),
                          rng.normal(size=(8, 384)).astype(np.float32), np.ones(8, np.float32),
                          256, (16, 16), False)  # fmt: skip
    body = codec.frame_body(eff, FrameScore(seq, seq * 0.5, 0.2, 0.2), "fp16")
    return OutboxItem("cam-0", "frame", Priority.FRAME, time.time(), body)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    srv = ServerThread(cloud_settings(tmp_path / "cloud"))
    yield srv
    srv.stop()


def failovers() -> float:
    return metrics.REGISTRY.get_sample_value("vau_edge_uplink_failovers_total") or 0.0


def test_addresses_when_one_then_that_one_as_before() -> None:
    cfg = UplinkSettings(cloud="127.0.0.1:50051")
    assert addresses(cfg) == ["127.0.0.1:50051"] and check(cfg) == "127.0.0.1:50051"


def test_addresses_when_several_then_in_order_spaces_ignored() -> None:
    cfg = UplinkSettings(cloud="127.0.0.1:1, [::1]:2 ,localhost:3")
    assert addresses(cfg) == ["127.0.0.1:1", "[::1]:2", "localhost:3"]


@pytest.mark.parametrize(
    ("cloud", "says"),
    [
        ("127.0.0.1:1,,127.0.0.1:2", "empty address"),
        ("127.0.0.1:1,127.0.0.1:1", "twice"),
        ("127.0.0.1:1,127.0.0.1", "has no port"),
        ("127.0.0.1:1,10.0.0.5:2", "plaintext uplink only to a loopback address"),
    ],
)
def test_addresses_when_one_is_wrong_then_a_clear_error(cloud: str, says: str) -> None:
    with pytest.raises(UplinkConfigError, match=says):
        check(UplinkSettings(cloud=cloud))


def test_uplink_when_the_first_cloud_is_down_then_fails_over_and_delivers_once(
    server: ServerThread, tmp_path: Path
) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    cfg = UplinkSettings(
        cloud=f"{dead},{server.target}", data_dir=tmp_path / "edge",
        reconnect_initial_s=0.1, reconnect_max_s=0.5,
    )  # fmt: skip
    before = failovers()
    with Outbox(cfg.data_dir, cfg.outbox_max_bytes, cfg.ttl_s) as box:
        for seq in range(1, 31):
            box.put(frame_item(seq))
        uplink = Uplink(cfg, "edge-a", ["cam-0"], box)
        thread = UplinkThread(uplink, box)
        thread.start()
        try:
            assert thread.drain(20)
        finally:
            thread.stop()
        assert box.stats().acked == 30
    assert uplink.addresses[uplink.current] == server.target
    assert failovers() - before >= 1
    cam = server.stats()["devices"]["edge-a"]["cam-0"]
    assert cam == {"accepted": 30, "duplicates": 0, "max_seq": 30, "gaps": 0}
