"""Facts on hand-made grids: where, movement, view change, onset, growth, recurrence."""

from __future__ import annotations

from dataclasses import replace

from vau.cloud.explain.evidence import EventEvidence, evidence_lines, facts, headline
from vau.cloud.explain.facts import (
    VIEW_DETAIL,
    Earlier,
    FrameEvidence,
    growth,
    movement,
    onset,
    region_shares,
    scene_facts,
    similar_earlier,
    view_change,
)
from vau.common.regions import DETAIL_LOST

G = (12, 12)  # rows, cols: 3x3 regions of 4x4 cells


def blob(row: int, col: int, size: int = 2) -> tuple[int, ...]:
    """A size x size square of cells with its upper-left cell at (row, col)."""
    return tuple((row + r) * G[1] + col + c for r in range(size) for c in range(size))


def frames(
    cells: list[tuple[int, ...]], scores: list[float] | None = None, dt: float = 0.5
) -> list[FrameEvidence]:
    """Frames 0.5 s apart from t = 2.0 whose hot patches are `cells`."""
    scores = scores or [0.9] * len(cells)
    return [
        FrameEvidence(2.0 + k * dt, s, tuple(range(0, 144, 2)), G, hot=c)
        for k, (c, s) in enumerate(zip(cells, scores, strict=True))
    ]


def test_movement_when_blob_moves_right_then_right_with_speed_in_view_widths() -> None:
    fs = frames([blob(5, col) for col in (0, 3, 6, 9)])  # 9 cells = 0.75 views in 1.5 s
    direction, speed = movement(fs)
    assert direction == "right" and abs(speed - 0.5) < 1e-9
    facts = scene_facts(fs, 2.0, 0.9, 2.0)
    assert facts.movement == "right" and not facts.view_change
    assert facts.where[0][0] in ("centre left", "centre", "centre right")


def test_movement_when_blob_moves_up_left_or_back_and_forth_then_up_left_mixed() -> None:
    assert movement(frames([blob(row, 5) for row in (10, 7, 4, 1)]))[0] == "up"
    assert movement(frames([blob(5, col) for col in (9, 6, 3, 0)]))[0] == "left"
    assert movement(frames([blob(r, r) for r in (0, 2, 4, 6, 8)]))[0] == "mixed"  # diagonal
    zigzag = [blob(5, col) for col in (0, 3, 0, 3, 0, 3, 6)]
    assert movement(frames(zigzag))[0] == "mixed"


def test_movement_when_one_end_frame_jitters_then_the_weighted_line_decides() -> None:
    """A 2x2 object moves right along row 5; in the last frame only one stray cell of it is hot,
    lower down. Its first and last centres point right and down alike (mixed), but that frame
    holds one cell against the others' four: the line through the centres says right."""
    cells = [blob(5, col) for col in (0, 3, 6, 9)] + [(10 * G[1] + 9,)]
    fs = frames(cells, dt=1.0)
    assert movement(fs)[0] == "right"


def test_movement_when_another_region_lights_up_then_the_tracked_one_is_followed() -> None:
    """The object moves right along row 9; in two frames something far away (upper right) is
    more anomalous: the track follows the object, not the jump."""
    cells = [blob(9, c) for c in (0, 2, 4, 6)]
    cells[1] = blob(0, 10) + cells[1]
    cells[2] = blob(0, 10) + cells[2]
    fs = frames(cells, [0.9, 0.8, 0.8, 0.7])
    assert movement(fs)[0] == "right"
    far_only = frames([blob(9, 0), blob(0, 10), blob(0, 10)], [0.9, 0.8, 0.8])
    assert movement(far_only) == ("none", 0.0)  # the region left; the far one is not it


def test_movement_when_a_walker_is_also_unusual_then_the_heavier_track_is_the_region() -> None:
    """A 3x3 object moves left along row 8 while a 1-cell walker crosses row 1 to the right;
    the walker's cell is the most anomalous of the peak frame, but the object's track holds
    more cells over the event: the movement is the object's."""
    walker = [(1 * G[1] + col,) for col in (0, 3, 6, 9)]
    thing = [blob(8, col, 3) for col in (9, 7, 5, 3)]
    cells = [w + t for w, t in zip(walker, thing, strict=True)]  # the walker's cell first
    fs = frames(cells, [0.7, 0.9, 0.8, 0.7])
    assert movement(fs)[0] == "left"
    assert movement(frames(walker))[0] == "right"


