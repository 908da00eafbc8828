"""Fixtures of the cloud tests: a dev-mode server (plaintext loopback, Hello trusted) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.cloud_harness import ServerThread, cloud_settings


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[ServerThread]:
    server = ServerThread(cloud_settings(tmp_path / "data"))
    yield server
    server.stop()


@pytest.fixture
def channel(dev_server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(dev_server.target) as ch:
        yield ch
