"""A read-only view of the ingest store (`ingest.sqlite3`) for the explainer: accepted records by
rowid (the order they were committed), decoded and typed again with the cloud's own validator."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from vau.cloud.codec import decode_record
from vau.cloud.records import AcceptedRecord, Hello, ScoreSummary, TokenFrame
from vau.cloud.settings import LimitSettings
from vau.cloud.store import DB_NAME
from vau.cloud.validate import Validator

_VALIDATOR = Validator(LimitSettings(), retention_s=10 * 365 * 86_400.0)
_COLS = "rowid, device, camera, epoch, seq, body"


@dataclass(frozen=True, slots=True)
class Row:
    rowid: int
    record: AcceptedRecord


def typed(device: str, camera: str, epoch: int, body: bytes) -> AcceptedRecord:
    """A stored record body as the AcceptedRecord ingest made of it (it was validated then)."""
    wire = decode_record(body)
    hello = Hello(device, (camera,), epoch, "")
    return _VALIDATOR.record(wire, device, hello, now=wire.capture_time)


class IngestReader:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DB_NAME
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path.is_file():
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0)
        return self._conn

    def _rows(self, sql: str, args: tuple[object, ...]) -> list[Row]:
        db = self._db()
        if db is None:
            return []
        return [
            Row(rowid, typed(device, camera, epoch, body))
            for rowid, device, camera, epoch, _seq, body in db.execute(sql, args)
        ]

    def after(self, rowid: int, limit: int = 500) -> list[Row]:
        """Records committed after `rowid`, in commit order (frames left out: they are read by
        event when an explanation needs them)."""
        sql = (
            f"SELECT {_COLS} FROM records WHERE rowid > ? AND kind != 'frame' "
            "ORDER BY rowid LIMIT ?"
        )
        return self._rows(sql, (rowid, limit))

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
