"""LLaMA-VID style frame tokens: per frame a content token and a question-conditioned context token.

content = projector(mean of the frame's effective tokens)
context = projector(softmax(q K^T / sqrt(C)) V), q = query(mean of the question's text embeddings),
          K = V = the frame's effective tokens
Untrained weights mean nothing: the explainer turns the visual path on only when trained weights
are loaded (`load_frame_tokenizer`); training is a later issue.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file
from torch import nn

ProjectorKind = Literal["linear", "mlp2x_gelu"]


def build_projector(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """LLaVA's closed vocabulary: "linear" or "mlp2x_gelu"; anything else raises ValueError."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp2x_gelu":
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
    raise ValueError(f"unknown projector kind {kind!r}; use 'linear' or 'mlp2x_gelu'")


class FrameTokenizer(nn.Module):
    """(K, C) effective tokens of each frame + the question's (T, D) embeddings -> (2F, D)."""

    def __init__(self, kind: str, vis_dim: int, llm_dim: int) -> None:
        super().__init__()
        self.kind, self.vis_dim, self.llm_dim = kind, vis_dim, llm_dim
        self.projector = build_projector(kind, vis_dim, llm_dim)
        self.query = nn.Linear(llm_dim, vis_dim)

    def content(self, tokens: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.projector(tokens.mean(dim=0))
        return out

    def context(self, tokens: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        q = self.query(question.mean(dim=0))  # (C,)
        attn = torch.softmax(tokens @ q / math.sqrt(self.vis_dim), dim=0)  # (K,)
        out: torch.Tensor = self.projector(attn @ tokens)
        return out

    def forward(self, frames: Sequence[torch.Tensor], question: torch.Tensor) -> torch.Tensor:
        pairs = [torch.stack([self.content(f), self.context(f, question)]) for f in frames]
        return torch.cat(pairs) if pairs else torch.empty(0, self.llm_dim)


def load_frame_tokenizer(path: Path, kind: str, vis_dim: int, llm_dim: int) -> FrameTokenizer:
    """Trained weights from a safetensors file (strict: every tensor present, no extra)."""
    model = FrameTokenizer(kind, vis_dim, llm_dim)
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()
