"""Something that arrived and stayed (`vau.edge.stillness`, `normality.model.static_map`, the
model's background): hand-made grey and colour views on the 16 x 16 grid, and real footage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from support.footage import first_frames
from support.normal_scene import GRID, cell_box, coloured, grey_scene, grey_view, normal_frames

from vau.edge.flow import grey_of, shrink
from vau.edge.normality.fit import background, fit
from vau.edge.normality.model import SETTLE_PX, foreground, static_map
from vau.edge.pixels import PixelMeter
from vau.edge.stillness import MAX_GAP_S, Stillness, lingering
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


def test_a_twitching_thing_at_rest_lingers_where_it_is_not_still_and_a_walker_does_not() -> None:
    ground = grey_scene()
    frames = []
    for k in range(11):  # a dark bar at rest, nudged 2 px up and back every frame (a twitch),
        g = ground.copy()  # and a dark square crossing the view at 5 px a frame
        y = 30 + 2 * (k % 2)
        g[y : y + 6, 20:60] = 0
        g[80:90, 5 * k : 5 * k + 10] = 0
        frames.append(g)
    view = fed(frames).take()
    assert view is not None and view.lingering is not None
    edges = (slice(30, 32), slice(20, 60))  # covered in every other frame: never still
    assert not view.still[edges].any() and view.lingering[edges].all()
    assert view.lingering[32:36, 20:60].all()  # the bar's body
    assert not view.lingering[80:90, 50:60].any()  # the square, where it is now
    assert view.lingering[100:].all()  # the rest of the view


def test_a_still_pixel_always_lingers_and_a_change_since_both_earlier_copies_never_does() -> None:
    rng = np.random.default_rng(3)
    a, b, c = (rng.integers(0, 256, (112, 112)).astype(np.uint8) for _ in range(3))
    assert lingering(a, a, a).all()
    assert lingering(a, a, c).all() and lingering(a, c, a).all()  # one of them matches
    far = (np.abs(a.astype(int) - b) > 25) & (np.abs(a.astype(int) - c) > 25)
    far &= np.sign(a.astype(int) - b) == np.sign(a.astype(int) - c)  # not between them
    assert not lingering(a, b, c)[far].any()


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
    assert bg is not None and np.array_equal(bg, coloured(grey_scene()).astype(np.float32))
    grey_only = background(normal_frames(seconds=20, pixels=True, colour=False))
    assert grey_only is not None and np.array_equal(grey_only, grey_scene().astype(np.float32))
    assert background(normal_frames(seconds=20)) is None  # no copies: no background


def test_a_kept_frame_carries_the_latest_colour_copy_beside_the_grey_one() -> None:
    ground = grey_scene()
    meter = Stillness()
    for k in range(11):
        copy = coloured(ground)
        copy[0, 0] = (k, 0, 0)
        meter.add(ground, k / 10, copy)
    view = meter.take()
    assert view is not None and view.colour is not None and view.colour[0, 0, 0] == 10
    assert fed([ground] * 11).take().colour is None  # type: ignore[union-attr]  # grey only


def test_on_real_footage_a_kept_frame_carries_its_colour_copy_and_still_pixels(
    vtest_path: Path,
) -> None:
    """vtest at 10 fps: after a second the pixel meter's view is the latest frame's 112 px copy in
    colour and in grey, and the walkers' pixels are not still while most of the scene is."""
    meter = PixelMeter()
    frames = first_frames(vtest_path, 12)
    for k, image in enumerate(frames):
        meter.add(image, k / 10)
    view = meter.take().still
    assert view is not None and view.colour is not None
    assert np.array_equal(view.colour, shrink(frames[-1]))
    assert np.array_equal(view.grey, grey_of(view.colour))
    assert 0.5 < view.still.mean() < 1.0


def tagged(cell: int) -> StillView:
    """A grey wall with a tag on one cell as bright as the wall but another colour."""
    copy = coloured(np.full(grey_scene().shape, 120, np.uint8))
    copy[cell_box(cell)] = (200, 100, 130)  # BGR: grey level 120.4, the wall's
    grey = grey_of(copy)
    return StillView(grey, np.ones_like(grey, bool), copy)


def test_a_thing_as_bright_as_what_it_covers_but_another_colour_is_static_in_colour_only() -> None:
    cell = 5 * GRID[1] + 3
    view = tagged(cell)
    wall = np.full(view.grey.shape, 120.0, np.float32)
    shares = static_map(view, coloured(wall.astype(np.uint8)).astype(np.float32), GRID)
    assert shares[cell] > 0.9 and np.delete(shares, cell).max() == 0.0
    assert static_map(view, wall, GRID).max() == 0.0  # a grey background: the grey levels alike
    grey_only = StillView(view.grey, view.still)  # a colour background, a view without colour
    assert not foreground(grey_only, coloured(wall.astype(np.uint8)).astype(np.float32)).any()


