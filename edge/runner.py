"""Assemble and run the edge agent from settings: source, model stage, pipeline, sinks."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from vau.edge import metrics
from vau.edge.analysers import build_analyser
from vau.edge.console import StatusLine
from vau.edge.pipeline import Pipeline, RunStats
from vau.edge.scoring.factory import build_scorer
from vau.edge.settings import EdgeSettings
from vau.edge.sinks import JsonlSink, Sink
from vau.edge.sources import SourceCancelledError, open_source, sampled
from vau.edge.tetg import load_head

if TYPE_CHECKING:
    from vau.edge.uplink.link import CloudLink

log = logging.getLogger(__name__)


def sample_footage(settings: EdgeSettings) -> Path | None:
    """The bundled clip that source.uri = 'sample' means (None when it is not asked for)."""
    if settings.source.uri != "sample":
        return None
    from vau.assets import asset_path

    return asset_path("vtest.avi", settings.cache_dir)


def build_sinks(settings: EdgeSettings) -> list[Sink]:
    sinks: list[Sink] = []
    if settings.output.jsonl is not None:
        sinks.append(JsonlSink(settings.output.jsonl))
    return sinks


def open_link(settings: EdgeSettings, dry_run: bool) -> CloudLink | None:
    if dry_run or settings.uplink.cloud is None:
        why = "--dry-run" if dry_run else "no uplink.cloud configured"
        log.info("no cloud uplink (%s); results stay local", why)
        return None
    from vau.edge.uplink.link import CloudLink

    return CloudLink(settings)


def run_agent(settings: EdgeSettings, stop: threading.Event, dry_run: bool = False) -> int:
    """Run until the source ends, `max_frames` is reached or `stop` is set; 0 on a clean end."""
    analyser = build_analyser(settings)
    scorer = build_scorer(settings, load_head(settings.head.path).config.embed_dim)
    if settings.output.metrics_port is not None:
        port = metrics.serve(settings.output.metrics_port)
        log.info("metrics on http://0.0.0.0:%d/metrics", port)
    link = open_link(settings, dry_run)
    status = StatusLine() if settings.output.status_line else None
    sinks = build_sinks(settings) + ([link.sink] if link is not None else [])
    pipeline = Pipeline(settings, analyser, sinks, on_frame=status, scorer=scorer)
    footage = sample_footage(settings)
    try:
        with open_source(settings.source, settings.camera_id, footage, stop) as source:
            log.info(
                "running camera=%s source=%s backend=%s keep_ratio=%s fps=%s",
                settings.camera_id, source.describe(), analyser.name,
                settings.sets.keep_ratio, settings.source.fps,
            )  # fmt: skip
            stats = pipeline.run(sampled(source, settings.source.fps, settings.camera_id), stop)
    except SourceCancelledError as exc:  # a stop request while connecting: a clean stop
        log.info("%s", exc)
        return 0
    finally:
        if status is not None:
            status.finish()
        for sink in sinks:
            sink.close()
        analyser.close()
        if link is not None:
            link.finish()
    _log_summary(stats, stop)
    return 0


def _log_summary(stats: RunStats, stop: threading.Event) -> None:
    ms = stats.times.ms_per_frame()
    log.info(
        "%s: %d frames at %.1f fps, %d events; ms/frame %s",
        "stopped" if stop.is_set() else "done",
        stats.frames,
        stats.fps(),
        stats.events_new,
        ", ".join(f"{k} {v:.2f}" for k, v in ms.items()),
    )
