"""The held-out evaluation set on the real footage: the held-out effects stay inside their spans
and look like what they claim; manifests carry cameras and learn clips; `make-eval-set` writes
per-camera learn clips that end before any of that camera's test clips begins."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vau.edge.cli import main
from vau.edge.evalset import VIEWS, plan_view, source_seconds
from vau.edge.manifest import NORMAL, Clip, ManifestError, load_manifest, write_manifest
from vau.edge.settings import SourceSettings
from vau.edge.sources import open_source
from vau.edge.synth import (
    ADDED_KINDS,
    ALL_KINDS,
    HELDOUT_KINDS,
    KINDS,
    PROBE_KINDS,
    ClipPlan,
    Footage,
    plan_clip,
    render_clip,
    survey,
)
from vau.edge.types import U8

SPAN = (10, 30)
FRAMES = 40


@pytest.fixture(scope="module")
def vtest(vtest_path: Path) -> Footage:
    return survey(vtest_path)


@pytest.fixture(scope="module")
def source_frames(vtest_path: Path) -> list[U8]:
    with open_source(SourceSettings(uri=str(vtest_path)), "test") as source:
        return [frame.image for frame, _ in zip(source, range(FRAMES), strict=False)]


def render(footage: Footage, frames: list[U8], kind: str, seed: int = 7) -> list[U8]:
    return render_clip(ClipPlan(kind, footage, kind, 0, FRAMES, SPAN, 1, seed, "test"), frames)


def changed(frame: U8, source: U8, threshold: int = 25) -> np.ndarray:
    """(H, W) bool: where a rendered frame differs visibly from its source frame."""
    return np.asarray(np.abs(frame.astype(int) - source).max(axis=2) > threshold)


def box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around the True pixels of a mask."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# --- the held-out effects ---------------------------------------------------------------------


def test_the_held_out_kinds_are_new_and_all_kinds_lists_tuned_then_held_out() -> None:
    assert ("fallen", "abandoned", "lights", *ADDED_KINDS) == HELDOUT_KINDS
    assert ADDED_KINDS == ("crowd", "scuffle", "fire")
    assert KINDS == ("intruder", "running", "smoke", "tamper")
    assert ALL_KINDS == KINDS + HELDOUT_KINDS


@pytest.mark.parametrize("kind", HELDOUT_KINDS)
def test_held_out_kind_changes_only_its_span_and_is_deterministic_by_seed(
    kind: str, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, kind)
    for i, frame in enumerate(out):
        if SPAN[0] <= i < SPAN[1]:
            assert changed(frame, source_frames[i]).sum() > 100, f"{kind}: frame {i} unchanged"
        else:
            assert np.array_equal(frame, source_frames[i]), f"{kind}: frame {i} was changed"
    middle = SPAN[0] + 12
    assert np.array_equal(out[middle], render(vtest, source_frames, kind)[middle])
    other = render(vtest, source_frames, kind, seed=8)[middle]
    assert not np.array_equal(out[middle], other), f"{kind}: the seed changes nothing"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lights_dims_the_view_to_35_to_60_percent_under_a_colour_cast(
    seed: int, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, "lights", seed)
    for i in range(SPAN[0] + 5, SPAN[1]):  # after the ramp (20 % of the span)
        ratio = out[i].reshape(-1, 3).mean(axis=0) / source_frames[i].reshape(-1, 3).mean(axis=0)
        luma = float(ratio @ (0.114, 0.587, 0.299))
        assert 0.3 < luma < 0.65, f"frame {i}: brightness at {luma:.0%} of the source"
        assert abs(ratio[0] - ratio[2]) > 0.1, f"frame {i}: no colour cast ({ratio})"
    first = out[SPAN[0]].mean() / source_frames[SPAN[0]].mean()
    assert 0.65 < first < 1.0  # it ramps in rather than switching at once


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_abandoned_object_appears_at_the_span_start_small_in_the_lower_half_and_stays_put(
    seed: int, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, "abandoned", seed)
    h, w = source_frames[0].shape[:2]
    boxes = [box(changed(out[i], source_frames[i])) for i in range(*SPAN)]
    x0, y0, x1, y1 = boxes[0]
    assert y0 >= h // 2, f"the object starts at row {y0}, above the lower half"
    assert 0.03 * h <= y1 - y0 <= 0.12 * h and x1 - x0 <= 0.2 * w, f"not bag-sized: {boxes[0]}"
    for other in boxes[1:]:
        assert np.abs(np.subtract(other, boxes[0])).max() <= 2, f"it moved: {other}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fallen_person_topples_early_then_lies_still_in_the_lower_two_thirds(
    seed: int, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, "fallen", seed)
    h, w = source_frames[0].shape[:2]
    x0, y0, x1, y1 = box(changed(out[SPAN[0]], source_frames[SPAN[0]]))
    assert y1 - y0 > x1 - x0, "the person should still be upright when the span starts"
    lying = [box(changed(out[i], source_frames[i])) for i in range(SPAN[0] + 3, SPAN[1])]
    for x0, y0, x1, y1 in lying:
        assert x1 - x0 > 1.3 * (y1 - y0), f"not lying: {(x0, y0, x1, y1)}"
        assert (y0 + y1) / 2 >= h / 3 and (x1 - x0) * (y1 - y0) < 0.1 * h * w
    centres = np.array([((a + c) / 2, (b + d) / 2) for a, b, c, d in lying])
    assert np.ptp(centres, axis=0).max() < 0.03 * w, "a slight twitch, not a walk"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_crowd_gathers_into_one_place_and_stays(
    seed: int, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, "crowd", seed)
    h, w = source_frames[0].shape[:2]
    boxes = [box(changed(out[i], source_frames[i])) for i in range(*SPAN)]
    widths = [x1 - x0 for x0, _, x1, _ in boxes]
    assert widths[0] > 1.5 * widths[-1], f"they should converge: widths {widths}"
    settled = boxes[-4:]  # after 60 % of the span they stand together
    assert np.abs(np.subtract(settled, settled[0])).max() <= 0.03 * w, f"not settled: {settled}"
    x0, y0, x1, y1 = boxes[-1]
    assert (x1 - x0) * (y1 - y0) < 0.15 * h * w, "a group, not the whole view"


def grey_of(frame: U8) -> np.ndarray:
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), int)


def centres_of(out: list[U8], frames: list[U8], first: int) -> np.ndarray:
    """(frames, 2) centre of the changed pixels' box of each span frame from `first` on."""
    boxes = np.array([box(changed(out[i], frames[i])) for i in range(first, SPAN[1])], float)
    return np.c_[(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scuffle_jerks_around_one_small_place(
    seed: int, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, "scuffle", seed)
    h, w = source_frames[0].shape[:2]
    centres = centres_of(out, source_frames, SPAN[0])
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert np.median(steps) > 0.005 * w, f"no jerky movement: steps {steps.round(1)}"
    assert np.ptp(centres, axis=0).max() < 0.2 * w, "it stays in one place"
    assert centres[:, 1].min() > h / 3, "on the ground, in the lower two thirds"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fire_grows_bright_and_warm_at_one_spot(
    seed: int, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, "fire", seed)
    h, w = source_frames[0].shape[:2]
    first, last = SPAN[0] + 1, SPAN[1] - 1
    grown = [changed(out[i], source_frames[i]).sum() for i in (first, last)]
    assert grown[1] > 2 * grown[0], f"the flames should grow: {grown} pixels"
    frame = out[last].astype(int)
    flame = changed(out[last], source_frames[last], 60) & (frame[..., 2] > 200)
    flame &= frame[..., 2] > frame[..., 0] + 60  # warm: red well above blue (BGR)
    assert flame.sum() > 0.1 * changed(out[last], source_frames[last], 60).sum()
    x0, y0, x1, y1 = box(flame)
    assert (x1 - x0) * (y1 - y0) < 0.1 * h * w, "flames at one spot, not over the view"
    steps = [
        np.abs(out[i].astype(int) - out[i - 1]).max(axis=2)[flame].mean() for i in range(22, 30)
    ]
    assert np.mean(steps) > 8, f"flames flicker frame to frame: {np.round(steps, 1)}"


def test_eval_sets_made_before_kinds_were_added_keep_every_clip(vtest: Footage) -> None:
    learn = round(LEARN_SECONDS * vtest.fps)
    plans = plan_view(vtest, learn, CLIP_SECONDS, 2, (5, 0))
    older = [p for p in plans if p.kind not in ADDED_KINDS]
    rng = np.random.default_rng((5, 0))  # the draws as made before: older kinds, then normal
    again = [plans[0]]
    for kind in (*[k for k in ALL_KINDS if k not in ADDED_KINDS], NORMAL):
        for n in range(2):
            again.append(
                plan_clip(f"{kind}_{n:02d}", kind, vtest, CLIP_SECONDS, "test", rng, learn)
            )
    key = [(p.name, p.start, p.span, p.speed, p.seed) for p in older]
    assert key == [(p.name, p.start, p.span, p.speed, p.seed) for p in again]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_graffiti_is_painted_early_in_the_upper_part_small_and_then_left_unchanged(
    seed: int, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, "graffiti", seed)
    h, w = source_frames[0].shape[:2]
    done = SPAN[0] + 6  # painted by 30 % of the 20-frame span
    x0, y0, x1, y1 = box(changed(out[done], source_frames[done]))
    assert y1 <= 0.6 * h + 2 and x1 - x0 <= 0.15 * w, f"not a small tag up high: {(x0, y0, x1, y1)}"
    first = changed(out[SPAN[0]], source_frames[SPAN[0]]).sum()
    assert 0 < first < changed(out[done], source_frames[done]).sum()  # sprayed, not pasted
    for i in range(done, SPAN[1]):  # then the same tag in the same place
        other = box(changed(out[i], source_frames[i]))
        assert np.abs(np.subtract(other, (x0, y0, x1, y1))).max() <= 2, f"it changed: {other}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vehicle_drives_across_the_lower_part_of_the_view_one_way(
    seed: int, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, "vehicle", seed)
    h, w = source_frames[0].shape[:2]
    inside = range(SPAN[0] + 3, SPAN[1] - 3)  # whole in view
    boxes = np.array([box(changed(out[i], source_frames[i], 40)) for i in inside], float)
    xs = (boxes[:, 0] + boxes[:, 2]) / 2
    steps = np.diff(xs)
    assert (steps > 0).all() or (steps < 0).all(), f"not one way: {xs.round()}"
    assert abs(xs[-1] - xs[0]) > 0.4 * w, "it crosses most of the view"
    assert (boxes[:, 3] - boxes[:, 1]).max() < 0.25 * h and boxes[:, 1].min() > 0.35 * h


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_flood_spreads_dark_over_the_ground_from_one_spot(
    seed: int, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, "flood", seed)
    h, w = source_frames[0].shape[:2]
    early, late = SPAN[0] + 2, SPAN[1] - 1
    wet = [changed(out[i], source_frames[i]) for i in (early, late)]
    assert wet[1].sum() > 4 * max(1, wet[0].sum()), "the water spreads"
    grey = [grey_of(f) for f in (out[late], source_frames[late])]
    assert (grey[0] - grey[1])[wet[1]].mean() < -25, "wet ground is darker"
    x0, y0, x1, y1 = box(wet[1])
    assert y0 > 0.3 * h and (y1 - y0) < 0.5 * (x1 - x0), "a flat sheet on the ground"
    centres = centres_of(out, source_frames, SPAN[0] + 4)
    assert np.ptp(centres, axis=0).max() < 0.15 * w, "it grows from one spot, it does not travel"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_glare_is_a_bright_disc_on_early_in_part_of_the_view(
    seed: int, vtest: Footage, source_frames: list[U8]
) -> None:
    out = render(vtest, source_frames, "glare", seed)
    h, w = source_frames[0].shape[:2]
    on = SPAN[0] + 2  # within 10 % of the 20-frame span
    for i in range(on, SPAN[1]):
        lit = changed(out[i], source_frames[i])
        assert 0.02 * h * w < lit.sum() < 0.3 * h * w, "part of the view, not all of it"
        grey = [grey_of(f) for f in (out[i], source_frames[i])]
        rise = (grey[0] - grey[1])[lit]
        assert (rise > 0).mean() > 0.95 and rise.mean() > 30, "brighter where it shines"
    cores = [changed(out[i], source_frames[i], 120) for i in range(on, SPAN[1])]
    centres = np.array([np.argwhere(c).mean(axis=0) for c in cores])  # the disc's core
    assert np.ptp(centres, axis=0).max() < 0.1 * w, "it sways a little"


def test_probe_kinds_come_after_every_other_kind_so_a_set_keeps_its_clips(vtest: Footage) -> None:
    learn = round(LEARN_SECONDS * vtest.fps)
    plain = plan_view(vtest, learn, CLIP_SECONDS, 2, (5, 0))
    probed = plan_view(vtest, learn, CLIP_SECONDS, 2, (5, 0), PROBE_KINDS)
    key = [(p.name, p.start, p.span, p.speed, p.seed) for p in probed[: len(plain)]]
    assert key == [(p.name, p.start, p.span, p.speed, p.seed) for p in plain]
    assert [p.kind for p in probed[len(plain) :]] == [k for k in PROBE_KINDS for _ in range(2)]
    assert not set(PROBE_KINDS) & set(ALL_KINDS)  # never drawn unless asked for


# --- manifests: cameras and learn clips -------------------------------------------------------


def test_manifest_round_trips_camera_and_learn_split(tmp_path: Path, vtest_path: Path) -> None:
    clips = [
        Clip(vtest_path, (), NORMAL, "learn", "gate-2"),
        Clip(vtest_path, ((1.0, 2.5),), "lights", "test", "gate-2"),
        Clip(vtest_path, (), NORMAL, "test"),
    ]
    manifest = write_manifest(tmp_path / "m.jsonl", clips)
    assert load_manifest(manifest) == clips
    rows = [json.loads(line) for line in manifest.read_text("utf-8").splitlines()]
    assert [row.get("camera") for row in rows] == ["gate-2", "gate-2", None]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"camera": ""}, "camera must be 1-64 characters"),
        ({"camera": "gate 2"}, "camera must be 1-64 characters"),
        ({"camera": "x" * 65}, "camera must be 1-64 characters"),
        ({"camera": 7}, "camera must be 1-64 characters"),
        ({"split": "learn", "spans": [[1, 2]]}, 'a "learn" clip is normal footage'),
        ({"split": "val"}, 'split must be "train", "test" or "learn"'),
    ],
)
def test_manifest_refuses_bad_camera_ids_and_learn_clips_with_spans(
    tmp_path: Path, vtest_path: Path, extra: dict[str, object], message: str
) -> None:
    manifest = tmp_path / "m.jsonl"
    good = json.dumps({"video": str(vtest_path), "camera": "a.b_c-9"})
    manifest.write_text(good + "\n" + json.dumps({"video": str(vtest_path)} | extra) + "\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(manifest)
    assert f"{manifest}:2:" in str(info.value) and message in str(info.value)


# --- the evaluation set -----------------------------------------------------------------------

LEARN_SECONDS = 30.0
CLIP_SECONDS = 4.0


def test_view_plans_test_only_on_footage_after_learning_deterministically(vtest: Footage) -> None:
    learn = round(LEARN_SECONDS * vtest.fps)
    plans = plan_view(vtest, learn, CLIP_SECONDS, 3, (5, 0))
    assert plans[0].split == "learn" and plans[0].frames == learn and plans[0].span == (0, 0)
    for plan in plans[1:]:
        lo, hi = plan.source_range(0)[0], plan.source_range(plan.frames - 1)[1]
        assert learn <= lo < hi <= vtest.frames, f"{plan.name} reads frames {lo}-{hi}"
        a, b = plan.span
        assert plan.kind == NORMAL or (0 < a < b < plan.frames)
    again, other = (
        plan_view(vtest, learn, CLIP_SECONDS, 3, (5, 0)),
        plan_view(vtest, learn, 4, 3, (6, 0)),
    )
    key = [(p.name, p.start, p.span, p.speed, p.seed) for p in plans]
    assert key == [(p.name, p.start, p.span, p.speed, p.seed) for p in again]
    assert key != [(p.name, p.start, p.span, p.speed, p.seed) for p in other]
    assert any(p.kind == "running" and p.speed > 1 for p in plans)
    assert source_seconds(plans[0]) == (0.0, LEARN_SECONDS)


@pytest.fixture(scope="module")
def evalset(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    out = tmp_path_factory.mktemp("evalset")
    args = ["make-eval-set", "--out", str(out), "--seed", "5", "--clips-per-kind", "1"]
    args += ["--clip-seconds", str(CLIP_SECONDS), "--learn-seconds", str(LEARN_SECONDS)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(args)
    return rc, printed.getvalue().strip(), out


def test_make_eval_set_exits_0_and_prints_the_manifest_path(
    evalset: tuple[int, str, Path],
) -> None:
    rc, printed, out = evalset
    assert rc == 0 and Path(printed) == out / "manifest.jsonl"


def _video(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) of a video file."""
    cap = cv2.VideoCapture(str(path))
    props = (cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT)
    frames, width, height = (int(cap.get(p)) for p in props)
    cap.release()
    return frames, width, height


def test_every_view_has_one_learn_clip_and_a_test_clip_of_every_kind(
    evalset: tuple[int, str, Path],
) -> None:
    clips = load_manifest(evalset[2] / "manifest.jsonl")
    assert {c.camera for c in clips} == {view.camera for view in VIEWS}
    for view in VIEWS:
        mine = [c for c in clips if c.camera == view.camera]
        (learn,) = [c for c in mine if c.split == "learn"]
        assert learn.spans == () and learn.kind == NORMAL
        assert _video(learn.path)[0] == round(LEARN_SECONDS * 10)
        kinds = sorted(c.kind for c in mine if c.split == "test")
        assert kinds == sorted((*ALL_KINDS, NORMAL)), f"{view.camera}: {kinds}"
        sizes = {_video(c.path)[1:] for c in mine}
        assert len(sizes) == 1, f"{view.camera}: clips of several sizes {sizes}"


def test_spans_lie_inside_their_clips_away_from_both_ends(
    evalset: tuple[int, str, Path],
) -> None:
    for clip in load_manifest(evalset[2] / "manifest.jsonl"):
        frames = _video(clip.path)[0]
        assert frames > 0
        if clip.kind == NORMAL:
            assert clip.spans == ()
            continue
        ((start, end),) = clip.spans
        assert 0.0 < start < end < frames / 10, f"{clip.path}: {clip.spans}"
        assert end - start >= 0.3 * frames / 10


def test_learn_clips_end_before_any_test_clip_of_their_camera_starts(
    evalset: tuple[int, str, Path],
) -> None:
    info = json.loads((evalset[2] / "evalset.json").read_text("utf-8"))
    for view in info["views"]:
        mine = [c for c in info["clips"] if c["camera"] == view["camera"]]
        (learn,) = [c for c in mine if c["split"] == "learn"]
        assert learn["source_s"] == [0.0, LEARN_SECONDS]
        starts = [c["source_s"][0] for c in mine if c["split"] == "test"]
        assert len(starts) == len(ALL_KINDS) + 1 and min(starts) >= learn["source_s"][1]


def test_evalset_json_records_views_kinds_and_what_was_left_out(
    evalset: tuple[int, str, Path],
) -> None:
    out = evalset[2]
    info = json.loads((out / "evalset.json").read_text("utf-8"))
    assert info["kinds"] == {"tuned": list(KINDS), "held_out": list(HELDOUT_KINDS)}
    assert info["seed"] == 5 and info["learn_seconds"] == LEARN_SECONDS
    assert "vau-edge make-eval-set" in info["command"]
    assert [f["file"] for f in info["left_out"]] == ["bikes.mp4"]
    for view in info["views"]:
        frames, width, height = _video(out / view["video"])
        assert frames == info["footage"]["frames"] and [width, height] == view["size"]
    left = next(v for v in info["views"] if v["camera"] == "vtest-left")
    assert left["crop"] == {"x": 0, "y": 0, "w": 460, "h": 576}


def test_evalset_json_records_what_each_anomalous_clip_drew(
    evalset: tuple[int, str, Path],
) -> None:
    info = json.loads((evalset[2] / "evalset.json").read_text("utf-8"))
    for clip in info["clips"]:
        if clip["kind"] == NORMAL:
            assert "truth" not in clip
            continue
        truth = clip["truth"]
        drawn = {"where", "movement", "view_change", "share"}
        # running draws nothing (no detail to compare); every other kind's detail kept is recorded
        keys = drawn if clip["kind"] == "running" else drawn | {"detail"}
        assert set(truth) == keys, clip["video"]
        if clip["kind"] == "running":
            assert truth["where"] is None and truth["movement"] is None
        elif clip["kind"] in ("intruder", "abandoned", "fallen", "fire"):
            assert not truth["view_change"] and truth["where"], clip["video"]
    lights = [c["truth"] for c in info["clips"] if c["kind"] == "lights"]
    assert all(t["view_change"] and t["movement"] == "none" for t in lights)
