"""Frame scores -> anomaly events with stable ids, and the TET prior sentence for each.

Smoothing (EMA) removes single-frame spikes; hysteresis opens an event when the smoothed score
reaches `enter` and lets it close only after it has stayed below `exit` for longer than
`merge_gap_s` (so two bursts close together are one event). An event is announced ("new") once it
has lasted `min_duration_s`; shorter candidates are discarded and counted. Open events report
("update") every `update_every_s`; "end" carries the time of the last frame above `exit`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from vau.edge.settings import EventSettings
from vau.edge.types import EventState, EventUpdate, FrameScore

log = logging.getLogger(__name__)


def prior_sentence(classes: Sequence[str], start: float, end: float | None) -> str:
    """The TET prior (VA-GPT): the class list, then the span in which one of them occurs."""
    known = ", ".join(f"'{c}'" for c in classes)
    span = f"from {start:.1f}s to {end:.1f}s" if end is not None else f"from {start:.1f}s onwards"
    return (
        f"Known common anomaly types are: {known}. "
        f"There is one of the anomaly types occurring {span}."
    )


@dataclass(frozen=True, slots=True)
class _Open:
    id: str
    start: float
    last_above: float  # last time the smoothed score was >= exit
    peak: float
    peak_t: float
    announced: bool
    last_report: float


class EventTracker:
    """Per camera. Feed `observe` one raw score per frame in time order; call `flush` at the end."""

    def __init__(self, cfg: EventSettings, camera: str, run_id: str | None = None) -> None:
        self._cfg = cfg
        self._camera = camera
        self._run = run_id or secrets.token_hex(3)
        self._count = 0
        self._smoothed: float | None = None
        self._open: _Open | None = None
        self.discarded = 0

    @property
    def is_open(self) -> bool:
        """An event (announced or not yet) is open."""
        return self._open is not None

    def observe(self, seq: int, t: float, score: float) -> tuple[FrameScore, list[EventUpdate]]:
        a = self._cfg.smoothing
        s = score if self._smoothed is None else a * score + (1.0 - a) * self._smoothed
        self._smoothed = s
        return FrameScore(seq=seq, t=t, score=score, smoothed=s), self._step(t, s)

    def flush(self, t: float) -> list[EventUpdate]:
        """End of stream: close what is open at its last time above `exit`."""
        ev, self._open = self._open, None
        if ev is None:
            return []
        return self._close(ev, min(t, ev.last_above))

    def _step(self, t: float, s: float) -> list[EventUpdate]:
        ev = self._open
        if ev is None:
            if s < self._cfg.enter:
                return []
            self._count += 1
            ev = _Open(f"{self._camera}-{self._run}-{self._count:04d}", t, t, s, t, False, t)
        elif s >= self._cfg.exit:
            ev = replace(ev, last_above=t)
        elif t - ev.last_above > self._cfg.merge_gap_s:
            self._open = None
            return self._close(ev, ev.last_above)
        if s > ev.peak:
            ev = replace(ev, peak=s, peak_t=t)
        self._open, out = self._report(ev, t)
        return out

    def _report(self, ev: _Open, t: float) -> tuple[_Open, list[EventUpdate]]:
        if not ev.announced:
            if ev.last_above - ev.start < self._cfg.min_duration_s:
                return ev, []
            ev = replace(ev, announced=True, last_report=t)
            return ev, [self._update(ev, EventState.NEW, None)]
        if t - ev.last_report >= self._cfg.update_every_s:
            ev = replace(ev, last_report=t)
            return ev, [self._update(ev, EventState.UPDATE, None)]
        return ev, []

    def _close(self, ev: _Open, end: float) -> list[EventUpdate]:
        if end - ev.start < self._cfg.min_duration_s:
            self.discarded += 1
            log.info("event %s discarded: %.2fs < min_duration_s", ev.id, end - ev.start)
            return []
        # end is the last time above `exit`; an event that long was announced when it got there
        return [self._update(ev, EventState.END, end)]

    def _update(self, ev: _Open, state: EventState, end: float | None) -> EventUpdate:
        return EventUpdate(
            id=ev.id,
            state=state,
            start=ev.start,
            end=end,
            peak=ev.peak,
            peak_t=ev.peak_t,
            prior=prior_sentence(self._cfg.classes, ev.start, end),
        )
