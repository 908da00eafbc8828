"""Shared fixtures: the real assets `vau-models pull` installs (CI pulls them before the tests)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _asset(name: str) -> Path:
    from vau.assets import AssetError, asset_path

    try:
        return asset_path(name)
    except AssetError as exc:
        pytest.fail(f"{exc} (the tests run on real weights and footage)")


@pytest.fixture(scope="session")
def vtest_path() -> Path:
    return _asset("vtest.avi")


@pytest.fixture(scope="session")
def bikes_path() -> Path:
    return _asset("bikes.mp4")


@pytest.fixture(scope="session")
def dinov2_dir() -> Path:
    return _asset("dinov2-s14")


@pytest.fixture(scope="session")
def dinov2_onnx() -> Path:
    return _asset("dinov2-s14-onnx")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something listens on, on every interface (binding it again fails)."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield int(sock.getsockname()[1])
