"""The frame loop: the frames of one or many cameras -> one shared model stage (encoder, SETS,
TETG) -> each camera's scorer -> events -> windows -> sinks.

The model stage is an `analysers.Analyser`: the encoder with SETS and the head on the host, or one
fused graph that does all three. It keeps no per-camera state; each camera's state is its
`stream.CameraStream`. Frames are read per camera on their own threads and taken round robin
(`schedule.fair_batches`), so frames of several cameras share an encoder call when
`encoder.batch_size` allows. The scorer (`scoring`) turns a frame's analysis into its final score:
the head's, the camera's normality model's, or both fused; with `sets.select` = novelty or both,
SETS's kept patches are then chosen by the scorer's anomaly map. Stages are timed per frame
(decode, preprocess, encoder, sets, head, normality, events) into Prometheus histograms and into
`StageTimes`, which `vau-edge bench` and the status line read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from vau.edge import metrics
from vau.edge.analysers import Analyser
from vau.edge.encoders.base import preprocess
from vau.edge.schedule import Arrival, Feed, fair_batches
from vau.edge.scoring.base import FrameScorer
from vau.edge.settings import EdgeSettings
from vau.edge.sinks import Sink
from vau.edge.sources import SourceCancelledError, SourceError
from vau.edge.stream import CameraStream, RunStats, track
from vau.edge.timing import STAGES, StageTimes
from vau.edge.types import Frame

__all__ = ["STAGES", "CameraStream", "Pipeline", "RunStats", "StageTimes"]

log = logging.getLogger(__name__)


class Pipeline:
    """One model stage and the cameras it serves.

    `Pipeline(settings, analyser, sinks, scorer=...)` serves the one camera `settings` describe;
    `cameras=[...]` serves several (each `CameraStream` with its own settings, sinks and scorer).
    `stats` sums every camera; each camera's own are `cameras[i].stats`.
    """

    def __init__(
        self,
        settings: EdgeSettings,
        analyser: Analyser,
        sinks: Sequence[Sink] = (),
        on_frame: Callable[[RunStats], None] | None = None,
        scorer: FrameScorer | None = None,
        cameras: Sequence[CameraStream] | None = None,
    ) -> None:
        self._cfg = settings
        self._analyser = analyser
        self._on_frame = on_frame
        self.cameras = list(cameras) if cameras else [CameraStream(settings, sinks, scorer)]
        self.stats = RunStats()

    def run(self, frames: Iterable[Frame], stop: threading.Event | None = None) -> RunStats:
        """The one camera's frames (the first camera's, when there are several)."""
        return self.run_all([frames], stop)

    def run_all(
        self, streams: Sequence[Iterable[Frame]], stop: threading.Event | None = None
    ) -> RunStats:
        """Each camera's frames, in the order of `cameras`, until every stream ends, each camera
        has its `max_frames`, or `stop` is set. A camera whose source fails is logged and ended;
        the others go on. The run raises that error when no camera ended cleanly."""
        stop = stop or threading.Event()
        ready = threading.Event()
        feeds = [
            Feed(i, cam.id, frames, ready)
            for i, (cam, frames) in enumerate(zip(self.cameras, streams, strict=True))
        ]
        size = self._cfg.encoder.batch_size
        try:
            for batch in fair_batches(feeds, ready, size, size, stop):
                self._process(batch, feeds)
        finally:
            for feed in feeds:
                feed.stop()
                self.stats.times.seconds["decode"] += feed.decode_s
            for cam in self.cameras:
                for update in cam.finish():
                    track(self.stats, update)
        self._raise_if_all_failed(feeds)
        return self.stats

    def _process(self, batch: list[Arrival], feeds: Sequence[Feed]) -> None:
        batch = [a for a in batch if self.cameras[a.camera].remaining != 0]
        if not batch:
            return
        times = self.stats.times
        t0 = time.perf_counter()
        pixels = preprocess([a.frame.image for a in batch], self._analyser.input_size)
        times.add("preprocess", time.perf_counter() - t0, len(batch))
        cams = [self.cameras[a.camera] for a in batch]
        t1 = time.perf_counter()
        results = self._analyser.analyse(
            [a.frame for a in batch], pixels, times, [c.memory for c in cams]
        )
        metrics.ENCODER_SECONDS.labels(self._analyser.name).observe(time.perf_counter() - t1)
        for arrival, cam, result in zip(batch, cams, results, strict=True):
            for update in cam.observe(result, times):
                track(self.stats, update)
            latency = time.monotonic() - arrival.arrived
            cam.stats.latencies.append(latency)
            metrics.FRAME_LATENCY.labels(cam.id).observe(latency)
            self.stats.frames += 1
            self.stats.last_score = cam.stats.last_score
            if cam.remaining == 0:
                feeds[arrival.camera].stop()
            if self._on_frame is not None:
                self._on_frame(self.stats)

    def _raise_if_all_failed(self, feeds: Sequence[Feed]) -> None:
        failed = [f for f in feeds if f.error is not None]
        if len(feeds) == 1 and failed:
            raise failed[0].error  # type: ignore[misc]
        # A camera stopped while it was connecting did not fail.
        failed = [f for f in failed if not isinstance(f.error, SourceCancelledError)]
        for feed in failed:
            metrics.CAMERA_FAILURES.labels(feed.name).inc()
            log.error("camera %s stopped: %s", feed.name, feed.error)
        if failed and len(failed) == len(feeds):
            raise SourceError(f"every camera failed; the first: {failed[0].error}")
