"""The pipeline's sink for the cloud: turns frames, events and windows into outbox records.

`events` mode (default) ships what an explanation needs and little else: every event change at
once (priority EVENT), the ATS-chosen frames of each ended event with its window marker (WINDOW),
and a scores-only summary of normal time every `summary_every_s` (SUMMARY). `continuous` mode also
ships every frame's tokens (FRAME, evicted first when the outbox is full).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from vau.edge import metrics
from vau.edge.settings import UplinkSettings
from vau.edge.types import EffectiveTokens, EventUpdate, FrameScore, Window
from vau.edge.uplink import codec
from vau.edge.uplink.outbox import Outbox
from vau.edge.uplink.records import OutboxItem, Priority

log = logging.getLogger(__name__)


class UplinkSink:
    def __init__(
        self, cfg: UplinkSettings, camera: str, outbox: Outbox, wake: Callable[[], None]
    ) -> None:
        self._cfg = cfg
        self._camera = camera
        self._outbox = outbox
        self._wake = wake
        self._ring: deque[tuple[EffectiveTokens, FrameScore]] = deque(maxlen=cfg.ring_frames)
        self._scores: list[float] = []
        self._summary_start: float | None = None
        self._last_t = 0.0

    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None:
        self._last_t = tokens.t
        if self._cfg.mode == "continuous":
            body = codec.frame_body(tokens, score, self._cfg.token_dtype)
            self._put("frame", Priority.FRAME, tokens.wall_time, body)
        else:
            self._ring.append((tokens, score))
        self._summarise(tokens.t, score.smoothed)

    def event(self, update: EventUpdate) -> None:
        self._put("event", Priority.EVENT, time.time(), codec.event_body(update, time.time()))

    def window(self, window: Window) -> None:
        if self._cfg.mode == "events":
            self._ship_window_frames(window)
        self._put("window", Priority.WINDOW, time.time(), codec.window_body(window, time.time()))

    def close(self) -> None:
        self._flush_summary(self._last_t)

    def _ship_window_frames(self, window: Window) -> None:
        wanted = set(window.seqs)
        found = [(t, s) for t, s in self._ring if t.seq in wanted]
        for tokens, score in found:
            body = codec.frame_body(tokens, score, self._cfg.token_dtype, window.event_id)
            self._put("frame", Priority.WINDOW, tokens.wall_time, body)
        missing = len(wanted) - len(found)
        if missing:
            metrics.WINDOW_FRAMES_MISSING.labels(self._camera).inc(missing)
            log.warning("window %s: %d chosen frames already left the ring (uplink.ring_frames)",
                        window.event_id, missing)  # fmt: skip

    def _summarise(self, t: float, score: float) -> None:
        if self._summary_start is None:
            self._summary_start = t
        self._scores.append(score)
        if t - self._summary_start >= self._cfg.summary_every_s:
            self._flush_summary(t)

    def _flush_summary(self, end: float) -> None:
        if self._summary_start is None or not self._scores:
            return
        body = codec.summary_body(self._summary_start, end, self._scores, time.time())
        self._put("summary", Priority.SUMMARY, time.time(), body)
        self._scores, self._summary_start = [], None

    def _put(self, kind: str, priority: Priority, capture_time: float, body: bytes) -> None:
        self._outbox.put(OutboxItem(self._camera, kind, priority, capture_time, body))
        self._wake()
