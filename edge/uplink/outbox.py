"""The edge's durable outbox: records wait here, on disk, until the cloud acknowledges them.

One SQLite file, `<data_dir>/outbox.sqlite3`, in WAL mode with `synchronous=FULL`: `put` returns
only after its transaction is fsynced, so a record that `put` handed back survives `kill -9` and a
power cut. Bounded in bytes (sum of record bodies): when full, records go lowest priority first
(normal frames, then summaries, then window frames, event changes last), oldest first within a
priority, and never to admit a record of lower priority, which is then dropped instead. Records
older than `ttl_s` expire unsent. Every eviction and expiry is counted (in the file, in the same
transaction, and in Prometheus) and logged, one line per call.

Sequence numbers are per camera, start at 1 and are never reused within the file's epoch, which is
chosen when the file is created. Acks are cumulative per camera.

Threads: one connection guarded by one lock. The pipeline thread calls `put`, the uplink thread
`pending` and `ack`; each call holds the lock for its transaction only. One process per data_dir:
a second `Outbox` on the same folder raises OutboxError (`read_stats` may read it at any time).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from vau.common.dirs import DataDirError, ensure_data_dir
from vau.edge import metrics
from vau.edge.uplink import outbox_db as odb
from vau.edge.uplink.outbox_db import FILENAME, OutboxError, Removed
from vau.edge.uplink.outbox_stats import OutboxStats, read_stats, stats_from
from vau.edge.uplink.records import OutboxItem, Priority, Stored

__all__ = ["FILENAME", "Outbox", "OutboxError", "OutboxStats", "read_stats"]

log = logging.getLogger(__name__)

EXPIRE_EVERY_S = 1.0  # pending()/stats() delete expired records at most this often


@dataclass(frozen=True, slots=True)
class _PutResult:
    seq: int
    kept: bool
    evicted: Removed  # for space; when not kept, the new record itself
    expired: Removed
    totals: tuple[int, int]  # (bytes, records) after the put


class Outbox:
    """The durable queue; see the module docstring. A context manager: `close()` on leaving."""

    def __init__(
        self, data_dir: Path, max_bytes: int, ttl_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        if max_bytes <= 0 or ttl_s <= 0:
            raise ValueError(f"max_bytes ({max_bytes}) and ttl_s ({ttl_s}) must be positive")
        self.max_bytes, self.ttl_s, self._clock = max_bytes, ttl_s, clock
        try:
            ensure_data_dir(data_dir, "--data-dir (uplink.data_dir)")
        except DataDirError as exc:
            raise OutboxError(str(exc)) from None
        self.path = data_dir / FILENAME
        self._claim = odb.claim(data_dir)
        try:
            self._db, self.epoch = odb.open_outbox(self.path)
        except BaseException:
            os.close(self._claim)
            raise
        self._lock = threading.Lock()
        self._expired_at = float("-inf")
        self._closed = False
        with self._lock:
            self._publish(odb.totals(self._db))

    # --- the pipeline's side -------------------------------------------------------------------

    def put(self, item: OutboxItem) -> Stored:
        """Store `item` under the camera's next seq; returns after the write is on disk.

        When the outbox is full of records of higher priority, the item is dropped on arrival
        (counted as evicted and logged); its seq stays used and it never appears in `pending`."""
        size = len(item.body)
        if size > self.max_bytes:
            raise ValueError(
                f"outbox record of {size} bytes ({item.kind}, camera {item.camera}) is larger "
                f"than the whole outbox (outbox_max_bytes={self.max_bytes}); raise the cap"
            )
        start = time.perf_counter()
        with self._write() as db:
            result = self._put_in(db, item, size)
        metrics.OUTBOX_PUT_SECONDS.observe(time.perf_counter() - start)
        metrics.RECORDS_ENQUEUED.labels(item.camera, item.kind).inc()
        self._report_put(item, result)
        self._publish(result.totals)
        return Stored(item.camera, self.epoch, result.seq, item.kind, item.priority,
                      item.capture_time, item.body)  # fmt: skip

    def _put_in(self, db: sqlite3.Connection, item: OutboxItem, size: int) -> _PutResult:
        seq = odb.next_seq(db, item.camera)
        need = odb.totals(db)[0] + size - self.max_bytes
        expired = odb.expire(db, self._cutoff()) if need > 0 else Removed()
        need -= expired.bytes
        evicted = odb.evict(db, int(item.priority), need) if need > 0 else Removed()
        odb.bump(db, {"enqueued": 1, **expired.deltas("expired")})
        if evicted is None:  # only higher priorities left to evict: the new record goes instead
            odb.bump(db, {"evicted": 1, f"evicted:{item.kind}": 1})
            return _PutResult(seq, False, Removed({item.kind: 1}), expired, odb.totals(db))
        odb.insert(db, item, seq)
        odb.bump(db, {**evicted.deltas("evicted"), "bytes": size - evicted.bytes,
                      "records": 1 - evicted.count})  # fmt: skip
        return _PutResult(seq, True, evicted, expired, odb.totals(db))

    # --- the uplink's side ---------------------------------------------------------------------

    def pending(self, camera: str, after_seq: int, limit: int) -> list[Stored]:
        """Unacked, unexpired records of `camera` with seq > after_seq, ascending seq."""
        self._maybe_expire()
        with self._read() as db:
            rows = odb.pending(db, camera, after_seq, self._cutoff(), limit)
        return [Stored(camera, self.epoch, seq, kind, Priority(prio), t, body)
                for seq, kind, prio, t, body in rows]  # fmt: skip

    def ack(self, camera: str, epoch: int, seq: int) -> int:
        """Delete the camera's records with seq <= `seq` (cumulative); returns how many."""
        if epoch != self.epoch:
            return self._ignore_ack(camera, epoch, seq)
        with self._write() as db:
            n, size = odb.delete_through(db, camera, min(seq, 2**63 - 1))  # wire seq is uint64
            odb.bump(db, {"acked": n, "bytes": -size, "records": -n})
            last, totals = odb.last_seq(db, camera), odb.totals(db)
        if seq > last:
            log.warning(
                "outbox: ack of camera %s seq %d is beyond the last seq %d", camera, seq, last
            )
        metrics.RECORDS_ACKED.labels(camera).inc(n)
        self._publish(totals)
        return n

    def reject(self, camera: str, seq: int, reason: str) -> int:
        """Drop one record the cloud refused as invalid, so it cannot block the stream forever;
        counted as evicted (reason "rejected") and logged. Returns 1, or 0 if it was gone."""
        with self._write() as db:
            removed = odb.delete_one(db, camera, seq)
            odb.bump(db, removed.deltas("evicted"))
            totals = odb.totals(db)
        self._report_removed("rejected", removed, f"the cloud refused seq {seq}: {reason}")
        self._publish(totals)
        return removed.count

    def _ignore_ack(self, camera: str, epoch: int, seq: int) -> int:
        log.warning(
            "outbox: ignored an ack for camera %s seq %d of epoch %d (this outbox is epoch %d)",
            camera, seq, epoch, self.epoch,
        )  # fmt: skip
        metrics.OUTBOX_ACKS_IGNORED.labels(camera).inc()
        with self._write() as db:
            odb.bump(db, {"ignored_acks": 1})
        return 0

    def expire(self) -> int:
        """Delete records older than ttl_s now; returns how many (counted and logged)."""
        now = self._clock()
        with self._write() as db:
            removed = odb.expire(db, now - self.ttl_s)
            odb.bump(db, removed.deltas("expired"))
            totals = odb.totals(db)
        self._expired_at = now
        self._report_removed("expired", removed, f"older than ttl_s={self.ttl_s:g} s")
        self._publish(totals)
        return removed.count

    def cameras(self) -> list[str]:
        """Every camera that ever put a record in this file."""
        with self._read() as db:
            return odb.cameras(db)

    def last_seq(self, camera: str) -> int:
        """The last seq handed out for `camera` (0 if none)."""
        with self._read() as db:
            return odb.last_seq(db, camera)

    def stats(self) -> OutboxStats:
        self._maybe_expire()
        with self._read() as db:
            c = odb.counters(db)
        return stats_from(c)

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._db.close()
            os.close(self._claim)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------

    def _cutoff(self) -> float:
        return self._clock() - self.ttl_s

    def _maybe_expire(self) -> None:
        if not 0 <= self._clock() - self._expired_at < EXPIRE_EVERY_S:
            self.expire()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_open()
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise odb.explain(self.path, exc) from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction, committed (fsynced) on leaving, else rolled back."""
        with self._read() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _check_open(self) -> None:
        if self._closed:
            raise OutboxError(f"outbox {self.path} is closed")

    def _report_put(self, item: OutboxItem, result: _PutResult) -> None:
        self._report_removed("expired", result.expired, f"older than ttl_s={self.ttl_s:g} s")
        if result.kept:
            why = f"to admit a {item.kind} record of camera {item.camera} (cap {self.max_bytes} B)"
            self._report_removed("full", result.evicted, why)
            return
        _count("full", result.evicted)
        log.warning(
            "outbox full (%d of %d bytes) of records of higher priority: dropped the new %s "
            "record of camera %s (seq %d, %d bytes)",
            result.totals[0], self.max_bytes, item.kind, item.camera, result.seq, len(item.body),
        )  # fmt: skip

    @staticmethod
    def _report_removed(reason: str, removed: Removed, why: str) -> None:
        """One log line for all records one call removed, and their metrics."""
        if not removed.count:
            return
        _count(reason, removed)
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(removed.by_kind.items()))
        verb = "expired" if reason == "expired" else "evicted"
        log.warning("outbox: %s %d records (%s; %d bytes) %s", verb, removed.count, kinds,
                    removed.bytes, why)  # fmt: skip

    @staticmethod
    def _publish(totals: tuple[int, int]) -> None:
        metrics.OUTBOX_BYTES.set(totals[0])
        metrics.OUTBOX_RECORDS.set(totals[1])


def _count(reason: str, removed: Removed) -> None:
    for kind, n in removed.by_kind.items():
        metrics.OUTBOX_EVICTED.labels(reason, kind).inc(n)
        if reason == "expired":
            metrics.OUTBOX_EXPIRED.labels(kind).inc(n)
