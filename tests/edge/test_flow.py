"""The pixel flow between source frames (`vau.edge.flow`): hand-made motion, and real footage
played at its own speed and three times faster."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from support.footage import first_frames, write_clip

from vau.edge.flow import MAX_GAP_S, FlowMeter, grey
from vau.edge.sampling import sampled
from vau.edge.settings import SourceSettings
from vau.edge.sources import open_source
from vau.edge.types import U8


def scene(x: int) -> U8:
    """A textured 320 x 240 view with a bright textured block whose left edge is at x."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 60, (240, 320, 3)).astype(np.uint8)
    image = np.asarray(cv2.GaussianBlur(noise, (5, 5), 0), np.uint8)
    block = np.random.default_rng(1).integers(150, 255, (40, 40, 3)).astype(np.uint8)
    image[100:140, x : x + 40] = block
    return image


def speed_of(step_px: int, dt: float = 0.1, frames: int = 6) -> float | None:
    meter = FlowMeter()
    for i in range(frames):
        meter.add(grey(scene(40 + step_px * i)), i * dt)
    return meter.take()


def test_a_block_moving_twice_as_fast_measures_about_twice_the_speed() -> None:
    slow, fast = speed_of(3), speed_of(6)
    assert slow is not None and fast is not None
    # 3 px per 0.1 s across a 320 px view: ~0.09 views/s
    assert 0.05 < slow < 0.15
    assert 1.6 < fast / slow < 2.4


def test_a_still_view_measures_almost_no_speed() -> None:
    speed = speed_of(0)
    assert speed is not None and speed < 0.02


def test_take_gives_the_mean_since_the_last_take_and_none_when_nothing_was_measured() -> None:
    meter = FlowMeter()
    assert meter.take() is None
    meter.add(grey(scene(40)), 0.0)
    assert meter.take() is None  # one frame: no pair yet
    meter.add(grey(scene(43)), 0.1)
    assert meter.take() is not None and meter.take() is None


def test_frames_further_apart_than_the_gap_are_not_measured() -> None:
    meter = FlowMeter()
    meter.add(grey(scene(40)), 0.0)
    meter.add(grey(scene(43)), MAX_GAP_S + 0.05)  # a stall, or a source below 5 fps
    assert meter.take() is None


@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_a_frame_not_later_than_the_last_is_not_measured(bad: float) -> None:
    meter = FlowMeter()
    meter.add(grey(scene(40)), 0.0)
    meter.add(grey(scene(43)), bad)
    assert meter.take() is None


def kept_flows(path: Path) -> list[float]:
    cfg = SourceSettings(uri=str(path), fps=2.0)
    with open_source(cfg, "cam-0", None, None) as source:
        return [f.flow for f in sampled(source, cfg.fps, "cam-0") if f.flow is not None]


def test_real_footage_three_times_faster_measures_faster_on_the_kept_frames(
    vtest_path: Path, tmp_path: Path
) -> None:
    """vtest (10 fps) and the same 30 s played 3x faster: the kept frames (2 fps) carry the
    mean pixel speed of the source pairs between them."""
    frames = first_frames(vtest_path, 300)
    paths = {
        name: write_clip(tmp_path / f"{name}.avi", frames[::step])
        for name, step in (("normal", 1), ("fast", 3))
    }
    normal, fast = kept_flows(paths["normal"]), kept_flows(paths["fast"])
    assert len(normal) >= 55 and len(fast) >= 18  # every kept frame after the first
    ratio = float(np.median(fast) / np.median(normal))
    print(f"vtest pixel speed: median {np.median(normal):.3f} views/s; 3x faster: x{ratio:.2f}")
    assert 2.0 < ratio < 4.0
