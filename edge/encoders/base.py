"""The encoder interface every backend implements, and the preprocessing they share.

An encoder maps a batch of normalised images (B, 3, S, S) to DINOv2 patch tokens (B, N, C), class
tokens (B, C), N = (S / 14) ** 2, and the patch tokens of an inner block (`INNER_FROM_END`), which
the normality model's appearance memory reads (docs/normality.md, "Appearance from block 10").
Backends live one per file and are picked by `build_encoder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from vau.edge.settings import PATCH
from vau.edge.types import F32, U8, Frame, Tokens

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)  # RGB
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


INNER_FROM_END = 2  # inner tokens: the output of block depth - 2 (10 of DINOv2-S's 12)


def inner_index(depth: int) -> int:
    """transformers' `hidden_states` index of the inner block (0 is the embeddings)."""
    return depth - INNER_FROM_END


@dataclass(frozen=True, slots=True)
class Encoded:
    """One batch through the encoder."""

    patches: F32  # (B, N, C) the last layer's patch tokens (SETS, the uplink, the head's CLS)
    cls: F32  # (B, C) class tokens
    inner: F32  # (B, N, C) the inner block's patch tokens after the final layernorm (appearance)


class EncoderError(Exception):
    """The encoder cannot be built or run; the message says what to change."""


class Encoder(Protocol):
    @property
    def name(self) -> str: ...  # backend name as configured: "torch", "onnx", "tensorrt"

    @property
    def input_size(self) -> int: ...  # S

    @property
    def embed_dim(self) -> int: ...  # C

    def encode(self, batch: F32) -> Encoded:
        """(B, 3, S, S) normalised RGB -> the batch's tokens, float32 on the host."""
        ...

    def close(self) -> None: ...


def resize(image: U8, size: int) -> U8:
    """Squash a BGR frame to (size, size) keeping the whole field of view (no crop).

    Large frames go in two steps, linear to 2*size then area, which costs ~0.5 ms for 1080p
    against ~7 ms for one INTER_AREA pass, with the same anti-aliasing at the end.
    """
    h, w = image.shape[:2]
    src: Any = image
    if min(h, w) > 2 * size:
        src = cv2.resize(image, (2 * size, 2 * size), interpolation=cv2.INTER_LINEAR)
    interp = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(src, (size, size), interpolation=interp), dtype=np.uint8)


def normalise(image: U8) -> F32:
    """(S, S, 3) BGR uint8 -> (3, S, S) float32, RGB, ImageNet mean/std."""
    rgb = image[:, :, ::-1].astype(np.float32) * (1.0 / 255.0)
    chw: F32 = ((rgb - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    return np.ascontiguousarray(chw)


def preprocess(images: Sequence[U8], size: int) -> F32:
    """Frames -> (B, 3, S, S) float32, ready for any backend."""
    return np.stack([normalise(resize(img, size)) for img in images])


def grid_of(size: int) -> tuple[int, int]:
    side = size // PATCH
    return side, side


def to_tokens(frames: Sequence[Frame], patches: F32, cls: F32, size: int) -> list[Tokens]:
    """Split a batch's outputs into one Tokens value per frame."""
    grid = grid_of(size)
    return [Tokens(f.seq, f.t, f.wall_time, patches[i], cls[i], grid) for i, f in enumerate(frames)]


def split_hidden(hidden: F32, inner: F32) -> Encoded:
    """(B, 1 + N, C) last hidden state and the inner block's (B, 1 + N, C), layernormed ->
    contiguous float32 tokens."""
    hidden = np.asarray(hidden, dtype=np.float32)
    inner = np.asarray(inner, dtype=np.float32)
    return Encoded(
        np.ascontiguousarray(hidden[:, 1:]),
        np.ascontiguousarray(hidden[:, 0]),
        np.ascontiguousarray(inner[:, 1:]),
    )
