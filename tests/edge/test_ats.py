"""ATS (Holmes-VAU) sampling and event windows."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vau.edge.ats import WindowBuilder, ats_sample, uniform
from vau.edge.settings import AtsSettings
from vau.edge.types import EventState, EventUpdate, FrameScore


def test_ats_falls_back_to_uniform_when_scores_sum_below_one() -> None:
    scores = np.full(100, 0.005, dtype=np.float32)  # sums to 0.5
    np.testing.assert_array_equal(ats_sample(scores, 5), uniform(100, 5))
    assert uniform(100, 5).tolist() == [0, 25, 50, 74, 99]


def test_ats_returns_every_frame_when_there_are_no_more_than_n() -> None:
    assert ats_sample(np.ones(7, dtype=np.float32), 12).tolist() == list(range(7))


def test_ats_matches_hand_computed_cdf_inversion() -> None:
    # mass = s + 0.1 = [0.1, 0.1, 2.1, 0.1] / 2.4 -> cdf [.042, .083, .958, 1.0]
    # points (k + .5) / 3 = [.167, .5, .833] -> all land on frame 2
    scores = np.array([0, 0, 2.0, 0], dtype=np.float32)
    assert ats_sample(scores, 3, tau=0.1).tolist() == [2]


def test_ats_samples_denser_where_scores_are_high() -> None:
    scores = np.zeros(200, dtype=np.float32)
    scores[120:160] = 1.0  # 20% of the frames hold the anomaly
    idx = ats_sample(scores, 12, tau=0.1)
    inside = np.sum((idx >= 120) & (idx < 160))
    assert inside >= 8  # uniform would put ~2-3 there
    assert np.any(idx < 120) or np.any(idx >= 160)  # normal context still sampled


@settings(max_examples=80, deadline=None)
@given(
    scores=arrays(np.float32, st.integers(1, 300), elements=st.floats(0, 1, width=32)),
    n=st.integers(1, 32),
)
def test_ats_indices_are_sorted_unique_in_range_and_within_budget(
    scores: np.ndarray, n: int
) -> None:
    idx = ats_sample(scores, n)
    assert idx.size <= n and idx.size >= 1
    assert np.all(np.diff(idx) > 0)
    assert idx.min() >= 0 and idx.max() < scores.size


def test_window_builder_picks_frames_inside_the_ended_event() -> None:
    wb = WindowBuilder(AtsSettings(frames=4))
    for seq in range(40):
        t = seq * 0.5
        s = 0.9 if 5.0 <= t <= 10.0 else 0.05
        wb.observe(FrameScore(seq=seq, t=t, score=s, smoothed=s))
    end = EventUpdate("e1", EventState.END, 5.0, 10.0, 0.9, 6.0, "prior")
    window = wb.on_event(end)
    assert window is not None
    assert window.event_id == "e1" and window.prior == "prior"
    assert len(window.seqs) == 4 and all(10 <= s <= 20 for s in window.seqs)
    assert wb.on_event(EventUpdate("e1", EventState.NEW, 5.0, None, 0.9, 6.0, "p")) is None
