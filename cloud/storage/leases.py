"""Singleton roles across replicas: which `vau-cloud serve` process runs the event projector, the
MQTT alert publisher and retention, when several share one store.

PostgreSQL (`PgLeases`): one session-level advisory lock per role (`pg_try_advisory_lock`) on a
connection of its own. The lock lives exactly as long as that database session: a replica that
exits, is killed (`kill -9`) or loses its connection loses its roles at once, the server frees them,
and the next replica that asks gets them. `check` asks the server which of our locks it still holds
(`pg_locks` of our backend), so a replica whose connection broke learns it lost its roles and stops
that work; a broken connection is reopened on the next `acquire`.

SQLite (`LocalLeases`): one process owns the files, so it holds every role.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any, Protocol

import psycopg

from vau.cloud.storage.pg_ingest import connect

ROLES = ("projector", "mqtt", "retention")
_LOCK_BASE = 0x76617502 << 16  # "vau\x02" in the high bits: apart from the append/schema locks


def lock_key(role: str) -> int:
    """The advisory lock key of a role (stable across processes and versions)."""
    return _LOCK_BASE | (zlib.crc32(role.encode()) & 0xFFFF)


class Leases(Protocol):
    """One process's handle on the roles; used from one thread."""

    def acquire(self, role: str) -> bool:
        """Take `role` if no other replica holds it; True if this process holds it now."""
        ...

    def check(self, roles: Iterable[str]) -> set[str]:
        """Which of `roles` (ones this process took) it still holds."""
        ...

    def release(self, role: str) -> None: ...

    def close(self) -> None:
        """Give up every role (closing the session frees its locks)."""
        ...


class LocalLeases:
    """SQLite: one process, trivially the holder of every role."""

    def acquire(self, role: str) -> bool:
        return True

    def check(self, roles: Iterable[str]) -> set[str]:
        return set(roles)

    def release(self, role: str) -> None:
        pass

    def close(self) -> None:
        pass


class PgLeases:
    """Session advisory locks on a dedicated connection (opened lazily, reopened after a loss)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop()
            self._conn = connect(self.url)
        return self._conn

    def acquire(self, role: str) -> bool:
        row = (
            self._connection()
            .execute("SELECT pg_try_advisory_lock(%s)", (lock_key(role),))
            .fetchone()
        )
        return bool(row and row[0])

    def check(self, roles: Iterable[str]) -> set[str]:
        wanted = {lock_key(r): r for r in roles}
        if not wanted or self._conn is None or self._conn.closed:
            return set()
        sql = (
            "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks WHERE "
            "locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1"
        )
        try:
            held = {int(k) for (k,) in self._conn.execute(sql)}
        except psycopg.Error:  # the session is gone, and its locks with it
            self._drop()
            return set()
        return {role for key, role in wanted.items() if key in held}

    def release(self, role: str) -> None:
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(role),))
            except psycopg.Error:
                self._drop()

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
