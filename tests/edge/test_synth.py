"""Synthetic anomalies on the real footage: effects stay inside their spans; datasets are
deterministic by seed and their manifests agree with the clips written."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vau.edge.manifest import NORMAL, load_manifest
from vau.edge.settings import SourceSettings
from vau.edge.sources import open_source
from vau.edge.synth import (
    HELDOUT_KINDS,
    KINDS,
    ClipPlan,
    Footage,
    build_dataset,
    make_clip,
    render_clip,
    survey,
)
from vau.edge.types import U8

SPAN = (10, 25)
FRAMES = 40
SPEED = 3


@pytest.fixture(scope="module")
def vtest(vtest_path: Path) -> Footage:
    return survey(vtest_path)


@pytest.fixture(scope="module")
def source_frames(vtest_path: Path) -> list[U8]:
    needed = FRAMES + (SPAN[1] - SPAN[0]) * (SPEED - 1)
    with open_source(SourceSettings(uri=str(vtest_path)), "test") as source:
        return [frame.image for frame, _ in zip(source, range(needed), strict=False)]


def plan(footage: Footage, kind: str, seed: int = 7) -> ClipPlan:
    speed = SPEED if kind == "running" else 1
    return ClipPlan(f"{kind}_test", footage, kind, 0, FRAMES, SPAN, speed, seed, "test")


def test_survey_of_vtest_finds_its_format_a_quiet_region_and_moving_people(
    vtest: Footage,
) -> None:
    assert (vtest.fps, vtest.size, vtest.frames) == (10.0, (768, 576), 795)
    x, y, w, h = vtest.quiet
    assert y >= 576 // 4 and x >= 0 and x + w <= 768 and y + h <= 576  # below the top row
    assert vtest.donors and all(d.mask.shape == d.image.shape[:2] for d in vtest.donors)
    assert all(d.mask.shape[0] > d.mask.shape[1] for d in vtest.donors)  # upright, person-like


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "running"])
def test_pixel_kind_changes_frames_only_inside_its_span(
    kind: str, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render_clip(plan(vtest, kind), source_frames)
    assert len(out) == FRAMES
    for i, frame in enumerate(out):
        if SPAN[0] <= i < SPAN[1]:
            changed = (np.abs(frame.astype(int) - source_frames[i]).max(axis=2) > 20).mean()
            assert changed > 0.01, f"{kind}: frame {i} in the span barely changed ({changed})"
        else:
            assert np.array_equal(frame, source_frames[i]), f"{kind}: frame {i} was changed"


def test_running_skips_frames_inside_its_span_and_continues_from_there(
    vtest: Footage, source_frames: list[U8]
) -> None:
    out = render_clip(plan(vtest, "running"), source_frames)
    a, b = SPAN
    for i, frame in enumerate(out):
        j = i if i < a else a + (i - a) * SPEED if i < b else i + (b - a) * (SPEED - 1)
        assert np.array_equal(frame, source_frames[j]), f"frame {i} should be source {j}"


def test_effects_are_deterministic_by_seed(vtest: Footage, source_frames: list[U8]) -> None:
    for kind in ("intruder", "smoke", "tamper"):
        first = render_clip(plan(vtest, kind, seed=3), source_frames)[SPAN[0] + 5]
        again = render_clip(plan(vtest, kind, seed=3), source_frames)[SPAN[0] + 5]
        other = render_clip(plan(vtest, kind, seed=4), source_frames)[SPAN[0] + 5]
        assert np.array_equal(first, again)
        assert not np.array_equal(first, other), f"{kind}: the seed changes nothing"


def test_smoke_grows_during_its_span(vtest: Footage, source_frames: list[U8]) -> None:
    out = render_clip(plan(vtest, "smoke"), source_frames)

    def change(i: int) -> float:
        return float(np.abs(out[i].astype(int) - source_frames[i]).mean())

    assert change(SPAN[1] - 1) > 2 * change(SPAN[0])


@pytest.fixture(scope="module")
def datasets(
    tmp_path_factory: pytest.TempPathFactory, vtest_path: Path, bikes_path: Path
) -> dict[str, Path]:
    footage = [vtest_path, bikes_path]
    root = tmp_path_factory.mktemp("synth")
    return {
        name: build_dataset(footage, root / name, clips_per_kind=2, clip_seconds=4.0, seed=seed)
        for name, seed in (("a", 11), ("b", 11), ("c", 12))
    }


def test_dataset_is_deterministic_by_seed(datasets: dict[str, Path]) -> None:
    a, b, c = (datasets[k].read_text("utf-8") for k in "abc")
    assert a == b and a != c
    for line in a.splitlines():
        video = json.loads(line)["video"]
        first, second = (datasets[k].parent / video for k in "ab")
        assert first.read_bytes() == second.read_bytes(), f"{video} differs between runs"


def _duration(video: Path) -> tuple[float, int]:
    cap = cv2.VideoCapture(str(video))
    fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return count / fps, count


def test_manifest_spans_lie_within_each_clip_and_every_kind_is_tested(
    datasets: dict[str, Path],
) -> None:
    clips = load_manifest(datasets["a"])
    assert len(clips) == 2 * (len(KINDS) + 1)
    for clip in clips:
        duration, frames = _duration(clip.path)
        assert frames > 0
        if clip.kind == NORMAL:
            assert clip.spans == ()
            continue
        ((start, end),) = clip.spans
        assert 0.0 < start < end < duration, f"{clip.path.name}: {clip.spans} vs {duration} s"
        assert end - start >= 0.3 * duration  # "several seconds" of a short clip
    for kind in (*KINDS, NORMAL):
        splits = sorted(c.split for c in clips if c.kind == kind)
        assert splits == ["test", "train"], f"{kind}: {splits}"


def test_dataset_records_its_provenance(datasets: dict[str, Path]) -> None:
    info = json.loads((datasets["a"].parent / "dataset.json").read_text("utf-8"))
    assert "demo-grade" in info["description"] and info["seed"] == 11
    assert [f["file"] for f in info["footage"]] == ["vtest.avi", "bikes.mp4"]
    assert info["clips"] == {"train": 5, "test": 5}


def test_make_clip_injects_a_held_out_kind_and_refuses_an_unknown_one(
    tmp_path: Path, vtest_path: Path
) -> None:
    clip = make_clip(vtest_path, tmp_path / "lights.avi", "lights", (1.0, 2.0), 3.0, seed=1)
    assert clip.kind in HELDOUT_KINDS and clip.spans == ((1.0, 2.0),)
    assert _duration(clip.path) == (3.0, 30)
    with pytest.raises(ValueError, match=r"choose from intruder, .*, lights"):
        make_clip(vtest_path, tmp_path / "x.avi", "flood", (1.0, 2.0), 3.0)
