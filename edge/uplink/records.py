"""What the edge queues for the cloud, before and after it is on disk.

The pipeline produces `OutboxItem`s (an encoded record body plus what the outbox needs to order,
evict and expire it); the outbox gives each a per-camera sequence number and hands `Stored` records
to the uplink. Priorities set the eviction order when the outbox is full: lowest goes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Priority(IntEnum):
    FRAME = 0  # tokens of a normal frame (continuous uplink): evicted first
    SUMMARY = 1  # scores-only heartbeat of normal time
    WINDOW = 2  # tokens of a frame chosen for an anomaly window, and the window marker
    EVENT = 3  # event lifecycle change with its prior: evicted last


@dataclass(frozen=True, slots=True)
class OutboxItem:
    camera: str
    kind: str  # "frame" | "event" | "window" | "summary", for stats and logs
    priority: Priority
    capture_time: float  # UNIX seconds
    body: bytes  # the encoded record body (vau.v1.Record without camera/epoch/seq)


@dataclass(frozen=True, slots=True)
class Stored:
    camera: str
    epoch: int
    seq: int  # strictly increasing per (camera, epoch)
    kind: str
    priority: Priority
    capture_time: float
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body)
