"""Real footage cut and rewritten for tests: the first frames of a clip, and a clip written back
with an effect applied frame by frame."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from vau.edge.types import U8


def first_frames(path: Path, n: int) -> list[U8]:
    """Up to the first n decoded frames of a video."""
    cap = cv2.VideoCapture(str(path))
    frames: list[U8] = []
    while len(frames) < n:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(np.asarray(image, np.uint8))
    cap.release()
    return frames


def write_clip(
    path: Path,
    frames: Sequence[U8],
    fps: float = 10.0,
    effect: Callable[[int, U8], U8] = lambda k, image: image,
) -> Path:
    """The frames as an MJPG AVI at `fps`, each passed through `effect(index, frame)`."""
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    for k, image in enumerate(frames):
        out.write(effect(k, image))
    out.release()
    return path
