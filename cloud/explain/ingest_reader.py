"""A read-only view of the ingest store (`ingest.sqlite3`) for the explainer: accepted records by
rowid (the order they were committed), decoded and typed again with the cloud's own validator.

The validator must be built from the limits ingest runs with (`CloudSettings.limits`): with the
defaults, a record that a raised limit let in (say `max_tokens_per_frame`) would fail here on every
read. A record that still cannot be read (limits lowered since, a body that does not decode) is
logged, reported to `on_unreadable` and skipped, and `after` still moves past it, so one bad row
never stops the tail.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError

from vau.cloud.codec import decode_record
from vau.cloud.records import AcceptedRecord, Hello, RecordRejected, ScoreSummary, TokenFrame
from vau.cloud.settings import LimitSettings
from vau.cloud.store import DB_NAME
from vau.cloud.validate import Validator

log = logging.getLogger(__name__)
STORED_FOR_S = 10 * 365 * 86_400.0  # stored records are re-typed at their own capture time
_COLS = "rowid, device, camera, epoch, seq, body"
OnUnreadable = Callable[[int, str], None]  # (rowid, reason)


@dataclass(frozen=True, slots=True)
class Row:
    rowid: int
    record: AcceptedRecord


@dataclass(frozen=True, slots=True)
class Batch:
    """What one `after` read: the readable rows, and the last rowid read (readable or not)."""

    rows: list[Row] = field(default_factory=list)
    last_rowid: int | None = None  # None: nothing new


def typed(
    validator: Validator, device: str, camera: str, epoch: int, body: bytes
) -> AcceptedRecord:
    """A stored record body as the AcceptedRecord ingest made of it (it was validated then)."""
    wire = decode_record(body)
    hello = Hello(device, (camera,), epoch, "")
    return validator.record(wire, device, hello, now=wire.capture_time)


class IngestReader:
    def __init__(
        self, data_dir: Path, limits: LimitSettings, on_unreadable: OnUnreadable | None = None
    ) -> None:
        self.path = data_dir / DB_NAME
        self.validator = Validator(limits, retention_s=STORED_FOR_S)
        self.on_unreadable = on_unreadable
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path.is_file():
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0)
        return self._conn

    def _read(self, sql: str, args: tuple[object, ...]) -> tuple[list[Row], int | None]:
        """(readable rows, the last rowid read); unreadable rows are reported and left out."""
        db = self._db()
        if db is None:
            return [], None
        rows, last = [], None
        for rowid, device, camera, epoch, seq, body in db.execute(sql, args):
            last = rowid
            try:
                rows.append(Row(rowid, typed(self.validator, device, camera, epoch, body)))
            except (RecordRejected, DecodeError) as exc:
                self._unreadable(rowid, f"{device}/{camera}/{epoch}/{seq}", exc)
        return rows, last

    def _unreadable(self, rowid: int, where: str, exc: Exception) -> None:
        reason = exc.reason if isinstance(exc, RecordRejected) else "decode"
        hint = "skipped (were limits lowered after it was accepted?)"
        log.warning("ingest record %d (%s) cannot be read: %s; %s", rowid, where, exc, hint)
        if self.on_unreadable is not None:
            self.on_unreadable(rowid, reason)

    def _rows(self, sql: str, args: tuple[object, ...]) -> list[Row]:
        return self._read(sql, args)[0]

    def after(self, rowid: int, limit: int = 500) -> Batch:
        """Records committed after `rowid`, in commit order (frames left out: they are read by
        event when an explanation needs them)."""
        sql = (
            f"SELECT {_COLS} FROM records WHERE rowid > ? AND kind != 'frame' "
            "ORDER BY rowid LIMIT ?"
        )
        rows, last = self._read(sql, (rowid, limit))
        return Batch(rows, last)

    def last_rowid(self) -> int:
        db = self._db()
        row = db.execute("SELECT MAX(rowid) FROM records").fetchone() if db else None
        return int(row[0]) if row and row[0] is not None else 0

    def frames(
        self, device: str, camera: str, epoch: int, before_seq: int, limit: int
    ) -> list[tuple[float, TokenFrame]]:
        """(t, frame) of the newest `limit` frames before `before_seq`, oldest first."""
        sql = (
            f"SELECT {_COLS} FROM records WHERE device=? AND camera=? AND epoch=? AND seq<? "
            "AND kind='frame' ORDER BY seq DESC LIMIT ?"
        )
        rows = self._rows(sql, (device, camera, epoch, before_seq, limit))
        out = [(r.record.t, r.record.body) for r in reversed(rows)]
        return [(t, b) for t, b in out if isinstance(b, TokenFrame)]

    def baseline(self, device: str, camera: str, epoch: int, before_t: float) -> float | None:
        """The mean score of the newest score summary that ended before `before_t`."""
        sql = (
            f"SELECT {_COLS} FROM records WHERE device=? AND camera=? AND epoch=? "
            "AND kind='summary' ORDER BY seq DESC LIMIT 50"
        )
        for r in self._rows(sql, (device, camera, epoch)):
            b = r.record.body
            if isinstance(b, ScoreSummary) and b.end <= before_t:
                return b.mean
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
