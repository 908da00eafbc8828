"""`vau-edge bench --cameras 1,2,4`: several cameras through one model stage, in one run.

For each camera count C, on the same decoded frames (each camera starts at another offset):
- throughput: C cameras whose frames are always ready (like files), once one frame per encoder
  call and once with frames of the C cameras batched into one call (`encoder.batch_size = C`);
  aggregate frames/s;
- live: C cameras each delivering frames at `source.fps`, like cameras on a network; per-camera
  latency (frame out of its source -> scores at the sinks) p50 / p99 and whether the process keeps
  up (p99 below one frame period);
- memory: what one more camera costs: the bytes a camera's state holds after a short run (SETS's
  previous frame, the scorer and its normality model, events, windows), counted object by object
  (the runtime's own buffers are allocated outside Python's tracing), plus the uplink ring a
  camera keeps for its event windows (`uplink.ring_frames` frames of kept tokens, wire-encoded).
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import types
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from vau.common.tokens import element_size
from vau.edge.analysers import Analyser
from vau.edge.pipeline import CameraStream, Pipeline
from vau.edge.scoring.factory import build_scorer
from vau.edge.settings import EdgeSettings
from vau.edge.tetg import load_head
from vau.edge.types import Frame

LIVE_FRAMES = 20  # frames per camera in the paced (live) pass


def camera_settings(settings: EdgeSettings, count: int, batch: int) -> list[EdgeSettings]:
    encoder = settings.encoder.model_copy(update={"batch_size": batch})
    return [
        settings.model_copy(update={"camera_id": f"bench-{i}", "encoder": encoder})
        for i in range(count)
    ]


def offset(frames: Sequence[Frame], i: int, count: int) -> list[Frame]:
    """The frames starting at camera i's offset, wrapping round, renumbered from 0 in time."""
    k = len(frames) * i // max(count, 1)
    rolled = list(frames[k:]) + list(frames[:k])
    step = frames[1].t - frames[0].t if len(frames) > 1 else 0.5
    return [Frame(n, n * step, f.wall_time, f.image) for n, f in enumerate(rolled)]


def paced(frames: Sequence[Frame], fps: float) -> Iterator[Frame]:
    start = time.monotonic()
    for n, frame in enumerate(frames):
        time.sleep(max(0.0, start + n / fps - time.monotonic()))
        yield frame


def run_cameras(
    settings: EdgeSettings,
    analyser: Analyser,
    streams: Sequence[Sequence[Frame] | Iterator[Frame]],
    batch: int,
) -> Pipeline:
    cams = camera_settings(settings, len(streams), batch)
    dim = load_head(settings.head.path).config.embed_dim
    cameras = [CameraStream(c, [], build_scorer(c, dim)) for c in cams]
    pipeline = Pipeline(cams[0], analyser, cameras=cameras)
    pipeline.run_all([iter(s) for s in streams], threading.Event())
    return pipeline


def throughput(
    settings: EdgeSettings, analyser: Analyser, frames: Sequence[Frame], count: int, batch: int
) -> float:
    streams = [offset(frames, i, count) for i in range(count)]
    t0 = time.perf_counter()
    pipeline = run_cameras(settings, analyser, streams, batch)
    return pipeline.stats.frames / (time.perf_counter() - t0)


def live(
    settings: EdgeSettings, analyser: Analyser, frames: Sequence[Frame], count: int
) -> dict[str, Any]:
    fps = settings.source.fps
    streams = [paced(offset(frames, i, count), fps) for i in range(count)]
    pipeline = run_cameras(settings, analyser, streams, count)
    per_camera = {}
    for cam in pipeline.cameras:
        lat = np.array(cam.stats.latencies) * 1000.0
        per_camera[cam.id] = {
            "frames": cam.stats.frames,
            "latency_p50_ms": float(np.percentile(lat, 50)),
            "latency_p99_ms": float(np.percentile(lat, 99)),
        }
    worst = max(v["latency_p99_ms"] for v in per_camera.values())
    return {
        "fps_per_camera": fps,
        "keeps_up": worst < 1000.0 / fps,
        "worst_latency_p99_ms": worst,
        "cameras": per_camera,
    }


def held_bytes(root: object) -> int:
    """Bytes reachable from `root`: numpy buffers (a view's base once) and Python objects, not
    counting classes, modules and functions (shared by every camera)."""
    seen: set[int] = set()
    total, todo = 0, [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            owner = obj if obj.base is None else obj.base  # a view counts its buffer once
            if owner is obj or id(owner) not in seen:
                seen.add(id(owner))
                total += getattr(owner, "nbytes", obj.nbytes)
            continue
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return total


def state_bytes(
    settings: EdgeSettings, analyser: Analyser, frames: Sequence[Frame], count: int
) -> float:
    """Mean bytes one camera's state holds after a short run (SETS's previous frame, the scorer
    and its normality model, events, windows, counters)."""
    streams = [offset(frames, i, count) for i in range(count)]
    pipeline = run_cameras(settings, analyser, streams, 1)
    return sum(held_bytes(cam) for cam in pipeline.cameras) / count


def ring_bytes(settings: EdgeSettings) -> int:
    """One camera's uplink ring at steady state: ring_frames frames of kept tokens in the wire's
    encoding (uplink.token_dtype), their indices and distances."""
    n = (settings.encoder.input_size // 14) ** 2
    kept = max(1, round(n * settings.sets.keep_ratio))
    dim = load_head(settings.head.path).config.embed_dim
    dtype = settings.uplink.token_dtype
    scales = 4 if dtype == "int8" else 0
    per_frame = kept * (dim * element_size(dtype) + scales + 8 + 4)
    return settings.uplink.ring_frames * per_frame


def bench_cameras(
    settings: EdgeSettings, analyser: Analyser, frames: Sequence[Frame], counts: Sequence[int]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count in counts:
        one = throughput(settings, analyser, frames, count, 1)
        row: dict[str, Any] = {"aggregate_fps_batch_1": one}
        if count > 1:
            batched = throughput(settings, analyser, frames, count, count)
            row |= {"aggregate_fps_batched": batched, "batched_vs_batch_1": batched / one}
        row["live"] = live(settings, analyser, frames[:LIVE_FRAMES], count)
        out[str(count)] = row
    short = frames[: max(4, min(8, len(frames)))]
    out["state_mb_per_camera"] = state_bytes(settings, analyser, short, 2) / 2**20
    out["uplink_ring_mb_per_camera"] = ring_bytes(settings) / 2**20
    return out
