"""SETS on small hand-computed tensors, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vau.edge.sets import (
    SetsSelector,
    keep_count,
    l1_distance,
    over_threshold,
    prefer,
    top_k,
)
from vau.edge.settings import SetsSettings
from vau.edge.types import Tokens


def _tokens(patches: np.ndarray, t: float = 0.0, seq: int = 0) -> Tokens:
    p = patches.astype(np.float32)
    return Tokens(seq=seq, t=t, wall_time=t, patches=p, cls=p.mean(0), grid=(1, p.shape[0]))


def test_l1_distance_matches_hand_computed_values() -> None:
    cur = np.array([[1, 2], [0, 0], [3, -1]], dtype=np.float32)
    prev = np.array([[1, 0], [1, 1], [0, 0]], dtype=np.float32)
    assert l1_distance(cur, prev).tolist() == [2.0, 2.0, 4.0]


def test_top_k_keeps_largest_changes_in_index_order_with_ties_to_lower_index() -> None:
    d = np.array([0.1, 5.0, 3.0, 5.0, 0.0], dtype=np.float32)
    assert top_k(d, 2).tolist() == [1, 3]
    assert top_k(d, 3).tolist() == [1, 2, 3]
    tied = np.ones(4, dtype=np.float32)
    assert top_k(tied, 2).tolist() == [0, 1]


def test_keep_count_rounds_and_never_drops_to_zero() -> None:
    assert keep_count(256, 0.5) == 128
    assert keep_count(256, 0.1) == 26
    assert keep_count(10, 0.01) == 1
    assert keep_count(10, 1.0) == 10


def test_threshold_mode_keeps_patches_whose_mean_channel_change_exceeds_threshold() -> None:
    d = np.array([0.0, 0.25, 0.3, 1.0], dtype=np.float32)  # C = 2 -> means 0, .125, .15, .5
    assert over_threshold(d, 2, 0.14).tolist() == [2, 3]


def test_selector_first_frame_is_keyframe_with_same_count_and_distinct_patches() -> None:
    sel = SetsSelector(SetsSettings(keep_ratio=0.5))
    patches = np.zeros((4, 2), dtype=np.float32)
    patches[2] = [10, 10]  # the odd one out
    eff = sel.select(_tokens(patches))
    assert eff.keyframe and eff.kept == 2 and 2 in eff.indices.tolist()


def test_selector_keeps_changed_patches_and_their_tokens() -> None:
    sel = SetsSelector(SetsSettings(keep_ratio=0.25))
    a = np.zeros((8, 3), dtype=np.float32)
    b = a.copy()
    b[5] = 1.0
    b[1] = 3.0
    sel.select(_tokens(a, t=0.0))
    eff = sel.select(_tokens(b, t=0.5, seq=1))
    assert not eff.keyframe
    assert eff.indices.tolist() == [1, 5]
    np.testing.assert_array_equal(eff.tokens, b[[1, 5]])
    assert eff.distances.tolist() == [9.0, 3.0]


def test_selector_gap_longer_than_max_gap_makes_a_keyframe() -> None:
    sel = SetsSelector(SetsSettings(max_gap_s=1.0))
    a = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    sel.select(_tokens(a, t=0.0))
    assert not sel.select(_tokens(a, t=0.9)).keyframe
    assert sel.select(_tokens(a, t=5.0)).keyframe


def test_selector_all_keyframe_policy_keeps_every_patch() -> None:
    sel = SetsSelector(SetsSettings(keyframe="all", keep_ratio=0.1))
    eff = sel.select(_tokens(np.ones((16, 4))))
    assert eff.kept == 16 and eff.indices.tolist() == list(range(16))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 64),
    ratio=st.floats(0.01, 1.0),
    data=st.data(),
)
def test_selector_output_is_sorted_unique_valid_indices_of_configured_count(
    n: int, ratio: float, data: st.DataObject
) -> None:
    shape = (n, 3)
    elems = st.floats(-10, 10, width=32)
    a = data.draw(arrays(np.float32, shape, elements=elems))
    b = data.draw(arrays(np.float32, shape, elements=elems))
    sel = SetsSelector(SetsSettings(keep_ratio=ratio))
    sel.select(_tokens(a, t=0.0))
    eff = sel.select(_tokens(b, t=0.5))
    idx = eff.indices
    assert eff.kept == keep_count(n, ratio)
    assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < n
    kept_min = l1_distance(b, a)[idx].min()
    dropped = np.setdiff1d(np.arange(n), idx)
    if dropped.size:
        assert l1_distance(b, a)[dropped].max() <= kept_min


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5])
def test_selector_count_follows_keep_ratio_on_dinov2_sized_grid(ratio: float) -> None:
    rng = np.random.default_rng(1)
    sel = SetsSelector(SetsSettings(keep_ratio=ratio))
    for t in range(3):
        eff = sel.select(_tokens(rng.normal(size=(256, 384)), t=float(t)))
        assert eff.kept == round(256 * ratio)


def _two_frames() -> tuple[SetsSelector, np.ndarray, np.ndarray]:
    sel = SetsSelector(SetsSettings(keep_ratio=0.4))  # 2 of 5 patches
    prev = np.zeros((5, 2), np.float32)
    cur = np.array([[5, 0], [4, 0], [0, 0], [1, 0], [0, 0]], np.float32)  # change: 5 4 0 1 0
    sel.select(_tokens(prev, t=0.0))
    return sel, cur, np.array([0.0, 0.1, 0.2, 3.0, 2.0], np.float32)  # novelty


def test_novelty_selection_keeps_the_most_anomalous_patches_at_the_same_count() -> None:
    sel, cur, novelty = _two_frames()
    eff, change = sel.step(_tokens(cur, t=0.5))
    assert eff.indices.tolist() == [0, 1]  # SETS: most changed
    picked = prefer(eff, cur, change, novelty, "novelty")
    assert picked.indices.tolist() == [3, 4] and picked.kept == eff.kept
    assert picked.tokens.tolist() == cur[[3, 4]].tolist()
    assert picked.distances.tolist() == [1.0, 0.0]  # still each patch's change


def test_both_ranks_change_and_novelty_together_and_change_leaves_sets_alone() -> None:
    sel, cur, novelty = _two_frames()
    eff, change = sel.step(_tokens(cur, t=0.5))
    # rank sums: change ranks 4 3 0 2 1 (ties stable), novelty ranks 0 1 2 4 3 -> 4 4 2 6 4
    assert prefer(eff, cur, change, novelty, "both").indices.tolist() == [0, 3]
    assert prefer(eff, cur, change, novelty, "change") is eff
    assert prefer(eff, cur, change, None, "novelty") is eff  # no model: SETS as it was
