"""Labelled clips for training and evaluating the TETG head.

Two formats are read:

- JSONL, one clip per line: `{"video": "clips/a.avi", "spans": [[2.0, 6.5]], "kind": "smoke",
  "split": "train", "camera": "gate-2"}`; `video` is absolute or relative to `video_root`
  (default: the manifest's folder), spans are [start, end) in seconds; `kind`, `split` and
  `camera` are optional. `split` is "train" | "test" | "learn"; a "learn" clip is normal footage
  for learning its camera's normality model, so it has no spans. `camera` names the camera (view)
  the clip comes from: 1-64 characters of A-Z a-z 0-9 . _ -.
- UCF-Crime's `Temporal_Anomaly_Annotation_for_Testing_Videos.txt`: whitespace-separated
  `Video_name.mp4  ClassName  s1 e1 s2 e2`, s/e FRAME numbers (-1 = no span); frames become
  seconds with the video's own fps. Videos are looked up under `video_root` (default: the
  manifest's folder) by file name, in any sub-folder (UCF-Crime nests them by class).

Every malformed line raises `ManifestError` naming the file, the line and the fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPLITS = ("", "train", "test", "learn")
CAMERA_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # what a camera (view) may be called
NORMAL = "normal"  # the kind of a clip without spans


class ManifestError(Exception):
    """A manifest line cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Clip:
    path: Path  # the video file, resolved
    spans: tuple[tuple[float, float], ...]  # anomalous [start, end) in seconds, ascending
    kind: str = ""  # anomaly kind ("smoke", "Arson", ...); "normal" or "" for none
    split: str = ""  # "train", "test", "learn" (normal footage to learn from) or "" (trainer's)
    camera: str = ""  # the camera (view) the clip comes from; "" when unknown

    def label_at(self, t: float) -> int:
        """1 when time t (seconds) lies inside a span, else 0."""
        return int(any(start <= t < end for start, end in self.spans))


def load_manifest(path: Path, video_root: Path | None = None) -> list[Clip]:
    """Read a JSONL manifest or a UCF-Crime temporal annotation file (detected by content)."""
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist; pass an existing file")
    lines = path.read_text("utf-8").splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    root = video_root if video_root is not None else path.parent
    if not root.is_dir():
        raise ManifestError(f"video root {root} is not a folder; pass an existing --video-root")
    if first.startswith("{"):
        clips = [_jsonl_clip(path, n, ln, root) for n, ln in enumerate(lines, 1) if ln.strip()]
    else:
        videos = {p.name: p for p in sorted(root.rglob("*")) if p.is_file()}
        clips = [
            _ucf_clip(path, n, ln, root, videos) for n, ln in enumerate(lines, 1) if ln.strip()
        ]
    if not clips:
        raise ManifestError(f"manifest {path} lists no clips; add one clip per line")
    return clips


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}"


def _jsonl_clip(path: Path, line: int, text: str, root: Path) -> Clip:
    where = _where(path, line)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not valid JSON ({exc.msg}); one object per line") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("video"), str):
        raise ManifestError(f'{where}: each line needs a "video" string (path of the clip)')
    unknown = set(raw) - {"video", "spans", "kind", "split", "camera"}
    if unknown:
        raise ManifestError(
            f"{where}: unknown key(s) {sorted(unknown)}; use video/spans/kind/split/camera"
        )
    video = _existing(root / raw["video"], where)
    spans = _spans(raw.get("spans", []), where)
    split = raw.get("split", "")
    if split not in SPLITS:
        raise ManifestError(f'{where}: split must be "train", "test" or "learn", got {split!r}')
    if split == "learn" and spans:
        raise ManifestError(
            f'{where}: a "learn" clip is normal footage and cannot have spans; drop its spans '
            'or give it split "test"'
        )
    kind = str(raw.get("kind", "")) or ("" if spans else NORMAL)
    camera = _camera(raw["camera"], where) if "camera" in raw else ""
    return Clip(path=video, spans=spans, kind=kind, split=split, camera=camera)


def _camera(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not CAMERA_ID.fullmatch(raw):
        raise ManifestError(
            f"{where}: camera must be 1-64 characters of A-Z a-z 0-9 . _ - (e.g. "
            f'"gate-2"), got {raw!r}; rename it or leave "camera" out'
        )
    return raw


def _spans(raw: Any, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list):
        raise ManifestError(f"{where}: spans must be a list of [start_s, end_s] pairs")
    spans: list[tuple[float, float]] = []
    for item in raw:
        ok = isinstance(item, list) and len(item) == 2
        if not ok or not all(isinstance(v, int | float) for v in item):
            raise ManifestError(f"{where}: span {item!r} must be [start_s, end_s] numbers")
        start, end = float(item[0]), float(item[1])
        if start < 0 or end <= start:
            raise ManifestError(
                f"{where}: span [{start}, {end}] needs 0 <= start < end (seconds); fix the times"
            )
        spans.append((start, end))
    return tuple(sorted(spans))


def _existing(video: Path, where: str) -> Path:
    if not video.is_file():
        raise ManifestError(f"{where}: video {video} not found; fix the path or copy the file")
    return video


def _ucf_clip(path: Path, line: int, text: str, root: Path, videos: dict[str, Path]) -> Clip:
    where = _where(path, line)
    fields = text.split()
    if len(fields) != 6:
        raise ManifestError(
            f"{where}: expected 'Video.mp4 Class s1 e1 s2 e2' (6 fields), got {len(fields)}"
        )
    name, kind = fields[0], fields[1]
    try:
        frames = [int(v) for v in fields[2:]]
    except ValueError:
        raise ManifestError(f"{where}: span bounds must be integer frame numbers or -1") from None
    video = videos.get(name)
    if video is None:
        raise ManifestError(
            f"{where}: video {name} not found under {root}; pass --video-root FOLDER"
        )
    fps = video_fps(video)
    spans: list[list[float]] = []
    for start, end in ((frames[0], frames[1]), (frames[2], frames[3])):
        if start == -1 and end == -1:
            continue
        if start < 0 or end <= start:
            raise ManifestError(f"{where}: frame span {start}-{end} needs 0 <= start < end")
        spans.append([start / fps, end / fps])
    kind = NORMAL if kind.lower().startswith("normal") else kind
    return Clip(path=video, spans=_spans(spans, where), kind=kind, split="")


def video_fps(video: Path) -> float:
    """The container's frame rate, read with OpenCV; ManifestError when it has none."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS)) if cap.isOpened() else 0.0
    finally:
        cap.release()
    if not fps > 0:
        raise ManifestError(f"cannot read the frame rate of {video}; is it a readable video?")
    return fps


def write_manifest(path: Path, clips: list[Clip]) -> Path:
    """Write clips as JSONL with paths relative to the manifest's folder where possible."""
    lines = []
    for clip in clips:
        try:
            video = str(clip.path.relative_to(path.parent))
        except ValueError:
            video = str(clip.path)
        row = {"video": video, "spans": [list(s) for s in clip.spans], "kind": clip.kind}
        row |= {"split": clip.split} | ({"camera": clip.camera} if clip.camera else {})
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path
