"""`vau-edge bench-bandwidth`: uplink bytes per frame and per camera-hour, against real H.264.

One run puts the footage once through the pipeline `vau-edge run` uses (encoder, head, the
camera's normality model when `--normality DIR` is given), then, for each keep ratio, selection
mode (`sets.select`: change, and with a model novelty and both) and token dtype, serializes
exactly the messages the uplink would send (the real codec) in two modes: continuous (every
frame's tokens) and event-driven (event changes, the ATS-chosen frames of each ended event,
window markers and score summaries). The same footage is encoded with libx264 (PyAV)
at its native frame rate and at the sampled rate, and every byte is counted. `hot_patches_kept`
says how many of the shipped frames' hot patches (where the anomaly is) the cloud receives.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vau.common.cli import emit_report
from vau.common.tokens import TokenDType
from vau.edge.analysers import Analysis, build_analyser
from vau.edge.pipeline import Pipeline
from vau.edge.scoring.base import Judgement
from vau.edge.scoring.factory import build_scorer
from vau.edge.scoring.tap import Tap
from vau.edge.sets import SetsSelector, prefer
from vau.edge.settings import EdgeSettings
from vau.edge.sources import open_source, sampled
from vau.edge.tetg import load_head
from vau.edge.types import F32, EffectiveTokens, EventUpdate, FrameScore, Tokens, Window
from vau.edge.uplink import codec

RATIOS = (0.1, 0.25, 0.5)
SELECTIONS = ("change", "novelty", "both")  # with a normality model (--normality DIR)
DTYPES: tuple[TokenDType, ...] = ("fp16", "int8")
HOUR = 3600.0


@dataclass
class Encoded:
    """What the pipeline produced for the footage: every frame's tokens and scores, the events and
    windows, and (with a normality model) each frame's anomaly map for re-selection."""

    tokens: list[Tokens] = field(default_factory=list)
    maps: list[F32 | None] = field(default_factory=list)
    scores: list[FrameScore] = field(default_factory=list)
    events: list[EventUpdate] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    duration_s: float = 0.0

    # -- the pipeline's sink ---------------------------------------------------------------------
    def frame(self, tokens: EffectiveTokens, score: FrameScore) -> None:
        self.scores.append(score)

    def event(self, update: EventUpdate) -> None:
        self.events.append(update)

    def window(self, window: Window) -> None:
        self.windows.append(window)

    def close(self) -> None:
        pass

    # -- what the sink does not see ----------------------------------------------------------------
    def keep(self, a: Analysis, judged: Judgement) -> None:
        e = a.effective
        self.tokens.append(Tokens(e.seq, e.t, e.wall_time, a.patches, a.cls, e.grid))
        self.maps.append(judged.anomaly_map)


def encode_footage(settings: EdgeSettings, source: Path) -> Encoded:
    """The footage through the same pipeline `vau-edge run` uses (scorer included)."""
    cfg = settings.model_copy(
        update={"source": settings.source.model_copy(update={"uri": str(source)})}
    )
    out = Encoded()
    analyser = build_analyser(cfg)
    scorer = Tap(build_scorer(cfg, load_head(cfg.head.path).config.embed_dim), out.keep)
    try:
        with open_source(cfg.source, cfg.camera_id) as src:
            Pipeline(cfg, analyser, [out], scorer=scorer).run(
                sampled(src, cfg.source.fps, cfg.camera_id)
            )
    finally:
        analyser.close()
    last = out.tokens[-1].t if out.tokens else 0.0
    out.duration_s = last + 1.0 / cfg.source.fps
    return out


def select(data: Encoded, ratio: float, how: str, settings: EdgeSettings) -> list[EffectiveTokens]:
    """Every frame's kept tokens at `ratio`, ranked by change (SETS) or by the anomaly map."""
    selector = SetsSelector(settings.sets.model_copy(update={"keep_ratio": ratio}))
    out = []
    for tokens, amap in zip(data.tokens, data.maps, strict=True):
        eff, change = selector.step(tokens)
        out.append(prefer(eff, tokens.patches, change, amap, how))
    return out


def hot_kept(data: Encoded, effective: list[EffectiveTokens]) -> float | None:
    """Share of the hot patches of the frames shipped in event windows that were kept."""
    shipped = {s for w in data.windows for s in w.seqs}
    hot = kept = 0
    for eff, score in zip(effective, data.scores, strict=True):
        if eff.seq in shipped and score.hot:
            hot += len(score.hot)
            kept += len(set(score.hot) & set(eff.indices.tolist()))
    return kept / hot if hot else None


def wire_size(body: bytes) -> int:
    """Bytes of the EdgeMessage that carries `body` (camera, epoch and seq at realistic sizes)."""
    msg = codec.record_message("cam-0", 2**62, 10**6, body)
    return len(codec.serialize(msg)) + 5  # + gRPC's length-prefixed message header


