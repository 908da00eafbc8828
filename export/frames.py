"""Real footage frames for parity checks and int8 calibration (never random tensors)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vau.edge.encoders.base import preprocess
from vau.edge.types import F32, U8
from vau.export.settings import ExportError


def default_footage() -> Path:
    from vau.assets import AssetError, asset_path

    try:
        return asset_path("vtest.avi")
    except AssetError as exc:
        raise ExportError(f"{exc}; or pass --source FILE") from None


def read_frames(path: Path, n: int, stride: int = 5) -> list[U8]:
    """Every `stride`-th decoded BGR frame (vtest.avi at 10 fps, stride 5: the edge's 2 fps)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ExportError(f"cannot open footage {path}; pass a readable video with --source")
    frames: list[U8] = []
    index = 0
    try:
        while len(frames) < n:
            ok, image = cap.read()
            if not ok:
                break
            if index % stride == 0:
                frames.append(np.asarray(image, dtype=np.uint8))
            index += 1
    finally:
        cap.release()
    if not frames:
        raise ExportError(f"no frames decoded from {path}")
    return frames


def pixel_batches(path: Path, n: int, size: int, stride: int = 5) -> F32:
    """(n, 3, S, S) normalised frames, as the edge's preprocess makes them."""
    return preprocess(read_frames(path, n, stride), size)
