"""A held-out evaluation set for per-camera normality models, cut from real footage.

A normality model learns one camera's normal scene from that camera's own footage, without labels,
and flags what departs from it. Measuring that honestly needs several cameras, each with footage
to learn from and later footage to test on that never overlap, and anomaly kinds nobody tuned on.
`build_eval_set` makes both from vtest.avi (a campus path, 768x576, 10 fps, 79.5 s):

- four views, each treated as its own camera and written as `views/<camera>.avi` (MJPG, native
  fps): `vtest` (the full frame), `vtest-left` and `vtest-right` (the left and right 60 % of the
  width, full height) and `vtest-zoom` (the centre 60 % x 60 %, scaled back up to 768x576);
- per view, one `learn` clip: the view's first `learn_seconds` (at least 30 s), normal, no spans;
- per view, `clips_per_kind` `test` clips of every kind in ALL_KINDS (the tuned KINDS and the
  held-out HELDOUT_KINDS, see vau.edge.synth) and as many normal ones, cut only from the footage
  after the learn clip; each anomaly spans 35-50 % of its clip, away from both ends;
- `manifest.jsonl` (video, spans, kind, split, camera; see vau.edge.manifest) and `evalset.json`:
  the views and their crop boxes, the kinds tuned and held out, the seed, the command, each
  clip's source time range (so "learn ends before any test clip starts" can be checked) and, for
  anomalous clips, the truth of what was drawn: where, which way, whether the view changed
  (`vau.edge.synth_truth`), which explanations are scored against.

bikes.mp4, the other sample footage, is 10 s long: shorter than the 30 s learning minimum, with
nothing left to test on, so it is left out (evalset.json says so). Deterministic by seed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vau.edge.manifest import NORMAL, Clip, write_manifest
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
    render_footage,
    survey,
)
from vau.edge.types import U8

MIN_LEARN_SECONDS = 30.0  # less normal footage than this does not describe a camera
DEFAULT_LEARN_SECONDS = 40.0
DEFAULT_CLIP_SECONDS = 8.0
DEFAULT_CLIPS_PER_KIND = 3
LEFT_OUT = {"bikes.mp4": "10 s long: shorter than the 30 s learning minimum, nothing to test on"}


@dataclass(frozen=True)
class View:
    """One virtual camera: a crop of the source frame, optionally scaled back to the source size."""

    camera: str
    box: tuple[float, float, float, float]  # crop (x0, y0, x1, y1) as shares of the source frame
    zoom: bool = False  # scale the crop back up to the source's size

    def pixels(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The crop as (x, y, w, h) in pixels of a (W, H) source; even w and h."""
        x0, y0, x1, y1 = (round(v * s) for v, s in zip(self.box, size * 2, strict=True))
        return x0, y0, (x1 - x0) // 2 * 2, (y1 - y0) // 2 * 2

    def size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The view's (W, H) for a (W, H) source."""
        return size if self.zoom else self.pixels(size)[2:]

    def apply(self, image: U8) -> U8:
        h, w = image.shape[:2]
        x, y, cw, ch = self.pixels((w, h))
        crop = image[y : y + ch, x : x + cw]
        if self.zoom:
            return np.asarray(cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
        return np.ascontiguousarray(crop)


VIEWS = (
    View("vtest", (0.0, 0.0, 1.0, 1.0)),
    View("vtest-left", (0.0, 0.0, 0.6, 1.0)),
    View("vtest-right", (0.4, 0.0, 1.0, 1.0)),
    View("vtest-zoom", (0.2, 0.2, 0.8, 0.8), zoom=True),
)


def write_views(footage: Path, views_dir: Path) -> tuple[list[Path], float, tuple[int, int], int]:
    """One pass over the footage writing every view as MJPG: (paths, fps, source size, frames)."""
    views_dir.mkdir(parents=True, exist_ok=True)
    paths = [views_dir / f"{view.camera}.avi" for view in VIEWS]
    fourcc = cv2.VideoWriter.fourcc(*"MJPG")
    with open_source(SourceSettings(uri=str(footage)), "evalset") as source:
        fps, size, count = source.fps, source.size, 0
        writers = [
            cv2.VideoWriter(str(path), fourcc, fps, view.size(size))
            for view, path in zip(VIEWS, paths, strict=True)
        ]
        try:
            if not all(writer.isOpened() for writer in writers):
                raise RuntimeError(f"cannot write videos in {views_dir}; is it writable?")
            for frame in source:
                for view, writer in zip(VIEWS, writers, strict=True):
                    writer.write(view.apply(frame.image))
                count += 1
        finally:
            for writer in writers:
                writer.release()
    return paths, fps, size, count


def build_eval_set(
    out_dir: Path,
    footage: Path,
    seed: int = 0,
    clips_per_kind: int = DEFAULT_CLIPS_PER_KIND,
    clip_seconds: float = DEFAULT_CLIP_SECONDS,
    learn_seconds: float = DEFAULT_LEARN_SECONDS,
    probes: Sequence[str] = (),
) -> Path:
    """Write views, clips, `manifest.jsonl` and `evalset.json` in out_dir; return the manifest.
    `probes`: PROBE_KINDS to draw too (tuning kinds), after every other kind."""
    _check(clips_per_kind, clip_seconds, learn_seconds)
    unknown = sorted(set(probes) - set(PROBE_KINDS))
    if unknown:
        raise ValueError(f"unknown probe kind {unknown[0]!r}; choose from {', '.join(PROBE_KINDS)}")
    paths, fps, size, frames = write_views(footage, out_dir / "views")
    learn = round(learn_seconds * fps)
    if round(clip_seconds * fps) > int(0.6 * (frames - learn)):
        raise ValueError(
            f"{footage.name} lasts {frames / fps:.1f} s: after {learn_seconds:g} s of learning, "
            f"too little is left for {clip_seconds:g} s test clips (each may take at most 60 % "
            "of it); lower --learn-seconds or --clip-seconds"
        )
    plans: list[tuple[View, ClipPlan]] = []
    truths: dict[tuple[str, str], dict[str, Any]] = {}  # (camera, clip name) -> what was drawn
    for v, (view, path) in enumerate(zip(VIEWS, paths, strict=True)):
        view_plans = plan_view(
            survey(path), learn, clip_seconds, clips_per_kind, (seed, v), tuple(probes)
        )
        drawn = render_footage(view_plans[0].footage, view_plans, _clips_dir(out_dir, view))
        truths |= {(view.camera, name): truth for name, truth in drawn.items()}
        plans += [(view, plan) for plan in view_plans]
    options = {"seed": seed, "clips_per_kind": clips_per_kind, "clip_seconds": clip_seconds}
    options["learn_seconds"] = learn_seconds
    _write_provenance(out_dir, footage, size, plans, options, truths, tuple(probes))
    return write_manifest(out_dir / "manifest.jsonl", [_clip(out_dir, *vp) for vp in plans])


def _check(clips_per_kind: int, clip_seconds: float, learn_seconds: float) -> None:
    if clips_per_kind < 1:
        raise ValueError(f"clips per kind must be >= 1, got {clips_per_kind}")
    if clip_seconds < 2.0:
        raise ValueError(f"clip seconds must be >= 2 (room for a span), got {clip_seconds:g}")
    if learn_seconds < MIN_LEARN_SECONDS:
        raise ValueError(
            f"learn seconds must be >= {MIN_LEARN_SECONDS:g} (the normal footage a camera's "
            f"model learns from), got {learn_seconds:g}"
        )


def plan_view(
    src: Footage,
    learn: int,
    clip_seconds: float,
    clips_per_kind: int,
    seed: tuple[int, int],
    probes: tuple[str, ...] = (),
) -> list[ClipPlan]:
    """The learn clip (source frames [0, learn)), then test clips from frames [learn, end)."""
    rng = np.random.default_rng(seed)
    plans = [ClipPlan("learn", src, NORMAL, 0, learn, (0, 0), 1, 0, "learn")]
    first = [k for k in ALL_KINDS if k not in ADDED_KINDS]
    for kind in (*first, NORMAL, *ADDED_KINDS, *probes):  # later kinds last: sets keep clips
        for n in range(clips_per_kind):
            name = f"{kind}_{n:02d}"
            plans.append(plan_clip(name, kind, src, clip_seconds, "test", rng, first=learn))
    return plans


def _clips_dir(out_dir: Path, view: View) -> Path:
    return out_dir / "clips" / view.camera


def _clip(out_dir: Path, view: View, plan: ClipPlan) -> Clip:
    path = _clips_dir(out_dir, view) / f"{plan.name}.avi"
    spans = (plan.seconds,) if plan.span[1] else ()
    return Clip(path, spans, plan.kind, plan.split, view.camera)


def source_seconds(plan: ClipPlan) -> tuple[float, float]:
    """The [start, end) of the view's footage a clip is made of, in seconds."""
    end = plan.source_range(plan.frames - 1)[1]
    return plan.start / plan.footage.fps, end / plan.footage.fps


def _write_provenance(
    out_dir: Path,
    footage: Path,
    size: tuple[int, int],
    plans: list[tuple[View, ClipPlan]],
    options: dict[str, float],
    truths: dict[tuple[str, str], dict[str, Any]],
    probes: tuple[str, ...] = (),
) -> None:
    src = plans[0][1].footage
    flags = " ".join(f"--{key.replace('_', '-')} {value:g}" for key, value in options.items())
    flags += "".join(f" --probe {kind}" for kind in probes)
    info = {
        "description": "evaluation only: per-camera views of real footage, each with a learn "
        "clip of normal footage and later test clips; never train or tune on the held-out "
        f"kinds ({', '.join(HELDOUT_KINDS)}). Made by vau.edge.evalset",
        "command": f"vau-edge make-eval-set --out {out_dir} {flags}",
        **options,
        "footage": {"file": footage.name, "fps": src.fps, "size": list(size), "frames": src.frames},
        "left_out": [{"file": name, "why": why} for name, why in LEFT_OUT.items()],
        "kinds": {"tuned": [*KINDS, *probes], "held_out": list(HELDOUT_KINDS)},
        "views": [_view_info(view, size) for view, plan in plans if plan.split == "learn"],
        "clips": [
            _clip_info(out_dir, view, plan) | _truth(truths.get((view.camera, plan.name)))
            for view, plan in plans
        ],
    }
    (out_dir / "evalset.json").write_text(json.dumps(info, indent=2) + "\n", "utf-8")


def _view_info(view: View, size: tuple[int, int]) -> dict[str, object]:
    x, y, w, h = view.pixels(size)
    return {
        "camera": view.camera,
        "video": f"views/{view.camera}.avi",
        "crop": {"x": x, "y": y, "w": w, "h": h},  # pixels of the source footage
        "crop_share": list(view.box),
        "size": list(view.size(size)),
        "zoomed": view.zoom,
    }


def _truth(truth: dict[str, Any] | None) -> dict[str, Any]:
    """What the synthesiser drew (`vau.edge.synth_truth`), for anomalous clips."""
    return {} if truth is None else {"truth": truth}


def _clip_info(out_dir: Path, view: View, plan: ClipPlan) -> dict[str, object]:
    path = _clips_dir(out_dir, view) / f"{plan.name}.avi"
    return {
        "video": str(path.relative_to(out_dir)),
        "camera": view.camera,
        "kind": plan.kind,
        "split": plan.split,
        "source_s": list(source_seconds(plan)),  # [start, end) of the view's footage used
        "span_s": list(plan.seconds) if plan.span[1] else [],
        "speed": plan.speed,
    }
