"""Checks every field of untrusted input before anything proportional to a claimed size exists.

Each failure raises `RecordRejected(reason, camera, seq)`; reasons (the metric labels): "hello",
"device", "camera", "epoch", "seq", "time", "body", "dtype", "shape", "size", "indices", "values",
"score", "state", "text", "hot", "normality", "components", "pixel_change", "brightness",
"detail".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from vau.cloud.codec import DTYPE_FLOAT16, DTYPE_FLOAT32, DTYPE_INT8, EVENT_STATES
from vau.cloud.records import (
    AcceptedRecord,
    EventChange,
    Hello,
    RecordBody,
    RecordKind,
    RecordRejected,
    ScoreSummary,
    TokenFrame,
    WindowMarker,
    WireEvent,
    WireFrame,
    WireRecord,
)
from vau.cloud.settings import LimitSettings
from vau.common.tokens import EncodedTokens, TokenDType, decode_tokens, element_size
from vau.edge.types import I64

MAX_INT64 = 2**63 - 1  # SQLite integers are signed 64-bit
# A camera's seqs stay exact as JSON numbers and doubles, and dedup counters summed over epochs
# stay within int64; 2**53 records at 1,000/s last 285,000 years.
MAX_SEQ = 2**53 - 1
MAX_STREAM_T = 10 * 365 * 86_400.0  # seconds since a camera's stream started
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
# Characters that rewrite a terminal or a log line: C0/C1 controls (NUL, newline, ESC, DEL ...),
# bidi overrides and isolates, line and paragraph separators.
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_COMPONENT = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_EVENT_ID_RULE = "event_id must be 1-128 chars [A-Za-z0-9._:@-], starting alphanumeric"
MAX_COMPONENTS = 16  # named parts of a frame's score
MAX_DETAIL = 100.0  # a view's detail over its background's (1: as usual; a blank background
# is not compared at the edge, so a real ratio stays a few units at most)
_DTYPES: dict[int, TokenDType] = {DTYPE_FLOAT16: "fp16", DTYPE_INT8: "int8", DTYPE_FLOAT32: "fp32"}


def valid_id(value: str) -> bool:
    """Device and camera ids: 1-64 chars of [A-Za-z0-9._:@-], starting alphanumeric."""
    return _ID.fullmatch(value) is not None


def valid_event_id(value: str) -> bool:
    """Event ids: 1-128 chars of [A-Za-z0-9._:@-], starting alphanumeric (no control chars)."""
    return _EVENT_ID.fullmatch(value) is not None


def safe_text(value: str) -> bool:
    """Free text (priors, agent versions) holds no control, bidi or line-separator characters."""
    return _UNSAFE_TEXT.search(value) is None


@dataclass(frozen=True, slots=True)
class Validator:
    limits: LimitSettings
    retention_s: float  # capture times older than this are refused (their dedup state is gone)

    def hello(self, h: Hello) -> Hello:
        if not valid_id(h.device_id):
            raise RecordRejected("device", detail="device_id must be 1-64 chars [A-Za-z0-9._:@-]")
        if len(h.cameras) > self.limits.max_cameras:
            raise RecordRejected("camera", detail=f"more than {self.limits.max_cameras} cameras")
        cameras = tuple(h.cameras)
        bad = [c for c in cameras if not valid_id(c)]
        if bad or len(set(cameras)) != len(cameras):
            raise RecordRejected("camera", detail="camera ids must be unique, 1-64 safe chars")
        if h.epoch > MAX_INT64:
            raise RecordRejected("epoch", detail=f"epoch must be <= {MAX_INT64}")
        if len(h.agent_version) > 128 or not safe_text(h.agent_version):
            raise RecordRejected("text", detail="agent_version: <= 128 chars, no control chars")
        return replace(h, cameras=cameras)

    def record(self, w: WireRecord, device: str, hello: Hello, now: float) -> AcceptedRecord:
        """The record as an AcceptedRecord of `device`, or RecordRejected."""
        if w.camera not in hello.cameras:
            raise RecordRejected("camera", w.camera, w.seq, "camera not listed in Hello")
        if not 1 <= w.seq <= MAX_SEQ:
            raise RecordRejected("seq", w.camera, w.seq, f"seq must be in [1, {MAX_SEQ}]")
        if w.epoch != hello.epoch:
            raise RecordRejected(
                "epoch", w.camera, w.seq, f"epoch must equal Hello's {hello.epoch}"
            )
        self._times(w, now)
        kind, body = self._body(w)
        return AcceptedRecord(
            device, w.camera, w.epoch, w.seq, w.capture_time, w.t, kind, body, w.raw
        )

    def _times(self, w: WireRecord, now: float) -> None:
        if not math.isfinite(w.capture_time) or not math.isfinite(w.t):
            raise RecordRejected("time", w.camera, w.seq, "capture_time and t must be finite")
        if w.capture_time > now + self.limits.max_clock_skew_s:
            raise RecordRejected("time", w.camera, w.seq, "capture_time is in the future")
        if w.capture_time < now - self.retention_s:
            raise RecordRejected("time", w.camera, w.seq, "capture_time older than retention")
        if not 0.0 <= w.t <= MAX_STREAM_T:
            raise RecordRejected("time", w.camera, w.seq, "t must be in [0, 10 years]")

    def _body(self, w: WireRecord) -> tuple[RecordKind, RecordBody]:
        b = w.body
        if isinstance(b, WireFrame):
            return "frame", _FrameCheck(self.limits, w).run(b)
        if isinstance(b, WireEvent):
            return "event", self._event(w, b)
        if isinstance(b, WindowMarker):
            return "window", self._window(w, b)
        if isinstance(b, ScoreSummary):
            return "summary", self._summary(w, b)
        raise RecordRejected("body", w.camera, w.seq, "record has no known body")

    def _text(self, w: WireRecord, event_id: str, prior: str) -> None:
        if not valid_event_id(event_id):
            raise RecordRejected("text", w.camera, w.seq, _EVENT_ID_RULE)
        if len(prior) > self.limits.max_text_chars or not safe_text(prior):
            raise RecordRejected("text", w.camera, w.seq, "prior: capped, no control chars")

    def _event(self, w: WireRecord, e: WireEvent) -> EventChange:
        self._text(w, e.event_id, e.prior)
        state = EVENT_STATES.get(e.state)
        if state is None:
            raise RecordRejected("state", w.camera, w.seq, f"unknown event state {e.state}")
        if not _finite(e.start, e.peak_t) or (e.end is not None and not _finite(e.end)):
            raise RecordRejected("time", w.camera, w.seq, "event times must be finite")
        if (e.end is None) != (state != "end") or (e.end is not None and e.end < e.start):
            raise RecordRejected("time", w.camera, w.seq, "end is set, >= start, only at END")
        _unit(w, e.peak)
        return EventChange(e.event_id, state, e.start, e.end, e.peak, e.peak_t, e.prior)

    def _window(self, w: WireRecord, m: WindowMarker) -> WindowMarker:
        self._text(w, m.event_id, m.prior)
        if not _finite(m.start, m.end) or m.end < m.start:
            raise RecordRejected("time", w.camera, w.seq, "window start <= end, finite")
        if len(m.frame_seqs) > self.limits.max_tokens_per_frame:
            raise RecordRejected("body", w.camera, w.seq, "too many frame_seqs")
        return replace(m, frame_seqs=tuple(m.frame_seqs))

    def _summary(self, w: WireRecord, s: ScoreSummary) -> ScoreSummary:
        if not _finite(s.start, s.end) or s.end < s.start:
            raise RecordRejected("time", w.camera, w.seq, "summary start <= end, finite")
        _unit(w, s.min, s.mean, s.max)
        if not s.min <= s.mean <= s.max:
            raise RecordRejected("score", w.camera, w.seq, "min <= mean <= max")
        return s


@dataclass(frozen=True, slots=True)
class _FrameCheck:
    limits: LimitSettings
    w: WireRecord

    def fail(self, reason: str, detail: str) -> RecordRejected:
        return RecordRejected(reason, self.w.camera, self.w.seq, detail)

    def run(self, f: WireFrame) -> TokenFrame:
        dtype = _DTYPES.get(f.dtype)
        if dtype is None:
            raise self.fail("dtype", f"unknown dtype {f.dtype}; expected FLOAT16, INT8 or FLOAT32")
        k, c = self._shape(f)
        self._sizes(f, dtype, k, c)
        indices = self._indices(f, k)
        _unit(self.w, f.score, f.smoothed)
        if f.event_id and not valid_event_id(f.event_id):
            raise self.fail("text", "frame " + _EVENT_ID_RULE + " (or empty)")
        hot = self._hot(f)
        if f.normality is not None and not _finite_unit(f.normality):
            raise self.fail("normality", "normality must be finite, in [0, 1], or unset")
        components = self._components(f)
        if f.pixel_change is not None and not _finite_unit(f.pixel_change):
            raise self.fail("pixel_change", "pixel_change must be finite, in [0, 1], or unset")
        if f.brightness is not None and not _finite_unit(abs(f.brightness)):
            raise self.fail("brightness", "brightness must be finite, in [-1, 1], or unset")
        if f.detail is not None and not (math.isfinite(f.detail) and 0.0 <= f.detail <= MAX_DETAIL):
            raise self.fail("detail", f"detail must be finite, in [0, {MAX_DETAIL:g}], or unset")
        tokens = decode_tokens(EncodedTokens(dtype, (k, c), f.tokens, f.scales))
        if not np.isfinite(tokens).all():
            raise self.fail("values", "tokens must be finite")
        return TokenFrame(
            frame_seq=f.frame_seq,
            tokens=tokens,
            indices=indices,
            grid=f.grid,
            score=f.score,
            smoothed=f.smoothed,
            keyframe=f.keyframe,
            event_id=f.event_id,
            hot=hot,
            normality=f.normality,
            components=components,
            pixel_change=f.pixel_change,
            brightness=f.brightness,
            detail=f.detail,
        )

    def _shape(self, f: WireFrame) -> tuple[int, int]:
        lim = self.limits
        if len(f.shape) != 2:
            raise self.fail("shape", "shape must be [K, C]")
        k, c = int(f.shape[0]), int(f.shape[1])
        rows, cols = f.grid
        if not (1 <= k <= lim.max_tokens_per_frame and 1 <= c <= lim.max_channels):
            raise self.fail(
                "shape", f"K in [1, {lim.max_tokens_per_frame}], C <= {lim.max_channels}"
            )
        if not (1 <= rows <= lim.max_grid and 1 <= cols <= lim.max_grid) or k > rows * cols:
            raise self.fail("shape", f"grid rows, cols in [1, {lim.max_grid}], K <= rows * cols")
        return k, c

    def _sizes(self, f: WireFrame, dtype: TokenDType, k: int, c: int) -> None:
        if len(f.tokens) != k * c * element_size(dtype):
            raise self.fail("size", f"tokens must be K*C*{element_size(dtype)} bytes")
        if len(f.scales) != (4 * k if dtype == "int8" else 0):
            raise self.fail("size", "scales: 4*K bytes for INT8, empty otherwise")

    def _indices(self, f: WireFrame, k: int) -> I64:
        if len(f.indices) != k:
            raise self.fail("indices", "exactly K indices")
        idx = np.fromiter(f.indices, dtype=np.int64, count=k)  # (K,)
        rows, cols = f.grid
        if (k > 1 and not bool((np.diff(idx) > 0).all())) or int(idx[-1]) >= rows * cols:
            raise self.fail("indices", "indices strictly ascending, < rows * cols")
        return idx

    def _hot(self, f: WireFrame) -> I64:
        rows, cols = f.grid
        n = len(f.hot)
        if n > rows * cols:
            raise self.fail("hot", "at most rows * cols hot indices")
        hot = np.fromiter(f.hot, dtype=np.int64, count=n)  # (H,)
        if n and (int(hot.max()) >= rows * cols or np.unique(hot).size != n):
            raise self.fail("hot", "hot indices unique, < rows * cols")
        return hot

    def _components(self, f: WireFrame) -> tuple[tuple[str, float], ...]:
        if len(f.components) > MAX_COMPONENTS:
            raise self.fail("components", f"at most {MAX_COMPONENTS} components")
        items = tuple(sorted(f.components.items()))
        if not all(_COMPONENT.fullmatch(name) and _finite_unit(v) for name, v in items):
            raise self.fail("components", "names 1-32 chars [A-Za-z0-9_.-], scores in [0, 1]")
        return items


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _finite_unit(v: float) -> bool:
    return math.isfinite(v) and 0.0 <= v <= 1.0


def _unit(w: WireRecord, *values: float) -> None:
    if not all(_finite_unit(v) for v in values):
        raise RecordRejected("score", w.camera, w.seq, "scores must be finite, in [0, 1]")