def test_movement_when_a_fast_car_passes_a_person_who_stops_then_the_car_is_followed() -> None:
    """A 3x3 car crosses row 8 to the right, 3 cells a frame; from its third frame a person
    stands just above where it was. The person is nearer the car's last place than the car is,
    but the car's track expects it 3 cells on (its velocity): the track stays on the car. Without
    the velocity (`follow=False`, what the category classifier reads) the person takes the
    track over and the crossing reads as a short wander."""
    car = [blob(8, col, 3) for col in (0, 3, 6, 9)] + [(), ()]
    person = [(), ()] + [blob(7, 3)] * 4
    fs = frames([c + p for c, p in zip(car, person, strict=True)])
    direction, speed = movement(fs)
    assert direction == "right" and abs(speed - 0.5) < 1e-9
    assert movement(fs, follow=False)[0] == "mixed"


def test_movement_when_blob_stays_or_one_frame_then_none() -> None:
    assert movement(frames([blob(5, 5)] * 4)) == ("none", 0.0)
    assert movement(frames([blob(5, 5), blob(5, 6)])) == ("none", 0.0)  # 1/12 of a view
    assert movement(frames([blob(5, 0)])) == ("none", 0.0)


def test_where_when_blob_in_lower_left_then_region_and_view_share() -> None:
    facts = scene_facts(frames([blob(9, 0, 3)] * 3), 2.0, 0.9, 2.0)
    assert facts.where == (("lower left", 1.0),) and facts.hot
    assert abs(facts.view_share - 9 / 144) < 1e-9


def test_where_when_a_walker_elsewhere_is_also_hot_then_the_region_of_the_hottest_patch() -> None:
    """A 2x2 thing in the lower right is each frame's most anomalous patch; a 3x3 walker in the
    upper left is past the edge of normal too and holds more cells. `where` names the
    thing's region; every hot cell still counts for the share of the view, and when the whole
    view changed every region it reached is named."""
    thing = blob(9, 9)
    walker = blob(0, 0, 3)
    facts = scene_facts(frames([thing + walker] * 3), 2.0, 0.9, 2.0)
    assert facts.where == (("lower right", 1.0),)
    assert region_shares(frames([thing + walker] * 3))[0][0] == "upper left"
    assert abs(facts.view_share - (4 + 9) / 144) < 1e-9
    lit = [replace(f, pixel_change=0.8) for f in frames([thing + walker] * 3)]  # lights failed
    changed = scene_facts(lit, 2.0, 0.9, 2.0)
    assert changed.view_change and changed.where[0][0] == "upper left"
    assert {n for n, _ in changed.where} == {"upper left", "lower right"}


def test_where_and_movement_when_quiet_frames_hold_walkers_then_read_from_carrying_frames() -> None:
    """A thing stays in the lower left while the event's score is at or past the entry level;
    the window's quieter frames (0.4, 0.5, 0.5) hold only a walker past the edge of normal,
    crossing the top leftwards, with more cells than the thing. Where and which way are the
    thing's (lower left, none); over all frames they would be the walker's."""
    walker = [blob(0, 8, 4), blob(0, 6, 4), blob(0, 4, 4)]
    cells = [walker[0], walker[1], blob(9, 0, 3), blob(9, 0, 3), walker[2]]
    fs = frames(cells, [0.4, 0.5, 0.8, 0.9, 0.5])
    facts = scene_facts(fs, 2.0, 0.9, 3.5)
    assert facts.where == (("lower left", 1.0),) and facts.movement == "none"
    assert region_shares(fs)[0][0] != "lower left" and movement(fs)[0] == "left"
    assert abs(facts.view_share - (9 + 8 * 4) / 144) < 1e-9  # the share of the view: all frames
    quiet = frames(walker, [0.4, 0.5, 0.45])  # no frame carried it: all frames are read
    assert scene_facts(quiet, 2.0, 0.5, 2.5).movement == "left"


