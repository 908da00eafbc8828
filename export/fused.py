"""One graph for the accelerator: DINOv2-S/14, then SETS top-K, then the TETG head.

Inputs (both float32, dynamic batch B):
  pixel_values  (B, 3, S, S)  ImageNet-normalised RGB, as `encoders.base.preprocess` makes it;
                              resizing a camera frame stays on the host (it is cheap there and
                              keeps the graph independent of the camera's resolution).
  prev_patches  (B, N, C)     the previous frame's `patches` output. For a keyframe (no
                              predecessor) pass the frame's own mean patch token broadcast to
                              (B, N, C) — `edge.sets`'s "distinct" policy; a caller can compute it
                              from a first run, see `keyframe_reference`.
Outputs (`encoders.fused_backend.OUTPUTS`, in this order):
  patches (B, N, C) float32   feed back as the next frame's prev_patches
  cls     (B, C)    float32
  score   (B,)      float32   sigmoid of the TETG head on cls
  indices (B, K)    int64     the K most-changed patches (L1), ascending by index
  kept    (B, K, C) float32   patches[indices], the only tokens that leave the accelerator
  inner   (B, N, C) float32   block depth - 2's patch tokens through the final layernorm (the
                              normality model's appearance tokens, `encoders.base.INNER_FROM_END`)

K is fixed at export: `edge.sets.keep_count(N, keep_ratio)`. ONNX TopK breaks ties by the lower
index, as `edge.sets.top_k`'s stable sort does. The ascending re-order uses a float TopK on a
one-hot mask (no int64 sort), which TensorRT supports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vau.edge.encoders.base import inner_index
from vau.edge.sets import keep_count
from vau.edge.settings import PATCH
from vau.edge.tetg import AnomalyHead, torch_module
from vau.edge.types import F32

INPUTS = ("pixel_values", "prev_patches")


def patch_count(input_size: int) -> int:
    """N for a square input of side S."""
    return (input_size // PATCH) ** 2


def fused_k(input_size: int, keep_ratio: float) -> int:
    return keep_count(patch_count(input_size), keep_ratio)


def keyframe_reference(patches: F32) -> F32:
    """(B, N, C) -> (B, N, C): each frame's mean token, the reference for a 'distinct' keyframe."""
    mean = patches.mean(axis=1, keepdims=True, dtype=np.float32)
    return np.ascontiguousarray(np.broadcast_to(mean, patches.shape), dtype=np.float32)


def head_module(head: AnomalyHead) -> Any:
    """The torch twin of a loaded NumPy head, weights copied (Linear stores W transposed)."""
    import torch

    module = torch_module(head.config)
    t = head.tensors()
    with torch.no_grad():
        module[0].weight.copy_(torch.from_numpy(np.ascontiguousarray(t["w1"].T)))
        module[0].bias.copy_(torch.from_numpy(t["b1"]))
        module[3].weight.copy_(torch.from_numpy(np.ascontiguousarray(t["w2"].T)))
        module[3].bias.copy_(torch.from_numpy(t["b2"]))
    return module.eval()


def build_fused(dinov2_dir: Path, head: AnomalyHead, k: int) -> Any:
    """The fused torch module (eval mode, fp32) for DINOv2 weights in a transformers folder."""
    import torch
    from torch import nn
    from transformers import Dinov2Model
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    class Fused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            model: Any = Dinov2Model.from_pretrained(str(dinov2_dir), attn_implementation="eager")
            self.backbone = model.eval()
            self.head = head_module(head)
            self.k = k
            self.inner = inner_index(int(model.config.num_hidden_layers))

        def forward(self, pixel_values: Any, prev_patches: Any) -> tuple[Any, ...]:
            out = self.backbone(pixel_values=pixel_values, output_hidden_states=True)
            hidden = out.last_hidden_state  # (B, 1+N, C)
            cls, patches = hidden[:, 0], hidden[:, 1:]
            inner = self.backbone.layernorm(out.hidden_states[self.inner])[:, 1:]
            dist = (patches - prev_patches).abs().sum(dim=-1)  # (B, N)
            top = torch.topk(dist, self.k, dim=1).indices  # (B, K), by distance
            mask = torch.zeros_like(dist).scatter(1, top, 1.0)  # (B, N) one-hot of the kept
            n = dist.shape[1]
            rank = torch.arange(n, 0, -1, dtype=dist.dtype, device=dist.device)  # N..1
            indices = torch.topk(mask * rank, self.k, dim=1).indices  # (B, K) ascending
            gather = indices.unsqueeze(-1).expand(-1, -1, patches.shape[-1])
            kept = torch.gather(patches, 1, gather)  # (B, K, C)
            score = torch.sigmoid(self.head(cls))[:, 0]  # (B,)
            return patches, cls, score, indices, kept, inner

    return Fused().eval()
