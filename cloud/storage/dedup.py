"""The ingest log's dedup rule, one for every backend: per (device, camera, epoch), a record is new
only when its seq is above the highest seq stored; the skipped seqs between are counted as gaps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vau.cloud.records import AcceptedRecord

Key = tuple[str, str, int]  # (device, camera, epoch)


@dataclass(slots=True)
class DedupRow:  # the working copy of one dedup row inside a transaction
    max_seq: int = 0
    accepted: int = 0
    duplicates: int = 0
    gaps: int = 0


def split_fresh(
    batch: Sequence[AcceptedRecord], rows: dict[Key, DedupRow], load: Callable[[Key], DedupRow]
) -> tuple[list[AcceptedRecord], int]:
    """The batch's new records, and how many were duplicates; `rows` (the transaction's working
    copies, read once per key with `load`) are updated in place."""
    fresh: list[AcceptedRecord] = []
    duplicates = 0
    for r in batch:
        key = (r.device, r.camera, r.epoch)
        row = rows.get(key)
        if row is None:
            row = rows[key] = load(key)
        if r.seq <= row.max_seq:
            row.duplicates += 1
            duplicates += 1
            continue
        row.gaps += r.seq - row.max_seq - 1
        row.max_seq = r.seq
        row.accepted += 1
        fresh.append(r)
    return fresh, duplicates