def mode_bytes(
    data: Encoded, effective: list[EffectiveTokens], dtype: TokenDType, summary_every_s: float
) -> dict[str, int]:
    frame_sizes = [
        wire_size(codec.frame_body(e, s, dtype))
        for e, s in zip(effective, data.scores, strict=True)
    ]
    events = sum(wire_size(codec.event_body(u, 0.0)) for u in data.events)
    by_seq = {e.seq: size for e, size in zip(effective, frame_sizes, strict=True)}
    windows = sum(wire_size(codec.window_body(w, 0.0)) + sum(by_seq[s] for s in w.seqs)
                  for w in data.windows)  # fmt: skip
    n_summaries = int(np.ceil(data.duration_s / summary_every_s))
    summary = wire_size(codec.summary_body(0.0, summary_every_s, [0.1, 0.2], 0.0))
    return {
        "continuous": sum(frame_sizes) + events,
        "event_driven": events + windows + n_summaries * summary,
        "frame_mean": int(np.mean(frame_sizes)),
        "per_event": (events + windows) // max(1, len(data.windows)),
        "summary": summary,
    }


def h264_bytes(source: Path, every: int = 1) -> tuple[int, float]:
    """libx264 (CRF 23, preset medium) bytes of every `every`-th frame, and the stream's seconds."""
    import av

    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames = [f.to_ndarray(format="bgr24") for f in src.decode(stream)][::every]
    h, w = frames[0].shape[:2]
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.framerate = Fraction(round(fps * 1000), every * 1000)
    enc.options = {"crf": "23", "preset": "medium"}
    total = 0
    for img in frames:
        for packet in enc.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
            total += packet.size
    total += sum(p.size for p in enc.encode(None))
    return total, len(frames) * every / fps


def run_bandwidth(settings: EdgeSettings, source: Path, events_per_hour: float) -> dict[str, Any]:
    data = encode_footage(settings, source)
    native_bytes, seconds = h264_bytes(source)
    step = max(1, round(_native_fps(source) / settings.source.fps))
    sampled_bytes, _ = h264_bytes(source, step)
    h264_hour = native_bytes * HOUR / seconds
    per_hour = HOUR / data.duration_s
    rows: list[dict[str, Any]] = []
    modes = SELECTIONS if any(m is not None for m in data.maps) else ("change",)
    for ratio, how in itertools.product(RATIOS, modes):
        effective = select(data, ratio, how, settings)
        for dtype in DTYPES:
            b = mode_bytes(data, effective, dtype, settings.uplink.summary_every_s)
            summaries = b["summary"] * HOUR / settings.uplink.summary_every_s
            # A clip without events cannot say what an event costs: no stated-rate figure then.
            stated = summaries + b["per_event"] * events_per_hour if data.windows else None
            clip = b["event_driven"] * per_hour
            rows.append({
                "keep_ratio": ratio, "select": how, "dtype": dtype,
                "tokens_per_frame": effective[-1].kept,
                "hot_patches_kept": hot_kept(data, effective),
                "bytes_per_frame_continuous": b["frame_mean"],
                "bytes_per_event": b["per_event"],
                "continuous_bytes_per_hour": b["continuous"] * per_hour,
                "event_driven_bytes_per_hour_this_clip": clip,
                "event_driven_bytes_per_hour_stated_rate": stated,
                "h264_over_event_driven_stated": h264_hour / stated if stated else None,
                "h264_over_event_driven_this_clip": h264_hour / clip,
                "continuous_over_event_driven_this_clip": b["continuous"] * per_hour / clip,
            })  # fmt: skip
    return {
        "source": str(source), "clip_seconds": seconds, "sampled_fps": settings.source.fps,
        "frames_encoded": len(data.tokens), "events_in_clip": len(data.windows),
        "events_per_hour_stated": events_per_hour,
        "summary_every_s": settings.uplink.summary_every_s,
        "h264": {"crf": 23, "preset": "medium",
                 "native_bytes_per_hour": h264_hour,
                 "sampled_fps_bytes_per_hour": sampled_bytes * HOUR / seconds},
        "rows": rows,
    }  # fmt: skip


def _native_fps(source: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(source))
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    cap.release()
    return fps


def add_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("bench-bandwidth", help="uplink bytes vs H.264 of the same footage (JSON)")
    add_common(p)
    p.add_argument(
        "--source",
        dest="footage",
        action="append",
        type=Path,
        metavar="FILE",
        help="footage to measure (repeatable; default: vtest.avi)",
    )
    p.add_argument("--fps", type=float, help="frames per second to process")
    p.add_argument("--events-per-hour", type=float, default=6.0, help="stated event rate")
    p.add_argument(
        "--normality", type=Path, metavar="DIR", help="a normality model: selection modes too"
    )
    p.add_argument("--json", type=Path, metavar="OUT", help="write the report here too")
    p.set_defaults(handler=cmd_bench_bandwidth)


def cmd_bench_bandwidth(args: argparse.Namespace) -> int:
    from vau.assets import asset_path
    from vau.edge.cli import settings_from

    settings = settings_from(args)
    sources: Iterable[Path] = args.footage or [asset_path("vtest.avi", settings.cache_dir)]
    report = {"runs": [run_bandwidth(settings, s, args.events_per_hour) for s in sources]}
    emit_report(report, args.json)
    return 0
