"""A real PostgreSQL server for tests: `vau.cloud.pg_temp.TempPostgres` (Debian's `initdb` and
`postgres` in a temporary directory on a free loopback port, user `vau`, trust authentication; as
the `postgres` user when the tests run as root), not durable (fsync off). `create_database()`
gives each test a fresh database. The tests skip, with the reason, only when the binaries are
absent (or, as root, there is no `postgres` user to run them as)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vau.cloud.pg_temp import TempPostgres, TempPostgresError, find_pg_bin, free_port

PostgresServer = TempPostgres  # the fixtures' type, under the name the tests know
SKIP_REASON = (
    "PostgreSQL server binaries (initdb, postgres) are not installed; CI installs them: "
    "apt-get install postgresql"
)
__all__ = ["SKIP_REASON", "PostgresServer", "free_port", "start_postgres"]


def start_postgres() -> Iterator[PostgresServer]:
    """The body of a session or module fixture: a started server, stopped and removed after."""
    if find_pg_bin() is None:
        pytest.skip(SKIP_REASON)
    try:
        server = TempPostgres(durable=False)
    except TempPostgresError as exc:  # as root without a `postgres` user
        pytest.skip(str(exc))
    with server:
        yield server
