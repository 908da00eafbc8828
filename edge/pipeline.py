"""The per-stream loop: frames -> encoder -> SETS + TETG -> events -> windows -> sinks.

Stages are timed per frame (decode, preprocess, encoder, sets, head, events) into Prometheus
histograms and into `StageTimes`, which `vau-edge bench` and the status line read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from vau.edge import metrics
from vau.edge.ats import WindowBuilder
from vau.edge.encoders.base import Encoder, preprocess, to_tokens
from vau.edge.events import EventTracker
from vau.edge.sets import SetsSelector
from vau.edge.settings import EdgeSettings
from vau.edge.sinks import Sink
from vau.edge.tetg import AnomalyHead
from vau.edge.types import EffectiveTokens, EventState, EventUpdate, Frame, FrameScore, Tokens

STAGES = ("decode", "preprocess", "encoder", "sets", "head", "events")


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over `frames` frames."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frames: int = 0

    def add(self, stage: str, seconds: float, frames: int = 1) -> None:
        self.seconds[stage] += seconds
        per_frame = seconds / max(frames, 1)
        for _ in range(frames):
            metrics.STAGE_SECONDS.labels(stage).observe(per_frame)

    def ms_per_frame(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {k: 1000.0 * v / n for k, v in self.seconds.items()}


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
        encoder: Encoder,
        head: AnomalyHead,
        sinks: Sequence[Sink],
        on_frame: Callable[[RunStats], None] | None = None,
    ) -> None:
        head.check_encoder(encoder.embed_dim, encoder.input_size)
        self._cfg = settings
        self._camera = settings.camera_id
        self._encoder = encoder
        self._head = head
        self._sinks = sinks
        self._on_frame = on_frame
        self._sets = SetsSelector(settings.sets)
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
        times, n = self.stats.times, len(batch)
        t0 = time.perf_counter()
        pixels = preprocess([f.image for f in batch], self._encoder.input_size)
        t1 = time.perf_counter()
        patches, cls = self._encoder.encode(pixels)
        t2 = time.perf_counter()
        scores = self._head.score(cls)
        t3 = time.perf_counter()
        times.add("preprocess", t1 - t0, n)
        times.add("encoder", t2 - t1, n)
        times.add("head", t3 - t2, n)
        metrics.ENCODER_SECONDS.labels(self._encoder.name).observe(t2 - t1)
        for tokens, score in zip(
            to_tokens(batch, patches, cls, pixels.shape[-1]), scores, strict=True
        ):
            self._frame(tokens, float(score))

    def _frame(self, tokens: Tokens, score: float) -> None:
        times = self.stats.times
        t0 = time.perf_counter()
        eff = self._sets.select(tokens)
        t1 = time.perf_counter()
        fs, updates = self._tracker.observe(tokens.seq, tokens.t, score)
        self._windows.observe(fs)
        t2 = time.perf_counter()
        times.add("sets", t1 - t0)
        times.add("events", t2 - t1)
        times.frames += 1
        self._emit_frame(eff, fs)
        self._emit_events(updates)

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