def test_view_change_when_hot_patches_cover_the_view_then_true_and_no_movement() -> None:
    everything = tuple(range(144))
    facts = scene_facts(frames([everything] * 4), 2.0, 0.9, 2.0)
    assert facts.view_change and facts.movement == "none" and facts.view_share == 1.0
    every_other = tuple(range(0, 144, 2))  # half the view past normal, scattered all over
    assert view_change(frames([every_other] * 3))
    assert not view_change(frames([blob(5, 5)] * 3))


def test_view_change_when_a_local_blob_has_a_few_stray_hot_patches_then_false() -> None:
    """A 4 x 4 block in the lower left and one stray patch in each of 4 other regions: 14% of
    the view past normal is still a local anomaly, however many regions it touches."""
    block = tuple(r * G[1] + c for r in range(8, 12) for c in range(4))
    strays = (0, 6, 11, 71)  # upper left, upper centre, upper right, centre right
    assert not view_change(frames([block + strays] * 3))


def test_view_change_when_wide_in_a_third_of_the_frames_then_true_fewer_then_false() -> None:
    wide = tuple(range(72))  # the upper half of the view past normal
    assert view_change(frames([wide, blob(5, 5), blob(5, 5)]))
    assert not view_change(frames([wide, blob(5, 5), blob(5, 5), blob(5, 5)]))


def test_view_change_when_hot_patches_spread_over_most_of_the_view_then_false() -> None:
    """A haze rising from the lower left until it covers two thirds of the view is a thing
    spreading (growth), not the camera: a view change comes at once."""
    small = tuple(r * G[1] + c for r in range(8, 12) for c in range(4))
    larger = tuple(r * G[1] + c for r in range(4, 12) for c in range(8))
    most = tuple(r * G[1] + c for r in range(12) for c in range(8))
    spreading = frames([small, larger, most, most])
    assert growth(spreading)[0] == "spreading" and not view_change(spreading)
    assert view_change(frames([most, most, most, most]))  # there from the first frame


def test_view_change_when_only_kept_patches_or_global_component_then_false() -> None:
    kept_only = [FrameEvidence(2.0 + k, 0.9, tuple(range(144)), G) for k in range(3)]
    assert not view_change(kept_only)  # SETS keeps a fixed share: says nothing about the view
    fs = [
        FrameEvidence(2.0, 0.9, blob(5, 5), G, hot=blob(5, 5), components=(("global", 0.9),)),
        FrameEvidence(2.5, 0.9, blob(5, 5), G, hot=blob(5, 5), components=(("global", 0.9),)),
    ]
    assert not view_change(fs)  # the class token moved, but only a local region is past normal


def test_view_change_when_most_pixels_left_the_background_on_average_then_true() -> None:
    """The lights fail: few patches are past normal (the tokens shrug it off) but most of the
    pixels are off the background, on average over the frames that carry the measure."""
    local = frames([blob(5, 5)] * 4)
    dark = [replace(f, pixel_change=v) for f, v in zip(local, (0.9, 0.8, 0.2, 0.1), strict=True)]
    assert view_change(dark)  # mean 0.5
    facts = scene_facts(dark, 2.0, 0.9, 2.0)
    assert facts.view_change and facts.movement == "none"
    walking = [replace(f, pixel_change=v) for f, v in zip(local, (0.9, 0.1, 0.1, 0.1), strict=True)]
    assert not view_change(walking)  # one wide frame is not most of the view over the event
    unmeasured = [replace(f, pixel_change=None) for f in local]
    assert not view_change(unmeasured)  # an older edge: the hot patches alone decide


