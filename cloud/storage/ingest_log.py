"""The ingest log: accepted records, deduplicated by per-camera high-water marks, and tailed by
position and kind by everything downstream (event projector, explainer, MQTT alerts, review page).

Dedup is a high-water mark per (device, camera, epoch): the edge sends each camera's records in
seq order and resumes after the last ack, so a record with seq <= max_seq is a duplicate (counted,
acked, not stored again) and seqs skipped over are counted as gaps (evicted or expired at the
edge). One `commit_many` is one transaction; callers ack only after it returns.

A position is the log's own order of acceptance (SQLite: the records table's rowid): a reader
keeps the last position it handled as its cursor and asks for what follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vau.cloud.records import AcceptedRecord


class StoreError(Exception):
    """The store is missing, unreadable or not configured usably; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class CommitResult:
    accepted: tuple[AcceptedRecord, ...]  # new records, in arrival order
    duplicates: int  # records at or below the high-water mark: acked, not stored
    seconds: float  # wall time of the transaction, fsync included


@dataclass(frozen=True, slots=True)
class StoredRecord:
    device: str
    camera: str
    epoch: int
    seq: int
    kind: str
    capture_time: float
    received_at: float
    body: bytes  # serialized vau.v1.Record (vau.cloud.codec.decode_record reads it)


@dataclass(frozen=True, slots=True)
class LogEntry:
    position: int  # the order of acceptance; a tail cursor
    record: StoredRecord


class IngestLog(Protocol):
    """One handle on the log; use it from one thread (open one per thread through `Storage`)."""

    def commit_many(
        self, batches: Sequence[Sequence[AcceptedRecord]], received_at: float
    ) -> list[CommitResult]:
        """Dedup and store every batch in ONE transaction, one result per batch; durable when
        this returns."""
        ...

    def commit(self, records: Sequence[AcceptedRecord], received_at: float) -> CommitResult:
        """`commit_many` of one batch."""
        ...

    def resume_after(self, device: str, epoch: int, cameras: Sequence[str]) -> dict[str, int]:
        """Highest accepted seq per camera of (device, epoch): the listed ones (0 if new) and any
        other camera known for that epoch."""
        ...

    def records(
        self, device: str, camera: str, epoch: int, after_seq: int = 0, limit: int = 1000
    ) -> list[StoredRecord]:
        """Accepted records of one (device, camera, epoch) in seq order."""
        ...

    def tail(self, after: int, kinds: Sequence[str], limit: int = 256) -> list[LogEntry]:
        """Records of the given kinds with a position after `after`, in acceptance order."""
        ...

    def last_position(self) -> int:
        """The newest record's position (0 when empty)."""
        ...

    def newest(
        self,
        device: str,
        camera: str,
        epoch: int,
        kind: str,
        limit: int,
        before_seq: int | None = None,
    ) -> list[LogEntry]:
        """The newest `limit` records of one kind of (device, camera, epoch), seq descending,
        only those with seq < `before_seq` when it is given."""
        ...

    def prune(self, now: float) -> tuple[int, int]:
        """Drop records and dedup state untouched for the retention period; (records, rows)."""
        ...

    def stats(self) -> dict[str, Any]:
        """{"devices": {DEVICE: {CAMERA: {accepted, duplicates, max_seq, gaps}}}}, summed over
        epochs; max_seq is that of the highest epoch."""
        ...

    def close(self) -> None: ...