def test_the_light_changing_colour_over_the_whole_view_is_not_a_thing_that_arrived() -> None:
    ground = coloured(grey_scene())
    shift = np.array([-40, -10, 30], np.int16)  # BGR: an orange cast
    cast = np.clip(ground.astype(np.int16) + shift, 0, 255).astype(np.uint8)
    view = StillView(grey_of(cast), np.ones(cast.shape[:2], bool), cast)
    assert static_map(view, ground.astype(np.float32), GRID).max() < 0.1  # each channel's shift


def test_something_left_in_the_view_scores_high_on_static_and_is_hot_where_it_lies() -> None:
    model = fit(normal_frames(pixels=True), GRID, memory_patches=256, radius=2)
    assert model.background is not None and "static" in model.calibration
    f = normal_frames(seconds=62, pixels=True)[-1]
    assert f.still is not None
    quiet = model.score(f.patches, f.change, f.cls, 8, still=f.still)
    assert f.still.colour is not None
    left = f.still.colour.copy()
    left[cell_box(12 * GRID[1] + 4)] = 250  # a bag left on the ground, at rest
    bag = StillView(grey_of(left), f.still.still, left, f.still.lingering)
    scored = model.score(f.patches, f.change, f.cls, 8, still=bag)
    assert quiet.parts["static"] < 0.3 < 0.75 < scored.parts["static"]
    for part in ("settled", "lingering"):
        assert part in model.calibration
        assert quiet.parts[part] < 0.3 < 0.75 < scored.parts[part]
    assert scored.score >= scored.parts["static"]
    assert 12 * GRID[1] + 4 in scored.hot
    unmeasured = model.score(f.patches, f.change, f.cls, 8).parts
    assert not {"static", "settled", "lingering"} & set(unmeasured)
    no_lingering = StillView(bag.grey, bag.still, bag.colour)  # a view from before the part
    assert "lingering" not in model.score(f.patches, f.change, f.cls, 8, still=no_lingering).parts


def test_a_thing_at_rest_that_is_never_still_for_a_second_scores_on_lingering_only() -> None:
    """Its pixels linger but none stood still a whole second (a twitch): the lingering part
    reads the lingering mask, the static and settled parts the still one."""
    model = fit(normal_frames(pixels=True), GRID, memory_patches=256, radius=2)
    f = normal_frames(seconds=62, pixels=True)[-1]
    assert f.still is not None and f.still.colour is not None and f.still.lingering is not None
    cell = 12 * GRID[1] + 4
    left = f.still.colour.copy()
    left[cell_box(cell)] = 250
    still, lingers = f.still.still.copy(), f.still.lingering.copy()
    still[cell_box(cell)], lingers[cell_box(cell)] = False, True
    twitching = StillView(grey_of(left), still, left, lingers)
    scored = model.score(f.patches, f.change, f.cls, 8, still=twitching)
    parts = scored.parts
    assert parts["lingering"] > 0.75 and parts["static"] < 0.3 and parts["settled"] < 0.3
    assert scored.hot[:1] == (cell,)  # the anomaly map has every part at rest's units
    before = {k: v for k, v in model.patch_calibration.items() if k != "lingering"}
    older = replace(model, patch_calibration=before)  # learnt before they joined the map
    assert cell not in older.score(f.patches, f.change, f.cls, 8, still=twitching).hot


def test_a_walker_twice_as_fast_as_usual_is_still_not_static() -> None:
    model = fit(normal_frames(pixels=True), GRID, memory_patches=256, radius=2)
    f = normal_frames(seconds=62, pixels=True)[-1]
    view = grey_view(grey_scene(), f.t, speed=2.0)
    assert model.score(f.patches, f.change, f.cls, 8, still=view).parts["static"] < 0.3


def test_a_bag_the_grey_of_the_ground_but_another_colour_is_static_to_a_colour_model() -> None:
    frames = normal_frames(pixels=True)
    model = fit(frames, GRID, memory_patches=256, radius=2)
    assert model.background is not None and model.background.ndim == 3
    f = normal_frames(seconds=62, pixels=True)[-1]
    assert f.still is not None and f.still.colour is not None
    cell = 12 * GRID[1] + 4
    copy = f.still.colour.copy()
    level = copy[cell_box(cell)].astype(np.float32).mean(axis=2)
    blue = np.stack([level + 60, level - 12, level - 14], axis=2)  # near-equal grey, bluer
    copy[cell_box(cell)] = np.clip(blue, 0, 255).astype(np.uint8)
    bag = StillView(grey_of(copy), f.still.still, copy)
    assert np.abs(bag.grey.astype(int) - f.still.grey)[cell_box(cell)].max() <= 25
    scored = model.score(f.patches, f.change, f.cls, 8, still=bag)
    assert scored.parts["static"] > 0.75 and cell in scored.hot
    grey_model = fit(normal_frames(pixels=True, colour=False), GRID, memory_patches=256, radius=2)
    assert grey_model.background is not None and grey_model.background.ndim == 2
    assert grey_model.score(f.patches, f.change, f.cls, 8, still=bag).parts["static"] < 0.3