def test_light_when_the_view_changed_and_went_dark_as_a_whole_then_darker_and_said() -> None:
    """Failing light (or a cover) shifts the whole view one way; a camera knocked aside changes
    the view with little net shift. Only a view change says which way the light went."""
    local = frames([blob(5, 5)] * 4)

    def measured(share: float, shifts: list[float]) -> list[FrameEvidence]:
        return [
            replace(f, pixel_change=share, brightness=b) for f, b in zip(local, shifts, strict=True)
        ]

    dark = measured(0.9, [-0.05, -0.3, -0.35, -0.3])  # mean -0.25
    s = scene_facts(dark, 2.0, 0.9, 2.0)
    assert s.view_change and s.light == "darker" and s.brightness == -0.25
    ev = EventEvidence("cam-0", "ev-1", 2.0, 4.0, 0.9, 2.0, "", tuple(dark))
    f = facts(ev)
    said = "The view went darker as a whole: its mean brightness fell by 25% of full scale."
    assert said in evidence_lines(f)
    assert headline(f) == "View went darker over the whole frame"
    assert scene_facts(measured(0.9, [0.2] * 4), 2.0, 0.9, 2.0).light == "brighter"
    knocked = scene_facts(measured(0.9, [0.04, -0.05, 0.02, 0.0]), 2.0, 0.9, 2.0)
    assert knocked.view_change and knocked.light is None
    assert headline(facts(replace(ev, frames=tuple(measured(0.9, [0.0] * 4))))) == (
        "View change over the whole frame"
    )
    local_dark = scene_facts(measured(0.1, [-0.3] * 4), 2.0, 0.9, 2.0)
    assert not local_dark.view_change and local_dark.light is None  # no view change: no light
    assert scene_facts(local, 2.0, 0.9, 2.0).brightness is None  # an older edge: unmeasured


def test_view_change_when_the_view_lost_its_detail_though_few_pixels_changed() -> None:
    """A defocused lens over a view with a plain wall: under half the pixels change and the hot
    patches sit where the texture was, but the view kept little of its detail: a view change,
    said as one, with no region to name and no movement."""
    local = frames([blob(1, 8), blob(1, 8), blob(2, 8), blob(1, 9)])  # the textured upper right

    def measured(kept: list[float | None]) -> list[FrameEvidence]:
        return [replace(f, pixel_change=0.4, detail=d) for f, d in zip(local, kept, strict=True)]

    soft = scene_facts(measured([0.9, 0.55, 0.5, 0.6]), 2.0, 0.9, 2.0)  # mean 0.64
    assert soft.view_change and soft.movement == "none"
    ev = EventEvidence("cam-0", "ev-1", 2.0, 4.0, 0.9, 2.0, "", tuple(measured([0.5] * 4)))
    assert headline(facts(ev)) == "View change over the whole frame"
    assert not view_change(measured([1.0, 0.95, 0.9, 1.05]))  # as much detail as usual
    assert not view_change(measured([None] * 4))  # an older edge: the pixels' share decides
    assert view_change(measured([None, None, 0.6, None]))  # the frames that carry it
    # the window's frames after the event (the view sharp again, above the background that took
    # in the blur) do not carry it and do not count
    after = [replace(f, t=f.t + 2.0, score=0.2, detail=1.3) for f in measured([0.6] * 4)]
    assert view_change(measured([0.6] * 4) + after)


def test_a_defocus_the_background_partly_took_in_is_still_a_view_change() -> None:
    """The edge measures detail against a background that takes in part of a lasting blur, so a
    view the synthesiser's truth sees keep under `DETAIL_LOST` of its source's detail keeps more
    of the background's: past the truth's edge, up to `VIEW_DETAIL`, it is a view change still;
    a view that kept more is not."""
    local = frames([blob(1, 8), blob(1, 8), blob(2, 8), blob(1, 9)])

    def measured(kept: float) -> list[FrameEvidence]:
        return [replace(f, pixel_change=0.1, detail=kept) for f in local]

    assert DETAIL_LOST < VIEW_DETAIL
    assert view_change(measured((DETAIL_LOST + VIEW_DETAIL) / 2))
    assert view_change(measured(VIEW_DETAIL))
    assert not view_change(measured(VIEW_DETAIL + 0.05))


def test_onset_when_score_jumps_then_sudden_when_it_ramps_then_gradual() -> None:
    jump = frames([blob(5, 5)] * 5, [0.1, 0.95, 0.9, 0.95, 0.9])
    assert onset(jump, 2.0, 0.95, 3.0) == 0.5
    assert scene_facts(jump, 2.0, 0.95, 3.0).onset == "sudden"
    ramp = frames([blob(5, 5)] * 6, [0.3, 0.4, 0.5, 0.6, 0.7, 0.9])
    assert onset(ramp, 2.0, 0.9, 4.5) == 2.5  # 0.7 at t = 4.0 is below 0.8 * 0.9
    assert scene_facts(ramp, 2.0, 0.9, 4.5).onset == "gradual"
    assert onset([], 2.0, 0.9, 2.5) == 0.5  # no frames: the event's peak time


