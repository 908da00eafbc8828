"""TETG — Temporal Effective Token Generation, the per-frame part (VA-GPT, eq. 4).

A small MLP F_A on each frame's CLS embedding z gives the anomaly likelihood p = sigmoid(F_A(z)),
trained with binary cross-entropy. Inference runs in NumPy (two matmuls), so the edge's hot path
needs no torch; `torch_module` builds the torch twin for training and export, with identical maths.

On disk a head is a folder: `head.safetensors` (tensors w1 (C, H), b1 (H,), w2 (H, 1), b2 (1,)) and
`head.json` (HeadConfig). Loading checks the dimensions against the encoder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vau.common.files import readable
from vau.edge.types import F32

WEIGHTS = "head.safetensors"
CONFIG = "head.json"
DEFAULT_HEAD = Path(__file__).parent / "heads" / "default"
_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))


class HeadError(Exception):
    """A head cannot be loaded or does not fit the encoder; the message says what to do."""


@dataclass(frozen=True)
class HeadConfig:
    embed_dim: int  # C, the encoder's CLS width
    hidden: int  # H
    encoder: str = "dinov2-s14"  # which encoder's features it was trained on
    input_size: int = 224
    version: int = 1
    provenance: dict[str, Any] = field(default_factory=dict)  # data, metrics, command


def gelu(x: F32) -> F32:
    """tanh-approximate GELU, the same function as torch's GELU(approximate='tanh')."""
    y = 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))
    return y.astype(np.float32, copy=False)


class AnomalyHead:
    """p = sigmoid(gelu(z @ w1 + b1) @ w2 + b2), for z of shape (C,) or (B, C)."""

    def __init__(self, config: HeadConfig, tensors: dict[str, F32]) -> None:
        c, h = config.embed_dim, config.hidden
        expected = {"w1": (c, h), "b1": (h,), "w2": (h, 1), "b2": (1,)}
        for name, shape in expected.items():
            got = tensors.get(name)
            if got is None or tuple(got.shape) != shape:
                found = None if got is None else tuple(got.shape)
                raise HeadError(f"head tensor {name} should be {shape}, found {found}")
        self.config = config
        self._w1, self._b1 = tensors["w1"], tensors["b1"]
        self._w2, self._b2 = tensors["w2"], tensors["b2"]

    def score(self, cls: F32) -> F32:
        """(B, C) -> (B,) anomaly likelihood in [0, 1]; (C,) -> () likewise."""
        logits = (gelu(cls @ self._w1 + self._b1) @ self._w2 + self._b2)[..., 0]
        p: F32 = (1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))).astype(np.float32)
        return p

    def check_encoder(self, embed_dim: int, input_size: int) -> None:
        if embed_dim != self.config.embed_dim:
            raise HeadError(
                f"the head expects {self.config.embed_dim}-d CLS embeddings ({self.config.encoder})"
                f" but the encoder gives {embed_dim}-d; train a head for this encoder with "
                "`vau-edge train-head` or set head.path to a matching head"
            )
        if input_size != self.config.input_size:
            raise HeadError(
                f"the head was trained at {self.config.input_size}px input, the encoder runs at "
                f"{input_size}px; set encoder.input_size = {self.config.input_size} or retrain"
            )

    def tensors(self) -> dict[str, F32]:
        return {"w1": self._w1, "b1": self._b1, "w2": self._w2, "b2": self._b2}


def save_head(head: AnomalyHead, folder: Path) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in head.tensors().items()}, folder / WEIGHTS)
    readable(folder / WEIGHTS)
    (folder / CONFIG).write_text(json.dumps(asdict(head.config), indent=2) + "\n", "utf-8")
    return folder


def head_folder(ref: str | Path) -> Path:
    """The folder a head.path setting names; 'default' is the bundled head."""
    return DEFAULT_HEAD if str(ref) == "default" else Path(ref)


def load_head(ref: str | Path) -> AnomalyHead:
    """Load a head folder; 'default' is the bundled demo-grade head."""
    folder = head_folder(ref)
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        fix = (
            "the bundled head is missing from this install; reinstall vau-edge"
            if folder == DEFAULT_HEAD
            else "train one with `vau-edge train-head` or set head.path = 'default'"
        )
        raise HeadError(f"no TETG head in {folder} (needs {WEIGHTS} and {CONFIG}); {fix}")
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        raw = json.loads((folder / CONFIG).read_text("utf-8"))
        config = HeadConfig(**raw)
        tensors = {k: v.astype(np.float32) for k, v in load_file(folder / WEIGHTS).items()}
    except (json.JSONDecodeError, TypeError, SafetensorError, OSError) as exc:
        raise HeadError(f"head in {folder} is unreadable ({exc}); retrain or replace it") from None
    return AnomalyHead(config, tensors)


def torch_module(config: HeadConfig) -> Any:
    """The trainable torch twin of AnomalyHead (returns logits, not probabilities)."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(config.embed_dim, config.hidden),
        nn.GELU(approximate="tanh"),
        nn.Dropout(0.1),
        nn.Linear(config.hidden, 1),
    )


def from_torch(config: HeadConfig, module: Any) -> AnomalyHead:
    """Copy trained torch weights into the NumPy head (Linear stores W transposed)."""
    first, last = module[0], module[3]

    def arr(t: Any) -> F32:
        out: F32 = t.detach().cpu().numpy().astype(np.float32)
        return out

    tensors = {
        "w1": np.ascontiguousarray(arr(first.weight).T),
        "b1": arr(first.bias),
        "w2": np.ascontiguousarray(arr(last.weight).T),
        "b2": arr(last.bias),
    }
    return AnomalyHead(config, tensors)
