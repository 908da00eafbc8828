"""A typed view of the ingest log for the event projector, the explainer and the review page:
accepted records by position (the order they were committed), decoded and typed again with the
cloud's own validator. It reads through an `IngestLog` handle (opened by its user, on its thread).

The validator must be built from the limits ingest runs with (`CloudSettings.limits`): with the
defaults, a record that a raised limit let in (say `max_tokens_per_frame`) would fail here on every
read. A record that still cannot be read (limits lowered since, a body that does not decode) is
logged, reported to `on_unreadable` and skipped, and `after` still moves past it, so one bad row
never stops the tail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from vau.cloud.codec import decode_record
from vau.cloud.records import AcceptedRecord, Hello, RecordRejected, ScoreSummary, TokenFrame
from vau.cloud.settings import LimitSettings
from vau.cloud.storage.event_repository import StoredEvent, StoredWindow
from vau.cloud.storage.ingest_log import IngestLog, LogEntry
from vau.cloud.validate import Validator

log = logging.getLogger(__name__)
STORED_FOR_S = 10 * 365 * 86_400.0  # stored records are re-typed at their own capture time
TAILED = ("event", "window", "summary")  # what `after` reads by default: all but frames
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
        self, log: IngestLog, limits: LimitSettings, on_unreadable: OnUnreadable | None = None
    ) -> None:
        self.log = log
        self.validator = Validator(limits, retention_s=STORED_FOR_S)
        self.on_unreadable = on_unreadable

    def _read(self, entries: Sequence[LogEntry]) -> list[Row]:
        """The readable entries, typed; unreadable ones are reported and left out."""
        rows = []
        for e in entries:
            r = e.record
            try:
                rows.append(
                    Row(e.position, typed(self.validator, r.device, r.camera, r.epoch, r.body))
                )
            except (RecordRejected, DecodeError) as exc:
                self._unreadable(e.position, f"{r.device}/{r.camera}/{r.epoch}/{r.seq}", exc)
        return rows

    def _unreadable(self, rowid: int, where: str, exc: Exception) -> None:
        reason = exc.reason if isinstance(exc, RecordRejected) else "decode"
        hint = "skipped (were limits lowered after it was accepted?)"
        log.warning("ingest record %d (%s) cannot be read: %s; %s", rowid, where, exc, hint)
        if self.on_unreadable is not None:
            self.on_unreadable(rowid, reason)

    def after(self, rowid: int, limit: int = 500, kinds: Sequence[str] = TAILED) -> Batch:
        """Records of `kinds` committed after position `rowid`, in commit order (frames left out
        by default: they are read by event when an explanation needs them)."""
        entries = self.log.tail(rowid, kinds, limit)
        return Batch(self._read(entries), entries[-1].position if entries else None)

    def last_rowid(self) -> int:
        return self.log.last_position()

    def frames(
        self, device: str, camera: str, epoch: int, before_seq: int, limit: int
    ) -> list[tuple[float, TokenFrame]]:
        """(t, frame) of the newest `limit` frames before `before_seq`, oldest first."""
        rows = self._read(self.log.newest(device, camera, epoch, "frame", limit, before_seq))
        out = [(r.record.t, r.record.body) for r in reversed(rows)]
        return [(t, b) for t, b in out if isinstance(b, TokenFrame)]

    def event_frames(
        self, event: StoredEvent, window: StoredWindow | None, open_limit: int
    ) -> list[tuple[float, TokenFrame]]:
        """The frames an event has, oldest first: its window's frames once the window marker is
        stored (looked for among the frames before the marker), else its newest `open_limit`
        frames since its start."""
        if window is not None:
            scan = max(64, 4 * len(window.frame_seqs))
            got = self.frames(event.device, event.camera, event.epoch, window.record_seq, scan)
            wanted = set(window.frame_seqs)
            return [(t, f) for t, f in got if f.frame_seq in wanted]
        got = self.frames(event.device, event.camera, event.epoch, 2**63 - 1, open_limit)
        return [(t, f) for t, f in got if t >= event.start]

    def baseline(self, device: str, camera: str, epoch: int, before_t: float) -> float | None:
        """The mean score of the newest score summary that ended before `before_t`."""
        for r in self._read(self.log.newest(device, camera, epoch, "summary", 50)):
            b = r.record.body
            if isinstance(b, ScoreSummary) and b.end <= before_t:
                return b.mean
        return None

    def close(self) -> None:
        self.log.close()
