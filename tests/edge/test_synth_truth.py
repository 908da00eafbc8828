"""The synthesiser's ground truth: where and which way an effect went, from the pixels it drew."""

from __future__ import annotations

import cv2
import numpy as np

from vau.common.regions import DETAIL_LOST, VIEW_CHANGE_SHARE
from vau.edge.synth_truth import FrameChange, clip_truth, frame_change

H, W = 160, 160  # 10 x 10 pixels per cell of the 16 x 16 grid


def scene() -> np.ndarray:
    """Blocks of 8 x 8 pixels, grey levels 40-200: a view's contrast and texture that survive
    the edge's 112 px copy (the detail measure reads the gradient over the grey levels' spread,
    and per-pixel noise of a narrow range would be all spread and no gradient there)."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(40, 200, (H // 8, W // 8, 3), dtype=np.uint8)
    return np.asarray(cv2.resize(blocks, (W, H), interpolation=cv2.INTER_NEAREST), np.uint8)


def with_square(base: np.ndarray, x: int, y: int, size: int = 30) -> np.ndarray:
    out = base.copy()
    out[y : y + size, x : x + size] = 250
    return out


def test_a_square_drawn_on_a_frame_changes_only_its_cells() -> None:
    base = scene()
    change = frame_change(base, with_square(base, 0, 0, 20))
    assert change.cells == (0, 1, 16, 17)
    assert change.centre() == (1 / 16, 1 / 16)
    assert frame_change(base, base).cells == ()


def test_a_square_moving_right_along_the_bottom_is_lower_and_moving_right() -> None:
    base = scene()
    changes = [frame_change(base, with_square(base, x, 120)) for x in range(0, 130, 10)]
    truth = clip_truth("intruder", changes)
    assert truth["movement"] == "right" and truth["view_change"] is False
    assert truth["where"][0].startswith("lower") and set(truth["where"]) <= {
        "lower left",
        "lower centre",
        "lower right",
    }


def test_a_still_object_is_not_moving_and_names_its_one_region() -> None:
    base = scene()
    changes = [frame_change(base, with_square(base, 10, 10))] * 8
    truth = clip_truth("abandoned", changes)
    # a white square over 3.5 % of the view widens the grey levels' spread: the measure dips to
    # about 0.8, still far from a view that lost its detail
    assert DETAIL_LOST < truth.pop("detail") < 1.0
    assert truth == {
        "where": ["upper left"],
        "movement": "none",
        "view_change": False,
        "share": round(9 / 256, 3),  # pixels 10-39: cells 1-3 in both directions
    }


def test_a_dimmed_view_is_a_view_change_with_no_movement() -> None:
    base = scene()
    dim = (base * 0.4).astype(np.uint8)
    truth = clip_truth("lights", [frame_change(base, dim)] * 4)
    assert truth["view_change"] is True and truth["movement"] == "none"
    assert truth["share"] == 1.0 and len(truth["where"]) == 0  # no region holds 20 % of nine


def test_a_defocused_view_with_a_plain_half_is_a_view_change_though_few_cells_changed() -> None:
    """Blurring changes only the textured half's pixels (under half the cells), but the view
    kept little of its detail: the camera was defocused, a view change, as the edge says."""
    base = scene()
    base[:, : 2 * W // 3] = 90  # a plain wall over two thirds of the view
    soft = cv2.GaussianBlur(base, (0, 0), 5.0)
    truth = clip_truth("tamper", [frame_change(base, soft)] * 4)
    assert truth["share"] < VIEW_CHANGE_SHARE and truth["detail"] <= DETAIL_LOST
    assert truth["view_change"] is True and truth["movement"] == "none"


def test_running_draws_nothing_so_only_its_view_change_is_known() -> None:
    truth = clip_truth("running", [FrameChange(())] * 5)
    assert truth == {"where": None, "movement": None, "view_change": False, "share": 0.0}
