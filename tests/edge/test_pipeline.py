"""The pipeline in-process on real frames: metrics, per-stage timing, batching, max_frames."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from support.sinks import Collect

from vau.edge import metrics
from vau.edge.analysers import SplitAnalyser
from vau.edge.encoders.factory import build_encoder
from vau.edge.pipeline import STAGES, Pipeline
from vau.edge.settings import load_settings
from vau.edge.sources import open_source, sampled
from vau.edge.tetg import AnomalyHead, HeadConfig, from_torch, torch_module


def _head() -> AnomalyHead:
    config = HeadConfig(embed_dim=384, hidden=16)
    return from_torch(config, torch_module(config).eval())


@pytest.mark.parametrize("batch", [1, 3])
def test_pipeline_processes_max_frames_and_counts_them_in_metrics(
    vtest_path: Path, batch: int
) -> None:
    camera = f"metrics-test-{batch}"
    s = load_settings(overrides={"camera_id": camera, "max_frames": 7,
                                 "encoder": {"batch_size": batch}})  # fmt: skip
    sink = Collect()
    pipeline = Pipeline(s, SplitAnalyser(build_encoder(s.encoder), _head(), s.sets), [sink])
    with open_source(s.source, camera, vtest_path) as src:
        stats = pipeline.run(sampled(src, s.source.fps, camera))
    assert stats.frames == 7 == len(sink.frames)
    assert [f[0].seq for f in sink.frames] == [0, 5, 10, 15, 20, 25, 30]
    assert metrics.REGISTRY.get_sample_value("vau_edge_frames_total", {"camera": camera}) == 7
    kept = metrics.REGISTRY.get_sample_value("vau_edge_tokens_kept_total", {"camera": camera})
    assert kept == 7 * 128
    ms = stats.times.ms_per_frame()
    assert set(ms) == set(STAGES) and ms["encoder"] > 0 and ms["sets"] > 0


def test_metrics_endpoint_serves_the_documented_names() -> None:
    port = metrics.serve(0, addr="127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for name in ("vau_edge_frames_total", "vau_edge_frames_dropped_total",
                 "vau_edge_encoder_seconds", "vau_edge_events_total"):  # fmt: skip
        assert name in body
