"""HOST:PORT parsing shared by the cloud's listen setting and the edge's cloud address."""

from __future__ import annotations

import pytest

from vau.common.net import host_port


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:50051", ("127.0.0.1", 50051)), ("[::1]:0", ("::1", 0)), ("cloud:1", ("cloud", 1))],
)
def test_host_port_splits_valid_addresses(address: str, expected: tuple[str, int]) -> None:
    assert host_port(address) == expected


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("1.2.3.4:99999", "port 99999 of '1.2.3.4:99999' is out of range (0-65535)"),
        ("1.2.3.4", "'1.2.3.4' has no port"),
        ("host:http", "port 'http' of 'host:http' is not a number"),
        ("::1:50051", "IPv6 hosts go in brackets"),
    ],
)
def test_host_port_says_what_is_wrong_with_the_address(address: str, says: str) -> None:
    with pytest.raises(ValueError) as err:
        host_port(address)
    assert says in str(err.value)
