"""The per-stream loop: frames -> model stage (encoder, SETS, TETG) -> scorer -> events -> windows
-> sinks.

The model stage is an `analysers.Analyser`: the encoder with SETS and the head on the host, or one
fused graph that does all three. The scorer (`scoring`) turns its output into the frame's final
score: the head's, the camera's normality model's, or both fused; with `sets.select` = novelty or
both, SETS's kept patches are then chosen by the scorer's anomaly map. Stages are timed per frame
(decode, preprocess, encoder, sets, head, normality, events) into Prometheus histograms and into
`StageTimes`, which `vau-edge bench` and the status line read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from vau.edge import metrics
from vau.edge.analysers import Analyser, Analysis
from vau.edge.ats import WindowBuilder
from vau.edge.encoders.base import preprocess
from vau.edge.events import EventTracker
from vau.edge.scoring.base import FrameScorer, Judgement
from vau.edge.scoring.head import HeadScorer
from vau.edge.sets import prefer
from vau.edge.settings import EdgeSettings
from vau.edge.sinks import Sink
from vau.edge.timing import STAGES, StageTimes
from vau.edge.types import EffectiveTokens, EventState, EventUpdate, Frame, FrameScore

__all__ = ["STAGES", "Pipeline", "RunStats", "StageTimes"]


@dataclass
class RunStats:
    frames: int = 0
    events_new: int = 0
    events_ended: int = 0
    open_event: str | None = None
    last_score: float = 0.0
    started: float = field(default_factory=time.monotonic)
    times: StageTimes = field(default_factory=StageTimes)

    def fps(self) -> float:
        return self.frames / max(time.monotonic() - self.started, 1e-9)


class Pipeline:
    def __init__(
        self,
        settings: EdgeSettings,
        analyser: Analyser,
        sinks: Sequence[Sink],
        on_frame: Callable[[RunStats], None] | None = None,
        scorer: FrameScorer | None = None,
    ) -> None:
        self._cfg = settings
        self._camera = settings.camera_id
        self._analyser = analyser
        self._sinks = sinks
        self._on_frame = on_frame
        self._scorer: FrameScorer = scorer or HeadScorer()
        self._tracker = EventTracker(settings.events, settings.camera_id)
        self._windows = WindowBuilder(settings.ats)
        self.stats = RunStats()

    def run(self, frames: Iterable[Frame], stop: threading.Event | None = None) -> RunStats:
        stop = stop or threading.Event()
        last_t = 0.0
        for batch in self._batches(frames, stop):
            last_t = batch[-1].t
            self._process(batch)
        self._emit_events(self._tracker.flush(last_t))
        self._scorer.close()
        return self.stats

    def _batches(self, frames: Iterable[Frame], stop: threading.Event) -> Iterator[list[Frame]]:
        size = self._cfg.encoder.batch_size
        remaining = self._cfg.max_frames or None
        batch: list[Frame] = []
        it = iter(frames)
        while not stop.is_set():
            t0 = time.perf_counter()
            frame = next(it, None)
            self.stats.times.add("decode", time.perf_counter() - t0)
            if frame is None:
                break
            batch.append(frame)
            if remaining is not None:
                remaining -= 1
            if len(batch) == size or remaining == 0:
                yield batch
                batch = []
            if remaining == 0:
                return
        if batch:
            yield batch

    def _process(self, batch: list[Frame]) -> None:
        times = self.stats.times
        t0 = time.perf_counter()
        pixels = preprocess([f.image for f in batch], self._analyser.input_size)
        times.add("preprocess", time.perf_counter() - t0, len(batch))
        t1 = time.perf_counter()
        results = self._analyser.analyse(batch, pixels, times)
        metrics.ENCODER_SECONDS.labels(self._analyser.name).observe(time.perf_counter() - t1)
        for result in results:
            t2 = time.perf_counter()
            judged = self._scorer.judge(result)
            eff = self._select(result, judged)
            t3 = time.perf_counter()
            times.add("normality", t3 - t2)
            fs, updates = self._tracker.observe(eff.seq, eff.t, judged.score)
            fs = replace(
                fs, normality=judged.normality, hot=judged.hot, components=judged.components
            )
            self._scorer.settle(eff.t, self._tracker.is_open)
            self._windows.observe(fs)
            times.add("events", time.perf_counter() - t3)
            times.frames += 1
            self._emit_frame(eff, fs)
            self._emit_events(updates)

    def _select(self, result: Analysis, judged: Judgement) -> EffectiveTokens:
        """SETS's kept patches, re-ranked by the anomaly map when sets.select asks for it."""
        eff, sets = result.effective, self._cfg.sets
        if sets.mode != "topk":
            return eff
        return prefer(eff, result.patches, result.change, judged.anomaly_map, sets.select)

    def _emit_frame(self, eff: EffectiveTokens, fs: FrameScore) -> None:
        self.stats.frames += 1
        self.stats.last_score = fs.smoothed
        metrics.FRAMES.labels(self._camera).inc()
        metrics.TOKENS_KEPT.labels(self._camera).inc(eff.kept)
        metrics.ANOMALY_SCORE.labels(self._camera).set(fs.smoothed)
        for sink in self._sinks:
            sink.frame(eff, fs)
        if self._on_frame is not None:
            self._on_frame(self.stats)

    def _emit_events(self, updates: list[EventUpdate]) -> None:
        for update in updates:
            metrics.EVENTS.labels(self._camera, update.state.value).inc()
            self._track(update)
            window = self._windows.on_event(update)
            for sink in self._sinks:
                sink.event(update)
                if window is not None:
                    sink.window(window)

    def _track(self, update: EventUpdate) -> None:
        if update.state is EventState.NEW:
            self.stats.events_new += 1
            self.stats.open_event = update.id
        elif update.state is EventState.END:
            self.stats.events_ended += 1
            self.stats.open_event = None
