"""One camera's stream: everything the edge keeps per camera, and what it does with a frame.

The model stage is shared and stateless; a `CameraStream` owns the rest: SETS's memory of the
previous frame, the frame scorer (the camera's own normality model), the event tracker, the ATS
window builder, the camera's sinks and its counters. Frames of one camera reach it in order.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from vau.edge import metrics
from vau.edge.analysers import Analysis
from vau.edge.ats import WindowBuilder
from vau.edge.events import EventTracker
from vau.edge.lookahead import Lookahead
from vau.edge.scoring.base import FrameScorer, Judgement
from vau.edge.scoring.head import HeadScorer
from vau.edge.sets import StreamMemory, prefer
from vau.edge.settings import EdgeSettings
from vau.edge.sinks import Sink
from vau.edge.timing import StageTimes
from vau.edge.types import EffectiveTokens, EventState, EventUpdate, FrameScore

LATENCIES_KEPT = 4096  # recent per-frame latencies kept for reports (bounded on a long run)


@dataclass
class RunStats:
    frames: int = 0
    events_new: int = 0
    events_ended: int = 0
    open_event: str | None = None
    last_score: float = 0.0
    started: float = field(default_factory=time.monotonic)
    times: StageTimes = field(default_factory=StageTimes)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))

    def fps(self) -> float:
        return self.frames / max(time.monotonic() - self.started, 1e-9)


class _Scored(NamedTuple):
    """A judged frame waiting for its look-ahead."""

    eff: EffectiveTokens
    judged: Judgement
    result: Analysis


class CameraStream:
    def __init__(
        self, settings: EdgeSettings, sinks: Sequence[Sink], scorer: FrameScorer | None = None
    ) -> None:
        self.id = settings.camera_id
        self.settings = settings
        self.memory = StreamMemory()
        self.sinks = sinks
        self.scorer: FrameScorer = scorer or HeadScorer()
        self.stats = RunStats()
        self.remaining: int | None = settings.max_frames or None  # frames still wanted
        self.last_t = 0.0
        self._tracker = EventTracker(settings.events, settings.camera_id)
        self._windows = WindowBuilder(settings.ats)
        self._ahead: Lookahead[_Scored] = Lookahead(
            settings.events.lookahead, settings.sets.max_gap_s
        )

    def observe(self, result: Analysis, times: StageTimes) -> list[EventUpdate]:
        """Score one frame of this camera; track events and hand the records to the sinks for the
        frames whose score is final now (`events.lookahead`: the frame `lookahead` frames back)."""
        t0 = time.perf_counter()
        judged = self.scorer.judge(result)
        eff = self._select(result, judged)
        t1 = time.perf_counter()
        times.add("normality", t1 - t0)
        ready = self._ahead.push(_Scored(eff, judged, result), eff.t, judged.score)
        updates = [u for scored, score in ready for u in self._finalise(scored, score)]
        times.add("events", time.perf_counter() - t1)
        times.frames += 1
        if self.remaining is not None:
            self.remaining -= 1
        return updates

    def finish(self) -> list[EventUpdate]:
        """End of stream: the frames still waiting for their look-ahead, then close the open
        event and release the scorer."""
        updates = [
            u for scored, score in self._ahead.flush() for u in self._finalise(scored, score)
        ]
        end = self._tracker.flush(self.last_t)
        self.emit_events(end)
        self.scorer.close()
        return updates + end

    def _finalise(self, scored: _Scored, score: float) -> list[EventUpdate]:
        """One frame with its final score: events, windows, records."""
        eff, judged, result = scored
        fs, updates = self._tracker.observe(eff.seq, eff.t, score)
        fs = replace(
            fs,
            normality=judged.normality,
            hot=judged.hot,
            components=judged.components,
            pixel_change=result.pixel_change,
            brightness=result.brightness,
            detail=result.detail,
        )
        self.scorer.settle(eff.t, self._tracker.is_open)
        self._windows.observe(fs)
        self.last_t = eff.t
        self._emit_frame(eff, fs)
        self.emit_events(updates)
        return updates

    def _select(self, result: Analysis, judged: Judgement) -> EffectiveTokens:
        """SETS's kept patches, re-ranked by the anomaly map when sets.select asks for it."""
        eff, sets = result.effective, self.settings.sets
        if sets.mode != "topk":
            return eff
        return prefer(eff, result.patches, result.change, judged.anomaly_map, sets.select)

    def _emit_frame(self, eff: EffectiveTokens, fs: FrameScore) -> None:
        self.stats.frames += 1
        self.stats.last_score = fs.smoothed
        metrics.FRAMES.labels(self.id).inc()
        metrics.TOKENS_KEPT.labels(self.id).inc(eff.kept)
        metrics.ANOMALY_SCORE.labels(self.id).set(fs.smoothed)
        for sink in self.sinks:
            sink.frame(eff, fs)

    def emit_events(self, updates: list[EventUpdate]) -> None:
        for update in updates:
            metrics.EVENTS.labels(self.id, update.state.value).inc()
            track(self.stats, update)
            window = self._windows.on_event(update)
            for sink in self.sinks:
                sink.event(update)
                if window is not None:
                    sink.window(window)


def track(stats: RunStats, update: EventUpdate) -> None:
    if update.state is EventState.NEW:
        stats.events_new += 1
        stats.open_event = update.id
    elif update.state is EventState.END:
        stats.events_ended += 1
        stats.open_event = None
