"""The normality model's maths on hand-made grids: calibration, coreset, maps, hot patches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from support.normal_scene import GRID, frame_tokens, normal_frames, scene

from vau.edge.normality.calibration import Calibration
from vau.edge.normality.fit import (
    BLOCK_S,
    CAL_BLOCKS,
    LearnError,
    NormalFrame,
    calibration_blocks,
    coreset,
    fit,
    stretches,
)
from vau.edge.normality.model import (
    PARTS,
    SETTLED_POWER,
    STATIC_POWER,
    UNFUSED,
    combine,
    hot_of,
    neighbourhood_mask,
)


def test_calibration_maps_the_edge_of_normal_below_exit_and_twice_it_above_enter() -> None:
    cal = Calibration.of(np.linspace(0.0, 1.0, 1001, dtype=np.float32))
    assert cal.median == pytest.approx(0.5)
    low, edge, past = cal.score(np.array([0.5, cal.edge, 2 * cal.edge - cal.median]))
    assert low < 0.1
    assert edge == pytest.approx(0.30, abs=1e-3)
    assert past == pytest.approx(0.75, abs=1e-3)


def test_calibration_of_constant_values_does_not_divide_by_zero() -> None:
    cal = Calibration.of([2.0] * 10)
    assert cal.edge > cal.median
    assert np.isfinite(cal.score(5.0))


def test_coreset_keeps_far_apart_points_before_near_duplicates() -> None:
    rng = np.random.default_rng(0)
    cluster = rng.standard_normal((500, 16)).astype(np.float32) * 0.01
    outlier = np.full((1, 16), 5.0, np.float32)
    chosen = coreset(np.concatenate([cluster, outlier]), 2)
    assert 500 in chosen.tolist()


def test_coreset_picks_the_same_points_as_the_plain_greedy_k_centre() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 48)).astype(np.float32)
    chosen = coreset(x, 40, seed=3)
    # the plain algorithm in the same projection and from the same first pick
    rng = np.random.default_rng(3)
    proj = rng.standard_normal((48, 128)).astype(np.float32)
    y = x @ proj / np.sqrt(128)
    picks = [int(rng.integers(400))]
    nearest = ((y - y[picks[0]]) ** 2).sum(axis=1)
    while len(picks) < 40:
        picks.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, ((y - y[picks[-1]]) ** 2).sum(axis=1))
    assert chosen.tolist() == sorted(picks)


def bursts(frames: list[NormalFrame], every_s: float, burst_s: float) -> list[NormalFrame]:
    """The frames in the first `burst_s` of every `every_s`, as `vau-edge learn` keeps long
    footage; the first of each burst with a change taken across the gap (as the pipeline makes
    one for gaps under `sets.max_gap_s`): ten times a normal change."""
    kept = [f for f in frames if f.t % every_s < burst_s]
    return [
        replace(f, change=None if f.change is None else 10 * f.change) if f.t % every_s == 0 else f
        for f in kept
    ]


def test_footage_in_bursts_calibrates_on_burst_starts_and_ignores_changes_across_gaps() -> None:
    frames = bursts(normal_frames(seconds=120), every_s=12.0, burst_s=BLOCK_S)
    assert len(stretches(frames)) == 10
    starts = [start for start, _ in calibration_blocks(frames)]
    assert len(starts) == CAL_BLOCKS and all(t % 12.0 == 0 for t in starts)
    model = fit(frames, GRID, memory_patches=256, radius=-1)
    clean = [replace(f, change=None) if f.t % 12.0 == 0 else f for f in frames]
    plain = fit(clean, GRID, memory_patches=256, radius=-1)
    np.testing.assert_array_equal(model.motion_mu, plain.motion_mu)
    assert model.calibration["motion"] == plain.calibration["motion"]


def test_continuous_footage_is_one_stretch_with_blocks_spread_over_it() -> None:
    frames = normal_frames(seconds=60)
    assert stretches(frames) == [(0, len(frames))]
    centres = [(a + b) / 2 for a, b in calibration_blocks(frames)]
    assert centres == pytest.approx([t * 59.5 / 8 for t in (1, 3, 5, 7)])


def test_footage_too_short_to_leave_its_own_moment_out_cannot_be_calibrated() -> None:
    with pytest.raises(LearnError, match="5 s of other normal footage"):
        fit(normal_frames(seconds=8), GRID, memory_patches=64, radius=-1)


def test_neighbourhood_mask_allows_only_nearby_memory_entries() -> None:
    mask = neighbourhood_mask(GRID, np.array([0, 255]), radius=1)
    assert mask is not None
    assert mask[0, 0] == 0 and mask[17, 0] == 0 and mask[34, 0] < -1
    assert neighbourhood_mask(GRID, np.array([0, 255]), radius=-1) is None


def test_a_new_object_where_nothing_goes_is_hot_and_scores_high() -> None:
    model = fit(normal_frames(), GRID, memory_patches=512, radius=-1)
    background, walker = scene()
    normal = frame_tokens(background, walker, 61.0)
    odd = normal.copy()
    block = [r * 16 + c for r in range(1, 6) for c in range(2, 8)]  # 30 patches, 12 % of the view
    odd[block] = np.random.default_rng(7).standard_normal((len(block), 32))  # never seen
    s_normal = model.score(normal, None, normal.mean(0), hot_patches=8)
    s_odd = model.score(odd, None, odd.mean(0), hot_patches=8)
    assert s_odd.parts["appearance"] > 0.6 > 0.3 > s_normal.parts["appearance"]  # enter, edge
    assert set(s_odd.hot) <= set(block) and len(s_odd.hot) == 8
    assert s_normal.hot == ()


def test_faster_change_than_normal_raises_motion_not_appearance() -> None:
    frames = normal_frames()
    model = fit(frames, GRID, memory_patches=512, radius=-1)
    background, walker = scene()
    prev = frame_tokens(background, walker, 70.0)
    cur = frame_tokens(background, walker, 70.5)
    change = np.abs(cur - prev).sum(1)
    s_walk = model.score(cur, change, cur.mean(0), hot_patches=8)
    s_run = model.score(cur, 4.0 * change, cur.mean(0), hot_patches=8)
    assert s_run.parts["motion"] > 0.9 > 0.3 > s_walk.parts["motion"]
    assert s_run.parts["appearance"] == pytest.approx(s_walk.parts["appearance"])


def test_fit_refuses_too_few_frames() -> None:
    with pytest.raises(LearnError, match="too few"):
        fit(normal_frames(seconds=2), GRID, memory_patches=64, radius=2)


def test_hot_lists_only_patches_beyond_normal_most_anomalous_first() -> None:
    amap = np.zeros(256, np.float32)
    amap[[5, 9, 40]] = [1.5, 3.0, 0.9]
    assert hot_of(amap, 8) == (9, 5)
    assert hot_of(amap, 1) == (9,)
    assert hot_of(amap, 0) == ()


def test_combine_takes_the_largest_part_with_the_parts_at_rest_weighted_up() -> None:
    assert combine({"appearance": 0.4, "motion": 0.1}) == 0.4
    # a thing at rest at 0.25 (inside its normal) outranks appearance noise at 0.35
    assert combine({"appearance": 0.35, "static": 0.25}) == pytest.approx(0.25**STATIC_POWER)
    assert 0.35 < 0.25**STATIC_POWER < 0.5
    assert combine({"head": 0.9, "static": 0.25}) == 0.9
    assert combine({"static": 0.0}) == 0.0 and combine({"static": 1.0}) == 1.0
    # the settled part is weighted up further: its normal tail is lower still
    assert combine({"appearance": 0.4, "settled": 0.25}) == pytest.approx(0.25**SETTLED_POWER)
    assert 0.25**STATIC_POWER < 0.25**SETTLED_POWER < 0.6  # alone, short of an event


def test_combine_reports_the_global_part_but_leaves_it_out_of_the_score() -> None:
    """The class token's distance is measured for every frame but never decides the score: a
    frame whose only high part is `global` scores what its other parts say."""
    assert "global" in PARTS and "global" in UNFUSED
    assert combine({"appearance": 0.2, "global": 0.95, "motion": 0.1}) == 0.2
    assert combine({"global": 0.95}) == 0.0


def test_appearance_is_learnt_and_scored_from_the_inner_tokens_when_frames_carry_them() -> None:
    """The memory holds `looks` (the encoder's inner block), not the last layer's patches: a frame
    whose inner tokens are normal scores low even when its last-layer patches were never seen,
    and the other way round."""
    frames = normal_frames()
    rng = np.random.default_rng(3)
    inner_of = rng.standard_normal((32, 32)).astype(np.float32)  # another view of the same patch
    frames = [replace(f, looks=f.patches @ inner_of) for f in frames]
    model = fit(frames, GRID, memory_patches=512, radius=-1)
    background, walker = scene()
    normal = frame_tokens(background, walker, 61.0)
    unseen = rng.standard_normal(normal.shape).astype(np.float32)
    calm = model.score(unseen, None, normal.mean(0), hot_patches=8, looks=normal @ inner_of)
    odd = model.score(normal, None, normal.mean(0), hot_patches=8, looks=unseen)
    assert calm.parts["appearance"] < 0.3 < 0.6 < odd.parts["appearance"]
