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
from dataclasses import dataclass, replace

import numpy as np

from vau.common.tokens import EncodedTokens, encode_tokens
from vau.edge import metrics
from vau.edge.settings import UplinkSettings
from vau.edge.types import F32, EffectiveTokens, EventUpdate, FrameScore, Window
from vau.edge.uplink import codec
from vau.edge.uplink.outbox import Outbox
from vau.edge.uplink.records import OutboxItem, Priority

log = logging.getLogger(__name__)


NO_TOKENS: F32 = np.empty((0, 0), np.float32)


@dataclass(frozen=True, slots=True)
class RingFrame:
    """A recent frame kept for a later event window, its tokens already in the wire's encoding
    (`uplink.token_dtype`: half the fp32 memory for fp16, a quarter for int8)."""

    meta: EffectiveTokens  # the frame, with its `tokens` array left out (they are `encoded`)
    score: FrameScore
    encoded: EncodedTokens


class UplinkSink:
    def __init__(
        self, cfg: UplinkSettings, camera: str, outbox: Outbox, wake: Callable[[], None]
    ) -> None:
        self._cfg = cfg
        self._camera = camera
        self._outbox = outbox
        self._wake = wake
        self._ring: deque[RingFrame] = deque(maxlen=cfg.ring_frames)
        self._scores: list[float] = []
        self._summary_start: float | None = None
        self._last_t = 0.0

    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None:
        self._last_t = tokens.t
        if self._cfg.mode == "continuous":
            body = codec.frame_body(tokens, score, self._cfg.token_dtype)
            self._put("frame", Priority.FRAME, tokens.wall_time, body)
        else:
            encoded = encode_tokens(tokens.tokens, self._cfg.token_dtype)
            self._ring.append(RingFrame(replace(tokens, tokens=NO_TOKENS), score, encoded))
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
        found = [f for f in self._ring if f.meta.seq in wanted]
        for f in found:
            dtype, event = self._cfg.token_dtype, window.event_id
            body = codec.frame_body(f.meta, f.score, dtype, event, f.encoded)
            self._put("frame", Priority.WINDOW, f.meta.wall_time, body)
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
