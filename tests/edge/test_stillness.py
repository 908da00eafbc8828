"""Something that arrived and stayed (`vau.edge.stillness`, `normality.model.static_map`, the
model's background): hand-made grey views on the 16 x 16 grid."""

from __future__ import annotations

import numpy as np
from support.normal_scene import GRID, cell_box, grey_scene, grey_view, normal_frames

from vau.edge.normality.fit import background, fit
from vau.edge.normality.model import SETTLE_PX, static_map
from vau.edge.stillness import MAX_GAP_S, Stillness
from vau.edge.types import StillView


def fed(views: list[np.ndarray], fps: float = 10.0, t0: float = 0.0) -> Stillness:
    meter = Stillness()
    for k, v in enumerate(views):
        meter.add(v, t0 + k / fps)
    return meter


def test_nothing_is_said_before_a_second_of_frames_then_an_unchanging_view_is_all_still() -> None:
    ground = grey_scene()
    assert fed([ground] * 10).take() is None  # 0.9 s seen
    view = fed([ground] * 11).take()
    assert view is not None and view.still.all() and (view.grey == ground).all()


def test_a_thing_moving_is_not_still_where_it_was_or_is_and_a_thing_that_stopped_is() -> None:
    ground = grey_scene()
    frames = []
    for k in range(21):  # a dark square crosses the view in 1 s, then stops at x = 50
        g = ground.copy()
        x = min(5 * k, 50)
        g[30:40, x : x + 10] = 0
        frames.append(g)
    moving = fed(frames[:11]).take()  # at x = 50 now, at 0 a second ago
    assert moving is not None
    assert not moving.still[30:40, 45:55].any()  # where it is now
    assert not moving.still[30:40, 20:25].any()  # where it passed within the second
    assert moving.still[60:].all()  # the rest of the view
    stopped = fed(frames).take()  # at rest since frame 10, 1.0 s before the last
    assert stopped is not None and stopped.still[30:40, 50:60].all()


def test_after_a_gap_the_second_of_history_starts_again() -> None:
    ground = grey_scene()
    meter = fed([ground] * 20)
    meter.add(ground, 1.9 + MAX_GAP_S + 0.5)
    assert meter.take() is None
    for k in range(1, 11):  # a second after the gap it says again
        meter.add(ground, 1.9 + MAX_GAP_S + 0.5 + k / 10)
    assert meter.take() is not None


def test_a_still_thing_off_the_background_fills_its_patches_and_nothing_else() -> None:
    ground = grey_scene()
    bg = ground.astype(np.float32)
    grey = ground.copy()
    grey[cell_box(5 * GRID[1] + 3)] = 250  # a bright box on one cell, at rest
    shares = static_map(StillView(grey, np.ones_like(grey, bool)), bg, GRID)
    assert shares[5 * GRID[1] + 3] > 0.9 and np.delete(shares, 5 * GRID[1] + 3).max() == 0.0
    moving = static_map(StillView(grey, grey != 250), bg, GRID)
    assert moving.max() == 0.0  # the same box, but it moved within the second: a walker


def test_a_thing_at_rest_whose_outline_moves_is_static_but_not_settled() -> None:
    """A person standing among walkers, or walking slowly in plain clothes: the inside of the
    shape did not change within the second, its outline did. Settled counts only still pixels
    with nothing that moved within SETTLE_PX of them; a thing wholly at rest is both."""
    ground = grey_scene()
    bg = ground.astype(np.float32)
    cell = 5 * GRID[1] + 3
    rows, cols = cell_box(cell)
    grey = ground.copy()
    grey[rows, cols] = 250
    still = np.ones_like(grey, bool)
    still[rows, cols] = False
    still[rows.start + 1 : rows.stop - 1, cols.start + 1 : cols.stop - 1] = True  # outline moved
    standing = StillView(grey, still)
    static = static_map(standing, bg, GRID)
    settled = static_map(standing, bg, GRID, SETTLE_PX)
    assert static[cell] > 0.4 and settled[cell] < 0.05 and settled.sum() < static.sum() / 10
    at_rest = StillView(grey, np.ones_like(grey, bool))
    assert static_map(at_rest, bg, GRID, SETTLE_PX)[cell] == static_map(at_rest, bg, GRID)[cell]
    assert static_map(at_rest, bg, GRID, SETTLE_PX)[cell] > 0.9


def test_the_light_changing_over_the_whole_view_is_not_a_thing_that_arrived() -> None:
    ground = grey_scene()
    dimmer = np.clip(ground.astype(np.int16) - 40, 0, 255).astype(np.uint8)
    shares = static_map(StillView(dimmer, np.ones_like(dimmer, bool)), ground.astype(float), GRID)
    assert shares.max() < 0.1  # the median shift is taken out first


def test_the_background_is_the_median_so_walkers_passing_through_do_not_reach_it() -> None:
    frames = normal_frames(seconds=20, pixels=True)
    bg = background(frames)
    assert bg is not None and np.array_equal(bg, grey_scene().astype(np.float32))
    assert background(normal_frames(seconds=20)) is None  # no grey copies: no background


def test_something_left_in_the_view_scores_high_on_static_and_is_hot_where_it_lies() -> None:
    model = fit(normal_frames(pixels=True), GRID, memory_patches=256, radius=2)
    assert model.background is not None and "static" in model.calibration
    f = normal_frames(seconds=62, pixels=True)[-1]
    assert f.still is not None
    quiet = model.score(f.patches, f.change, f.cls, 8, still=f.still)
    left = f.still.grey.copy()
    left[cell_box(12 * GRID[1] + 4)] = 250  # a bag left on the ground, at rest
    bag = StillView(left, f.still.still)
    scored = model.score(f.patches, f.change, f.cls, 8, still=bag)
    assert quiet.parts["static"] < 0.3 < 0.75 < scored.parts["static"]
    assert "settled" in model.calibration
    assert quiet.parts["settled"] < 0.3 < 0.75 < scored.parts["settled"]
    assert scored.score >= scored.parts["static"]
    assert 12 * GRID[1] + 4 in scored.hot
    unmeasured = model.score(f.patches, f.change, f.cls, 8).parts
    assert "static" not in unmeasured and "settled" not in unmeasured


def test_a_walker_twice_as_fast_as_usual_is_still_not_static() -> None:
    model = fit(normal_frames(pixels=True), GRID, memory_patches=256, radius=2)
    f = normal_frames(seconds=62, pixels=True)[-1]
    view = grey_view(grey_scene(), f.t, speed=2.0)
    assert model.score(f.patches, f.change, f.cls, 8, still=view).parts["static"] < 0.3
