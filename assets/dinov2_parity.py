"""Parity of the rebuilt torch `Dinov2Model` and the extracted ONNX encoder on one input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch
from numpy.typing import NDArray
from transformers import Dinov2Model

from vau.assets.dinov2_onnx import INNER_BLOCK, INNER_NAME, INPUT_NAME, OUTPUT_NAME
from vau.assets.dinov2_rebuild import IMAGENET_MEAN, IMAGENET_STD

SIDE = 224
PARITY_FRAME = 100  # pedestrians are in view
MAX_ABS_DIFF = 1e-3


@dataclass(frozen=True)
class Parity:
    """How far the torch and ONNX `last_hidden_state` (1, 257, 384) are apart, and their inner
    block's tokens (`inner_hidden_state`)."""

    max_abs_diff: float
    cls_cosine: float
    input_source: str  # "vtest.avi#100" or "randn(seed=0)"
    inner_max_abs_diff: float = float("inf")

    def ok(self) -> bool:
        return max(self.max_abs_diff, self.inner_max_abs_diff) <= MAX_ABS_DIFF


def normalise_frame(frame_bgr: NDArray[np.uint8]) -> NDArray[np.float32]:
    """BGR uint8 (H, W, 3) -> ImageNet-normalised RGB float32 (1, 3, 224, 224)."""
    rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
    small = cv2.resize(rgb, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    chw = ((small - mean) / std).transpose(2, 0, 1)
    return np.ascontiguousarray(chw[None], dtype=np.float32)


def read_frame(video: Path, index: int = PARITY_FRAME) -> NDArray[np.uint8] | None:
    """One BGR frame of a video, or None when it cannot be read."""
    capture = cv2.VideoCapture(str(video))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
    finally:
        capture.release()
    return np.asarray(frame, dtype=np.uint8) if ok else None


def parity_input(video: Path | None) -> tuple[NDArray[np.float32], str]:
    """A real vtest.avi frame when available, else a seeded random-normal tensor."""
    if video is not None and video.is_file():
        frame = read_frame(video)
        if frame is not None:
            return normalise_frame(frame), f"{video.name}#{PARITY_FRAME}"
    rng = np.random.default_rng(0)
    return rng.standard_normal((1, 3, SIDE, SIDE)).astype(np.float32), "randn(seed=0)"


Pair = tuple[NDArray[np.float32], NDArray[np.float32]]  # (last hidden state, inner's)


def torch_hidden(model: Dinov2Model, pixels: NDArray[np.float32]) -> Pair:
    with torch.inference_mode():
        out = model(pixel_values=torch.from_numpy(pixels), output_hidden_states=True)
        inner = model.layernorm(out.hidden_states[INNER_BLOCK + 1])
    f32 = np.float32
    return np.asarray(out.last_hidden_state.numpy(), f32), np.asarray(inner.numpy(), f32)


def onnx_hidden(onnx_path: Path, pixels: NDArray[np.float32]) -> Pair:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    last, inner = session.run([OUTPUT_NAME, INNER_NAME], {INPUT_NAME: pixels})
    return np.asarray(last, dtype=np.float32), np.asarray(inner, dtype=np.float32)


def _max_diff(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    return float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")


def compare(a: Pair, b: Pair, source: str) -> Parity:
    if a[0].shape != b[0].shape:
        return Parity(max_abs_diff=float("inf"), cls_cosine=0.0, input_source=source)
    cls_a, cls_b = a[0][0, 0].astype(np.float64), b[0][0, 0].astype(np.float64)
    cosine = float(cls_a @ cls_b / (np.linalg.norm(cls_a) * np.linalg.norm(cls_b)))
    return Parity(_max_diff(a[0], b[0]), cosine, source, _max_diff(a[1], b[1]))


def check_parity(model: Dinov2Model, onnx_path: Path, video: Path | None) -> Parity:
    """Run one input through both; the caller fails the pull when `not parity.ok()`."""
    pixels, source = parity_input(video)
    return compare(torch_hidden(model, pixels), onnx_hidden(onnx_path, pixels), source)
