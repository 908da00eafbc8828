"""The explanation chain run offline on one clip: the real edge pipeline, the real wire, the real
explainer — everything `vau-edge run --cloud` and `vau-cloud serve` do to an event, minus the
network, the outbox and the stores (each has its own tests).

1. The edge: `Pipeline` (source, sampling, model stage, scorer with the camera's normality model,
   event tracker, ATS windows) with a sink that keeps recent frames like the uplink's ring.
2. The wire: each window frame is encoded by the edge's codec (`frame_body`, `record_message`),
   decoded by the cloud's (`decode_edge`) and accepted by the cloud's `Validator` — the same bytes
   and checks a live uplink goes through.
3. The cloud: `EventEvidence` from the event's end and its window's frames (`frame_evidence`), the
   camera's earlier events on this clip for recurrence, then `Explainer.explain`.

The edge is imported here, inside the cloud: only the evaluation command imports this module.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vau.cloud.codec import decode_edge
from vau.cloud.explain.evidence import EventEvidence, frame_evidence
from vau.cloud.explain.explainer import Explainer, ExplainResult
from vau.cloud.explain.facts import Earlier
from vau.cloud.records import AcceptedRecord, Hello, TokenFrame, WireRecord
from vau.cloud.settings import LimitSettings
from vau.cloud.validate import Validator
from vau.edge.analysers import Analyser
from vau.edge.evaluate import run_file
from vau.edge.scoring.factory import build_scorer
from vau.edge.settings import EdgeSettings
from vau.edge.types import EffectiveTokens, EventState, EventUpdate, FrameScore, Window
from vau.edge.uplink import codec

EPOCH = 1
RING = 256  # frames kept for windows (the uplink's ring holds more; an 8 s clip needs 16)


@dataclass
class EdgeCapture:
    """A pipeline sink keeping what the uplink would ship: window frames, ended events, scores."""

    ring: deque[tuple[EffectiveTokens, FrameScore]] = field(
        default_factory=lambda: deque(maxlen=RING)
    )  # deque() to keep every frame (captions over a whole video)
    ends: dict[str, EventUpdate] = field(default_factory=dict)
    windows: list[tuple[Window, list[tuple[EffectiveTokens, FrameScore]]]] = field(
        default_factory=list
    )
    scores: list[tuple[float, float]] = field(default_factory=list)  # (t, smoothed) every frame

    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None:
        self.ring.append((tokens, score))
        self.scores.append((tokens.t, score.smoothed))

    def event(self, update: EventUpdate) -> None:
        if update.state is EventState.END:
            self.ends[update.id] = update

    def window(self, window: Window) -> None:
        wanted = set(window.seqs)
        self.windows.append((window, [f for f in self.ring if f[0].seq in wanted]))

    def close(self) -> None:
        pass


def run_edge(
    clip: Path,
    settings: EdgeSettings,
    analyser: Analyser,
    dim: int,
    capture: EdgeCapture | None = None,
) -> EdgeCapture:
    cfg = settings.model_copy(
        update={"source": settings.source.model_copy(update={"uri": str(clip)})}
    )
    capture = capture or EdgeCapture()
    run_file(cfg, analyser, [capture], build_scorer(cfg, dim))
    return capture


class Wire:
    """The edge's encoding and the cloud's decoding and validation of one camera's records."""

    def __init__(self, camera: str, settings: EdgeSettings) -> None:
        self.camera, self.dtype = camera, settings.uplink.token_dtype
        self.hello = Hello("eval", (camera,), EPOCH, "eval")
        self.validator = Validator(LimitSettings(), retention_s=365 * 86_400.0)
        self.seq = 0

    def frame(self, tokens: EffectiveTokens, score: FrameScore, event_id: str) -> AcceptedRecord:
        self.seq += 1
        body = codec.frame_body(tokens, score, self.dtype, event_id)
        data = codec.serialize(codec.record_message(self.camera, EPOCH, self.seq, body))
        wire = decode_edge(data)
        if not isinstance(wire, WireRecord):
            raise ValueError(f"the edge's frame did not decode as a record: {wire}")
        return self.validator.record(wire, "eval", self.hello, time.time())


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """One ended event of a clip as the cloud receives it: evidence and window tokens."""

    event: EventUpdate
    evidence: EventEvidence
    tokens: tuple[np.ndarray, ...]  # each window frame's effective tokens (K, C)


def cloud_events(capture: EdgeCapture, camera: str, settings: EdgeSettings) -> list[CloudEvent]:
    """Every ended event with a window, oldest first, through the wire."""
    wire, out = Wire(camera, settings), []
    for window, frames in capture.windows:
        end = capture.ends.get(window.event_id)
        if end is not None:
            out.append(_through(wire, capture, end, frames))
    return out


def span_event(
    capture: EdgeCapture,
    camera: str,
    settings: EdgeSettings,
    span: tuple[float | None, float | None],
    most: int,
) -> CloudEvent | None:
    """A captioned span of a video as if it were an event: at most `most` of its frames, evenly
    spread, through the wire (None when the span holds no frame). The span's frames stand in for
    the window ATS would choose: a caption's span is not an event the edge raised."""
    a = span[0] if span[0] is not None else -np.inf
    b = span[1] if span[1] is not None else np.inf
    inside = [f for f in capture.ring if a <= f[0].t <= b]
    if not inside:
        return None
    keep = np.unique(np.linspace(0, len(inside) - 1, min(most, len(inside))).round().astype(int))
    chosen = [inside[i] for i in keep]
    peak = max(chosen, key=lambda f: f[1].smoothed)
    start, end = chosen[0][0].t, chosen[-1][0].t
    update = EventUpdate(
        f"span-{start:.1f}", EventState.END, start, end, peak[1].smoothed, peak[0].t, ""
    )
    return _through(Wire(camera, settings), capture, update, chosen)


def _through(
    wire: Wire,
    capture: EdgeCapture,
    end: EventUpdate,
    frames: Sequence[tuple[EffectiveTokens, FrameScore]],
) -> CloudEvent:
    """An ended event's frames through the wire, and the evidence the cloud builds from them."""
    accepted = [wire.frame(tok, score, end.id) for tok, score in frames]
    token_frames = [(a.t, a.body) for a in accepted if isinstance(a.body, TokenFrame)]
    ev = EventEvidence(
        camera=wire.camera,
        event_id=end.id,
        start=end.start,
        end=end.end,
        peak=end.peak,
        peak_t=end.peak_t,
        prior=end.prior,
        frames=tuple(frame_evidence(t, f) for t, f in token_frames),
        baseline=_baseline(capture.scores, end.start),
    )
    return CloudEvent(end, ev, tuple(f.tokens for _, f in token_frames))


def explain_all(events: Sequence[CloudEvent], explainer: Explainer) -> list[ExplainResult]:
    """Each event explained in order; the earlier ones feed the recurrence fact."""
    earlier: list[Earlier] = []
    out = []
    for e in events:
        result = explainer.explain(e.evidence, e.tokens, earlier=list(earlier))
        ex = result.explanation
        earlier.insert(0, Earlier(e.event.id, ex.start, ex.where))
        out.append(result)
    return out


def _baseline(scores: Sequence[tuple[float, float]], start: float) -> float | None:
    before = [s for t, s in scores if t < start]
    return float(np.mean(before)) if before else None
