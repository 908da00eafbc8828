"""How much of the view departs from the recent background (`vau.edge.view_change`): hand-made
views, and real footage whose lights fail and whose camera is knocked aside."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from support.footage import first_frames, write_clip

from vau.cloud.explain.facts import LIGHT_SHIFT
from vau.common.regions import DETAIL_LOST, VIEW_CHANGE_SHARE
from vau.edge.flow import grey
from vau.edge.pixels import PixelMeter
from vau.edge.sampling import sampled
from vau.edge.settings import SourceSettings
from vau.edge.sources import open_source
from vau.edge.types import U8
from vau.edge.view_change import MAX_GAP_S, ViewChange


def textured(seed: int = 0) -> U8:
    noise = np.random.default_rng(seed).integers(40, 220, (112, 112)).astype(np.uint8)
    return np.asarray(cv2.GaussianBlur(noise, (5, 5), 0), np.uint8)


def settled(view: U8) -> ViewChange:
    """A meter that has watched `view` still for 2 s."""
    meter = ViewChange()
    assert meter.take() is None and meter.brightness() is None
    for k in range(20):
        meter.add(view, 0.1 * k)
    assert meter.take() == 0.0 and meter.brightness() == 0.0
    return meter


def test_a_still_view_departs_nowhere_and_a_dimmed_one_almost_everywhere() -> None:
    view = textured()
    meter = settled(view)
    meter.add((view * 0.4).astype(np.uint8), 2.0)  # the lights fail
    share = meter.take()
    assert share is not None and share > 0.9
    shift = meter.brightness()
    assert shift is not None and shift < -0.15  # darker as a whole: 60 % of a mid grey less


def test_a_view_moved_aside_changes_much_with_little_net_brightness_shift() -> None:
    view = textured()
    meter = settled(view)
    meter.add(np.roll(view, 40, axis=1), 2.0)  # the camera knocked aside
    share, shift = meter.take(), meter.brightness()
    assert share is not None and share > 0.15
    assert shift is not None and abs(shift) < 0.02


def test_a_small_thing_moving_departs_in_its_own_share_of_the_view() -> None:
    view = textured()
    meter = settled(view)
    moved = view.copy()
    moved[40:60, 40:60] = 255  # a bright 20 x 20 thing on a 112 x 112 view of mid greys
    meter.add(moved, 2.0)
    share = meter.take()
    assert share is not None and abs(share - 400 / 112**2) < 0.01


def test_a_change_that_persists_fades_into_the_background() -> None:
    view, meter = textured(), ViewChange(tau_s=1.0)
    meter.add(view, 0.0)
    dark = (view * 0.4).astype(np.uint8)
    shares = []
    for k in range(1, 60):
        meter.add(dark, 0.1 * k)
        shares.append(meter.take())
    assert shares[0] is not None and shares[0] > 0.9
    assert shares[-1] == 0.0  # after ~6 time constants the dark view is the background


def test_after_a_gap_the_background_restarts_instead_of_comparing_across_it() -> None:
    view, meter = textured(), ViewChange()
    meter.add(view, 0.0)
    meter.add(textured(1), MAX_GAP_S + 0.5)  # another view after a stall
    assert meter.take() == 0.0


@pytest.mark.parametrize(("tau", "delta"), [(0.0, 25.0), (10.0, -1.0)])
def test_settings_that_cannot_work_are_refused(tau: float, delta: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        ViewChange(tau, delta)


def test_the_pixel_meter_reads_speed_and_view_change_from_each_source_frame() -> None:
    meter = PixelMeter()
    view = np.asarray(
        cv2.cvtColor(cv2.resize(textured(), (320, 240)), cv2.COLOR_GRAY2BGR), np.uint8
    )
    meter.add(view, 0.0)
    meter.add(view, 0.1)
    reading = meter.take()
    assert reading.flow is not None and reading.flow < 0.02
    assert reading.pixel_change == 0.0 and reading.brightness == 0.0
    assert meter.seconds > 0.0
    assert grey(view).shape == (112, 112)


def kept_changes(path: Path) -> list[tuple[float, float, float]]:
    """(t, pixel_change, brightness) of each kept frame that has them."""
    cfg = SourceSettings(uri=str(path), fps=2.0)
    with open_source(cfg, "cam-0", None, None) as source:
        return [
            (f.t, f.pixel_change, f.brightness)
            for f in sampled(source, cfg.fps, "cam-0")
            if f.pixel_change and f.brightness is not None
        ]


def test_real_footage_people_walking_change_little_failing_lights_and_a_knock_most(
    vtest_path: Path, tmp_path: Path
) -> None:
    """vtest (10 fps, people walking): 20 s as shot, then the lights drop to half from 8 s to
    12 s, or the camera is knocked 40 % of a view aside from 14 s. The kept frames (2 fps) carry
    the share of the view off the background."""
    frames = first_frames(vtest_path, 200)
    shift = int(0.4 * frames[0].shape[1])

    def lights(k: int, image: U8) -> U8:
        return (image * 0.5).astype(np.uint8) if 80 <= k < 120 else image

    def knock(k: int, image: U8) -> U8:
        return np.roll(image, shift, axis=1) if k >= 140 else image

    readings = {
        name: kept_changes(write_clip(tmp_path / f"{name}.avi", frames, effect=effect))
        for name, effect in (("lights", lights), ("knock", knock))
    }

    def during(name: str, start: float, end: float) -> tuple[list[float], list[float]]:
        """(pixel_change, brightness) of the kept frames from `start` to `end` s."""
        rows = [(s, b) for t, s, b in readings[name] if start <= t < end]
        return [s for s, _ in rows], [b for _, b in rows]

    walking, walking_shift = during("lights", 1.0, 8.0)
    dark, dark_shift = during("lights", 8.0, 12.0)
    knocked, knocked_shift = during("knock", 14.0, 17.0)
    print(
        f"vtest pixel change: walking max {max(walking):.2f}, lights out median "
        f"{np.median(dark):.2f}, knocked median {np.median(knocked):.2f}; brightness: walking "
        f"max |{max(map(abs, walking_shift)):.3f}|, lights out median "
        f"{np.median(dark_shift):.3f}, knocked median {np.median(knocked_shift):.3f}"
    )
    assert max(walking) < 0.25
    assert np.median(dark) > 0.5 and np.median(knocked) > 0.5
    # the light's direction: darker as a whole only where the lights failed
    assert max(map(abs, walking_shift)) < LIGHT_SHIFT
    assert np.median(dark_shift) < -LIGHT_SHIFT
    assert abs(float(np.median(knocked_shift))) < LIGHT_SHIFT


def test_a_defocused_view_loses_its_detail_where_a_dimmed_one_keeps_it() -> None:
    """Half the view plain (a wall), half textured: blurred, only the texture's pixels change, too
    few for `pixel_change` to call it a view change, but the view keeps well under `DETAIL_LOST`
    of its detail; dimmed by half, it keeps all of it (the measure is contrast-normalised)."""
    view = textured()
    view[:, :56] = 128  # a plain wall on the left half
    meter = settled(view)
    assert meter.detail() == pytest.approx(1.0)
    meter.add(np.asarray(cv2.GaussianBlur(view, (0, 0), 2.0), np.uint8), 2.0)  # defocused
    share, kept = meter.take(), meter.detail()
    assert share is not None and share < VIEW_CHANGE_SHARE
    assert kept is not None and kept < DETAIL_LOST
    dimmed = settled(view)
    dimmed.add((view * 0.5).astype(np.uint8), 2.0)
    kept = dimmed.detail()
    assert kept is not None and kept > 0.9
    assert settled(np.full((112, 112), 90, np.uint8)).detail() is None  # none to compare with
    assert ViewChange().detail() is None  # nothing seen yet


def test_real_footage_defocused_loses_its_detail_and_people_walking_do_not(
    vtest_path: Path, tmp_path: Path
) -> None:
    """vtest as shot for 8 s, then defocused to 12 s (Gaussian blur, sigma 11 px of 768: the
    middle of the synthesiser's tamper): the kept frames carry the view's detail over its
    background's."""
    frames = first_frames(vtest_path, 120)

    def defocus(k: int, image: U8) -> U8:
        return np.asarray(cv2.GaussianBlur(image, (0, 0), 11.0), np.uint8) if k >= 80 else image

    cfg = SourceSettings(
        uri=str(write_clip(tmp_path / "blur.avi", frames, effect=defocus)), fps=2.0
    )
    with open_source(cfg, "cam-0", None, None) as source:
        kept = [(f.t, f.detail) for f in sampled(source, cfg.fps, "cam-0") if f.detail is not None]
    walking = [d for t, d in kept if 1.0 <= t < 8.0]
    blurred = [d for t, d in kept if 8.5 <= t < 12.0]
    print(f"vtest detail: walking {min(walking):.2f}-{max(walking):.2f}, defocused {blurred}")
    assert min(walking) > 0.85
    assert blurred and max(blurred) < DETAIL_LOST
