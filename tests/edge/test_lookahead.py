"""A frame's final score waits for the next frame's: the mean of the two, never over a gap."""

from __future__ import annotations

import pytest

from vau.edge.lookahead import Lookahead, looked_ahead


def test_a_frame_is_final_once_the_next_is_scored_with_the_mean_of_both() -> None:
    ahead: Lookahead[str] = Lookahead(1, gap_s=5.0)
    assert ahead.push("a", 0.0, 0.2) == []
    assert ahead.push("b", 0.5, 0.6) == [("a", pytest.approx(0.4))]
    assert ahead.push("c", 1.0, 1.0) == [("b", pytest.approx(0.8))]
    assert ahead.flush() == [("c", 1.0)]  # the stream ended: the last frame keeps its own
    assert ahead.flush() == []


def test_without_look_ahead_every_frame_is_final_at_once() -> None:
    ahead: Lookahead[int] = Lookahead(0, gap_s=5.0)
    assert ahead.push(1, 0.0, 0.3) == [(1, 0.3)]
    assert ahead.flush() == []


def test_two_frames_of_look_ahead_average_three() -> None:
    assert looked_ahead([0.0, 0.5, 1.0, 1.5], [0.0, 0.3, 0.6, 0.9], 2, 5.0) == pytest.approx(
        [0.3, 0.6, 0.75, 0.9]
    )


def test_a_frame_is_never_averaged_with_one_after_a_gap() -> None:
    ahead: Lookahead[str] = Lookahead(1, gap_s=5.0)
    ahead.push("before", 0.0, 0.9)
    assert ahead.push("after", 60.0, 0.1) == [("before", 0.9)]  # the camera was away a minute
    assert ahead.flush() == [("after", 0.1)]


def test_negative_look_ahead_is_refused() -> None:
    with pytest.raises(ValueError, match="look-ahead"):
        Lookahead(-1, gap_s=5.0)