def test_growth_when_region_grows_shrinks_or_stays_then_named() -> None:
    growing = [blob(5, 5, 1), blob(4, 4, 3), blob(3, 3, 5), blob(2, 2, 7)]
    kind, (old, new) = growth(frames(growing))
    assert kind == "spreading" and new > old
    assert growth(frames(growing[::-1]))[0] == "shrinking"
    assert growth(frames([blob(5, 5, 3)] * 4))[0] == "steady"
    assert growth(frames([blob(5, 5, 3)]))[0] == "unknown"


def test_similar_earlier_when_regions_overlap_then_newest_overlapping_event() -> None:
    earlier = [
        Earlier("ev-1", 10.0, ("upper left",)),
        Earlier("ev-2", 20.0, ("lower right", "centre")),
        Earlier("ev-3", 30.0, ("upper right",)),
    ]
    assert similar_earlier(("centre", "lower left"), earlier) == earlier[1]
    assert similar_earlier(("lower centre",), earlier) is None
    facts = scene_facts(frames([blob(0, 0)] * 2), 2.0, 0.9, 2.0, earlier)
    assert facts.earlier == earlier[0]


def with_flow(fs: list[FrameEvidence], flows: list[float | None]) -> list[FrameEvidence]:
    """The frames with the edge's calibrated `flow` part (None: the frame has none)."""
    return [
        replace(f, components=(("appearance", 0.2),) + ((("flow", v),) if v is not None else ()))
        for f, v in zip(fs, flows, strict=True)
    ]


def test_faster_when_the_flow_part_is_past_normal_in_a_third_of_the_frames_then_said() -> None:
    base = frames([blob(5, 5)] * 6)
    flows: list[float | None] = [0.1, 0.8, 0.2, 0.7, 0.1, None]
    fast = scene_facts(with_flow(base, flows), 2.0, 0.9, 2.0)
    assert fast.faster  # 2 of the 5 frames that carry it
    ev = EventEvidence("cam-0", "ev-1", 2.0, 5.0, 0.9, 2.0, "", tuple(with_flow(base, flows)))
    f = facts(ev)
    assert "Things in the view moved faster than is usual for this camera." in evidence_lines(f)
    assert headline(f) == "Anomaly in the centre, faster than usual"
    assert not scene_facts(with_flow(base, [0.1, 0.8, 0.2, 0.3, 0.1, 0.1]), 2.0, 0.9, 2.0).faster
    assert not scene_facts(base, 2.0, 0.9, 2.0).faster  # an edge without the part says nothing


def test_stayed_when_the_static_part_is_past_normal_in_a_third_of_the_frames_then_said() -> None:
    still = [0.1, 0.7, 0.9, 0.2, 0.1]
    base = [
        replace(f, components=(("appearance", 0.2), ("static", v)))
        for f, v in zip(frames([blob(9, 2)] * 5), still, strict=True)
    ]
    ev = EventEvidence("cam-0", "ev-1", 2.0, 5.0, 0.9, 2.0, "", tuple(base))
    f = facts(ev)
    assert f.scene.stayed and f.scene.movement == "none"
    assert "Something new came to rest in the lower left and stayed still." in evidence_lines(f)
    assert headline(f) == "Something came to rest in the lower left"
    moved = [replace(x, hot=blob(9, 2 + 3 * k)) for k, x in enumerate(base)]
    f = facts(replace(ev, frames=tuple(moved)))
    assert f.scene.stayed and f.scene.movement == "right"  # no one place it came to rest in
    assert "Something new came to rest in the view and stayed still." in evidence_lines(f)
    quiet = [replace(f, components=(("static", 0.2),)) for f in base]
    assert not scene_facts(quiet, 2.0, 0.9, 2.0).stayed
    wide = [replace(f, hot=tuple(range(144))) for f in base]  # the whole view changed instead
    assert not scene_facts(wide, 2.0, 0.9, 2.0).stayed
