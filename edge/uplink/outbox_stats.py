"""The outbox's totals: as a value, and read from the file by another process (the CLI)."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from vau.edge.uplink import outbox_db as odb
from vau.edge.uplink.outbox_db import FILENAME, OutboxError

STATS_KEYS = ("enqueued", "acked", "pending", "evicted", "expired")


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Totals over the life of the file (exact after a crash), and what it holds now."""

    enqueued: int  # == acked + pending + evicted + expired
    acked: int
    pending: int  # records held now (unacked; expired ones go at the next expiry pass)
    evicted: int  # removed for space, including records dropped on arrival
    expired: int
    bytes: int  # record body bytes held now
    evicted_by_kind: dict[str, int] = field(default_factory=dict)
    expired_by_kind: dict[str, int] = field(default_factory=dict)
    ignored_acks: int = 0  # acks naming another epoch


def stats_from(c: dict[str, int]) -> OutboxStats:
    """OutboxStats from the counters table."""

    def by_kind(prefix: str) -> dict[str, int]:
        return {k.split(":", 1)[1]: v for k, v in c.items() if k.startswith(prefix) and v}

    return OutboxStats(
        enqueued=c.get("enqueued", 0), acked=c.get("acked", 0), pending=c.get("records", 0),
        evicted=c.get("evicted", 0), expired=c.get("expired", 0), bytes=c.get("bytes", 0),
        evicted_by_kind=by_kind("evicted:"), expired_by_kind=by_kind("expired:"),
        ignored_acks=c.get("ignored_acks", 0),
    )  # fmt: skip


def read_stats(data_dir: Path) -> dict[str, int]:
    """The outbox's lifetime totals, read-only (safe while an agent writes to it):
    {"enqueued", "acked", "pending", "evicted", "expired"}; no outbox there -> OutboxError."""
    path = data_dir / FILENAME
    if not path.is_file():
        raise OutboxError(f"no outbox at {path}: the edge agent creates it there on first start")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=odb.BUSY_TIMEOUT_S)) as db:
            c = odb.counters(db)
    except sqlite3.Error as exc:
        raise odb.explain(path, exc) from None
    stats = stats_from(c)
    return {key: int(getattr(stats, key)) for key in STATS_KEYS}
