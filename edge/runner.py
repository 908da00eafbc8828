"""Assemble and run the edge agent from settings: source, model stage, pipeline, sinks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vau.edge import metrics
from vau.edge.analysers import build_analyser
from vau.edge.console import StatusLine
from vau.edge.pipeline import Pipeline
from vau.edge.scoring.factory import build_scorer
from vau.edge.settings import EdgeSettings
from vau.edge.sinks import JsonlFile, JsonlSink, Sink
from vau.edge.sources import SourceCancelledError, open_source, sampled
from vau.edge.stream import CameraStream
from vau.edge.tetg import load_head
from vau.edge.types import Frame

if TYPE_CHECKING:
    from vau.edge.uplink.link import CloudLink

log = logging.getLogger(__name__)


def sample_footage(settings: EdgeSettings) -> Path | None:
    """The bundled clip that source.uri = 'sample' means (None when it is not asked for)."""
    if settings.source.uri != "sample":
        return None
    from vau.assets import asset_path

    return asset_path("vtest.avi", settings.cache_dir)


def open_link(settings: EdgeSettings, cameras: Sequence[str], dry_run: bool) -> CloudLink | None:
    if dry_run or settings.uplink.cloud is None:
        why = "--dry-run" if dry_run else "no uplink.cloud configured"
        log.info("no cloud uplink (%s); results stay local", why)
        return None
    from vau.edge.uplink.link import CloudLink

    return CloudLink(settings, cameras)


def camera_frames(settings: EdgeSettings, stop: threading.Event, backend: str) -> Iterator[Frame]:
    """One camera's sampled frames; the source is opened here, on the camera's own feed thread,
    so a camera that is slow to connect holds up no other."""
    cfg = settings.source
    with open_source(cfg, settings.camera_id, sample_footage(settings), stop) as source:
        what = "running camera=%s source=%s backend=%s keep_ratio=%s fps=%s"
        keep = settings.sets.keep_ratio
        log.info(what, settings.camera_id, source.describe(), backend, keep, cfg.fps)
        yield from sampled(source, cfg.fps, settings.camera_id)


def run_agent(settings: EdgeSettings, stop: threading.Event, dry_run: bool = False) -> int:
    """Run every camera until its source ends, `max_frames` is reached or `stop` is set; 0 on a
    clean end. One model stage serves all cameras (`Pipeline`)."""
    streams = settings.streams()
    analyser = build_analyser(settings)
    dim = load_head(settings.head.path).config.embed_dim
    scorers = [build_scorer(cam, dim) for cam in streams]
    if settings.output.metrics_port is not None:
        port = metrics.serve(settings.output.metrics_port)
        log.info("metrics on http://0.0.0.0:%d/metrics", port)
    link = open_link(settings, [cam.camera_id for cam in streams], dry_run)
    status = StatusLine() if settings.output.status_line else None
    jsonl = JsonlFile(settings.output.jsonl) if settings.output.jsonl is not None else None
    cameras = []
    for cam, scorer in zip(streams, scorers, strict=True):
        sinks: list[Sink] = [JsonlSink(jsonl, cam.camera_id)] if jsonl is not None else []
        if link is not None:
            sinks.append(link.sinks[cam.camera_id])
        cameras.append(CameraStream(cam, sinks, scorer))
    pipeline = Pipeline(settings, analyser, on_frame=status, cameras=cameras)
    try:
        pipeline.run_all([camera_frames(cam, stop, analyser.name) for cam in streams], stop)
    except SourceCancelledError as exc:  # a stop request while connecting: a clean stop
        log.info("%s", exc)
        return 0
    finally:
        if status is not None:
            status.finish()
        if jsonl is not None:
            jsonl.close()
        analyser.close()
        if link is not None:
            link.finish()
    _log_summary(pipeline, stop)
    return 0


def _log_summary(pipeline: Pipeline, stop: threading.Event) -> None:
    stats = pipeline.stats
    ms = stats.times.ms_per_frame()
    log.info(
        "%s: %d frames at %.1f fps, %d events; ms/frame %s",
        "stopped" if stop.is_set() else "done",
        stats.frames,
        stats.fps(),
        stats.events_new,
        ", ".join(f"{k} {v:.2f}" for k, v in ms.items()),
    )
    if len(pipeline.cameras) > 1:
        for cam in pipeline.cameras:
            lat = sorted(cam.stats.latencies) or [0.0]
            p50, worst = 1000 * lat[len(lat) // 2], 1000 * lat[-1]
            what = "camera %s: %d frames, %d events, latency p50 %.0f ms, max %.0f ms"
            log.info(what, cam.id, cam.stats.frames, cam.stats.events_new, p50, worst)
