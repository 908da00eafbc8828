"""The one place a store is chosen and opened: `open_storage(url, data_dir, retention_s)`.

`store.url` (`VAU_CLOUD__STORE__URL`, `vau-cloud serve --store URL`) names it: unset = the SQLite
files in `data_dir` (the layout before the setting existed); a folder path or `sqlite:///ABS/PATH`
= the SQLite files in that folder (`ingest.sqlite3`, `events.sqlite3`); `postgresql://USER@HOST/DB`
(or `postgres://`) = the `vau_*` tables in that PostgreSQL database (psycopg 3; created if missing;
a refused or unreachable server is a StoreError at start, one line, password redacted).

A `Storage` is built once per process and injected; each component opens its own handles from it,
on the thread that uses them (an SQLite connection stays on its thread; `PgStorage` opens one
PostgreSQL connection per handle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from vau.cloud.storage.alert_outbox import AlertOutbox
from vau.cloud.storage.event_repository import EventRepository
from vau.cloud.storage.ingest_log import IngestLog, StoreError
from vau.cloud.storage.leases import Leases, LocalLeases, PgLeases
from vau.cloud.storage.pg_alerts import PgAlertOutbox
from vau.cloud.storage.pg_alerts import ensure_schema as ensure_alert_schema
from vau.cloud.storage.pg_events import PgEventRepository
from vau.cloud.storage.pg_events import ensure_schema as ensure_event_schema
from vau.cloud.storage.pg_ingest import PgIngestLog, redact
from vau.cloud.storage.pg_ingest import ensure_schema as ensure_ingest_schema
from vau.cloud.storage.pg_ingest import read_stats as read_pg_stats
from vau.cloud.storage.sqlite_events import SqliteEventRepository
from vau.cloud.storage.sqlite_ingest import SqliteIngestLog, check_data_dir, read_stats

POSTGRES_SCHEMES = ("postgresql", "postgres")


class Storage(Protocol):
    """Opens handles on one store; each handle is used from one thread."""

    @property
    def description(self) -> str:
        """Where the store is, for logs (never a password)."""
        ...

    def ingest_log(self, *, read_only: bool = False) -> IngestLog:
        """The writer handle (one per process: ingest), or a reader's (`read_only`)."""
        ...

    def event_repository(self) -> EventRepository: ...

    def alert_outbox(self, data_dir: Path, max_records: int, max_bytes: int) -> AlertOutbox:
        """The MQTT alert outbox: this process's `alerts.sqlite3` in `data_dir` (SQLite), or
        the replicas' shared table (PostgreSQL)."""
        ...

    def leases(self) -> Leases:
        """Singleton roles across the processes sharing this store (docs/storage.md)."""
        ...

    @property
    def shared(self) -> bool:
        """Several processes may serve this store at once (replicas)."""
        ...


class SqliteStorage:
    def __init__(self, folder: Path, retention_s: float) -> None:
        check_data_dir(folder)
        self.folder, self.retention_s = folder, retention_s

    @property
    def description(self) -> str:
        return str(self.folder)

    def ingest_log(self, *, read_only: bool = False) -> IngestLog:
        return SqliteIngestLog(self.folder, self.retention_s, read_only=read_only)

    def event_repository(self) -> EventRepository:
        return SqliteEventRepository(self.folder)

    def alert_outbox(self, data_dir: Path, max_records: int, max_bytes: int) -> AlertOutbox:
        from vau.cloud.mqtt.outbox import Outbox

        return Outbox(data_dir, max_records, max_bytes)

    def leases(self) -> Leases:
        return LocalLeases()

    @property
    def shared(self) -> bool:
        return False


class PgStorage:
    """The `vau_*` tables of one PostgreSQL database; every handle is its own connection."""

    def __init__(self, url: str, retention_s: float) -> None:
        ensure_ingest_schema(url)  # connects once: an unreachable server fails here, at start
        ensure_event_schema(url)
        ensure_alert_schema(url)
        self.url, self.retention_s = url, retention_s

    @property
    def description(self) -> str:
        return redact(self.url)

    def ingest_log(self, *, read_only: bool = False) -> IngestLog:
        return PgIngestLog(self.url, self.retention_s, read_only=read_only)

    def event_repository(self) -> EventRepository:
        return PgEventRepository(self.url)

    def alert_outbox(self, data_dir: Path, max_records: int, max_bytes: int) -> AlertOutbox:
        return PgAlertOutbox(self.url, max_records, max_bytes)

    def leases(self) -> Leases:
        return PgLeases(self.url)

    @property
    def shared(self) -> bool:
        return True


def store_errors() -> tuple[type[Exception], ...]:
    """What a backend raises when the database fails mid-operation (disk full, connection lost):
    the callers that retry on the next poll catch these, whichever backend is configured."""
    import sqlite3

    import psycopg

    return (sqlite3.Error, psycopg.Error, StoreError, OSError)


def is_postgres(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme.lower() in POSTGRES_SCHEMES


def sqlite_folder(url: str | None, data_dir: Path) -> Path:
    """The SQLite folder a store URL names; StoreError for one this build cannot open."""
    if not url:
        return data_dir
    if "://" not in url:
        return Path(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in POSTGRES_SCHEMES:
        raise StoreError(f"store {redact(url)} is a PostgreSQL store, not a SQLite folder")
    if scheme != "sqlite" or parts.netloc or not parts.path:
        raise StoreError(
            f"store {url!r} is not a store URL this build knows: use a folder path or "
            "sqlite:///ABS/PATH"
        )
    return Path(parts.path)


def open_storage(url: str | None, data_dir: Path, retention_s: float) -> Storage:
    """The store `url` names (unset: the SQLite files in `data_dir`); StoreError if unusable."""
    if url and is_postgres(url):
        return PgStorage(url, retention_s)
    return SqliteStorage(sqlite_folder(url, data_dir), retention_s)


def store_stats(url: str | None, data_dir: Path | None) -> dict[str, Any]:
    """`vau-cloud stats`: the ingest counts of a store another process may be serving."""
    if url and is_postgres(url):
        return read_pg_stats(url)
    if url:
        return read_stats(sqlite_folder(url, Path()), "--store")
    assert data_dir is not None
    return read_stats(data_dir)
