"""`vau.cloud.pg_temp`, the one throwaway PostgreSQL: durable for `bench-load --store temp` (fsync
on, max_wal_size 4 GB), fsync off for the tests (support.postgres), a fresh database each time,
and nothing left behind."""

from __future__ import annotations

import psycopg
import pytest
from support.postgres import SKIP_REASON

from vau.cloud.pg_temp import TempPostgres, find_pg_bin

pytestmark = pytest.mark.skipif(find_pg_bin() is None, reason=SKIP_REASON)


def _show(url: str, *names: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(conn.execute(f"SHOW {n}".encode()).fetchone()[0]) for n in names]


@pytest.mark.parametrize(
    ("durable", "expected"), [(True, ["on", "4GB", "200"]), (False, ["off", "1GB", "200"])]
)
def test_temp_postgres_when_durable_or_not_then_its_settings_and_fresh_databases(
    durable: bool, expected: list[str]
) -> None:
    with TempPostgres(durable=durable) as pg:
        assert _show(pg.url(), "fsync", "max_wal_size", "max_connections") == expected
        first, second = pg.create_database(), pg.create_database()
        assert first != second and _show(first, "fsync") == expected[:1]
        assert pg.pid > 0 and pg.dir.is_dir()
    assert pg.proc is not None and pg.proc.poll() is not None and not pg.dir.exists()
