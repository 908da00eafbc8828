"""Online learning: a camera without a model warms up, then scores; adaptation is bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support.normal_scene import frame_tokens, grey_scene, grey_view, scene

from vau.edge.analysers import Analysis
from vau.edge.normality.model import Scored, combine
from vau.edge.normality.online import OnlineNormality, judged_normal
from vau.edge.normality.store import Provenance, load_model
from vau.edge.settings import NormalitySettings
from vau.edge.types import EffectiveTokens, StillView

ODD = np.random.default_rng(99).standard_normal(32).astype(np.float32)  # a token never seen
PROV = Provenance(encoder="dinov2-s14", input_size=224, embed_dim=32, fps=2.0, camera="cam-1")


def analysis(
    t: float, patches: np.ndarray, prev: np.ndarray | None, still: StillView | None = None
) -> Analysis:
    change = None if prev is None else np.abs(patches - prev).sum(axis=1).astype(np.float32)
    idx = np.arange(8, dtype=np.int64)
    eff = EffectiveTokens(
        int(t * 2), t, t, idx, patches[idx], np.zeros(8, np.float32), 256, (16, 16), prev is None
    )
    return Analysis(eff, patches.mean(axis=0), 0.05, patches, change, still=still)


def feed(
    source: OnlineNormality,
    start: float,
    seconds: float,
    odd: bool = False,
    light: int | None = None,
) -> list[Scored | None]:
    """Frames of the scene; with `light`, its copies too, that much brighter than the scene's."""
    background, walker = scene()
    ground = None if light is None else (grey_scene().astype(np.int16) + light).astype(np.uint8)
    out, prev = [], None
    for i in range(int(seconds * 2)):
        t = start + i / 2
        patches = frame_tokens(background, walker, t)
        if odd:
            patches[2 * 16 + 3 : 2 * 16 + 6] = ODD  # something never seen stays where nobody goes
        view = None if ground is None else grey_view(ground, t)
        out.append(source.observe(analysis(t, patches, prev, view)))
        source.settle(t, event_open=odd)
        prev = patches
    return out


def test_a_camera_without_a_model_learns_during_warm_up_then_scores(tmp_path: Path) -> None:
    cfg = NormalitySettings(warmup_s=30, memory_patches=256)
    source = OnlineNormality(cfg, "cam-1", None, PROV, tmp_path / "m", False)
    during = feed(source, 0.0, 30.5)
    assert all(s is None for s in during)
    assert source.model is not None and (tmp_path / "m" / "normality.json").is_file()
    after = feed(source, 31.0, 5.0)
    assert all(s is not None and s.score < 0.6 for s in after)
    load_model(tmp_path / "m", "dinov2-s14", 224, 32)


def test_adaptation_does_not_absorb_a_persistent_anomaly_within_its_horizon(tmp_path: Path) -> None:
    cfg = NormalitySettings(warmup_s=30, memory_patches=256, horizon_s=60, adapt_every_s=5)
    source = OnlineNormality(cfg, "cam-1", None, PROV, tmp_path / "m", False)
    feed(source, 0.0, 31.0)
    size = source.model.memory.shape[0]  # type: ignore[union-attr]
    scores = feed(source, 40.0, 120.0, odd=True)  # twice the horizon, an event open throughout
    assert source.counts["added"] == 0 and source.counts["refused"] > 0
    assert source.model.memory.shape[0] == size  # type: ignore[union-attr]
    assert all(s is not None and s.score > 0.6 for s in scores[-10:])  # still anomalous


def test_adaptation_adds_normal_frames_after_the_horizon_and_evicts_within_bounds(
    tmp_path: Path,
) -> None:
    cfg = NormalitySettings(warmup_s=30, memory_patches=64, horizon_s=20, adapt_every_s=1)
    source = OnlineNormality(cfg, "cam-1", None, PROV, tmp_path / "m", False)
    feed(source, 0.0, 31.0)
    core = source.model.memory.shape[0]  # type: ignore[union-attr]
    feed(source, 32.0, 120.0)
    assert source.counts["added"] > 0 and source.counts["evicted"] > 0
    assert source.model.memory.shape[0] <= core + 16  # type: ignore[union-attr]  # ring = 64 / 4
    source.close()
    _, raw = load_model(tmp_path / "m", "dinov2-s14", 224, 32)
    assert raw["updates"]["added"] == source.counts["added"]


def test_the_background_follows_a_slow_light_change_only_through_frames_judged_normal(
    tmp_path: Path,
) -> None:
    cfg = NormalitySettings(warmup_s=30, memory_patches=64, horizon_s=10, adapt_every_s=2)
    source = OnlineNormality(cfg, "cam-1", None, PROV, tmp_path / "m", False)
    feed(source, 0.0, 31.0, light=0)
    assert source.model is not None and source.model.background is not None
    learnt = float(source.model.background.mean())
    feed(source, 32.0, 60.0, odd=True, light=20)  # an event open throughout: nothing moves
    assert source.model.background.mean() == learnt
    feed(source, 100.0, 120.0, light=20)  # the light is 20 grey levels up, nothing else
    assert source.counts["added"] > 0
    assert learnt + 10 < source.model.background.mean() <= learnt + 20
    assert source.model.background.ndim == 3  # in colour, as learnt


def test_a_frame_is_normal_for_adaptation_by_its_parts_not_by_the_weighted_score() -> None:
    amap = np.zeros(256, np.float32)
    resting = {"appearance": 0.1, "static": 0.25}  # inside normal; combined it reads 0.38
    assert combine(resting) >= 0.3 and judged_normal(Scored(resting, combine(resting), amap, ()))
    past = {"appearance": 0.35, "static": 0.0}
    assert not judged_normal(Scored(past, combine(past), amap, ()))
