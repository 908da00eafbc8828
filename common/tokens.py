"""Token payload encodings shared by edge and cloud: fp16, or int8 with a float32 scale per token.

int8 halves fp16's bytes; its error per element is at most scale / 2 = max|x| / 254 per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from vau.common.arrays import F32

TokenDType = Literal["fp16", "int8", "fp32"]


@dataclass(frozen=True, slots=True)
class EncodedTokens:
    dtype: TokenDType
    shape: tuple[int, int]  # (K, C)
    data: bytes  # K * C little-endian elements
    scales: bytes  # int8: K little-endian float32; otherwise empty


def encode_tokens(tokens: F32, dtype: TokenDType) -> EncodedTokens:
    k, c = tokens.shape
    if dtype == "fp16":
        return EncodedTokens(dtype, (k, c), tokens.astype("<f2").tobytes(), b"")
    if dtype == "fp32":
        return EncodedTokens(dtype, (k, c), tokens.astype("<f4").tobytes(), b"")
    scale = np.abs(tokens).max(axis=1) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype("<f4")
    q = np.clip(np.rint(tokens / scale[:, None]), -127, 127).astype(np.int8)
    return EncodedTokens(dtype, (k, c), q.tobytes(), scale.tobytes())


def decode_tokens(enc: EncodedTokens) -> F32:
    """The inverse of encode_tokens (lossy for fp16 and int8). Sizes must already be checked."""
    k, c = enc.shape
    if enc.dtype == "int8":
        q = np.frombuffer(enc.data, dtype=np.int8).reshape(k, c).astype(np.float32)
        out: F32 = q * np.frombuffer(enc.scales, dtype="<f4")[:, None]
        return out
    wire = "<f2" if enc.dtype == "fp16" else "<f4"
    return np.frombuffer(enc.data, dtype=wire).reshape(k, c).astype(np.float32)


def element_size(dtype: TokenDType) -> int:
    return {"fp16": 2, "int8": 1, "fp32": 4}[dtype]
