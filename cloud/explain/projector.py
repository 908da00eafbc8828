"""LLaMA-VID style frame tokens: per frame a content token and a question-conditioned context token.

content = projector(mean of the frame's effective tokens)
context = projector(softmax(q K^T / sqrt(C)) V), q = query(mean of the question's text embeddings),
          K = V = the frame's effective tokens

A trained tokenizer is one safetensors file (`projector.*`, `query.*`) whose metadata says what it
was trained for (`FORMAT`, kind, vis_dim, llm_dim, llm) and a JSON of its provenance beside it
(`<file>.json`). `load_frame_tokenizer` refuses, with a `ProjectorError` that says what differs, a
file whose dimensions do not fit the running LLM; `check_tokens` refuses frames from an edge whose
encoder width is not the one it was trained on. Untrained weights mean nothing: the explainer turns
the visual path on only when trained weights are configured (`projector_train.py` trains them).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from vau.cloud.explain.projector_choice import FORMAT, provenance_path
from vau.common.files import readable

ProjectorKind = Literal["linear", "mlp2x_gelu"]
log = logging.getLogger(__name__)


class ProjectorError(ValueError):
    """The projector file cannot serve this LLM or these tokens; the message says why."""


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


def check_tokens(tokenizer: FrameTokenizer, widths: Sequence[int]) -> None:
    """Every frame's token width must be the encoder width the projector was trained on."""
    wrong = sorted({w for w in widths if w != tokenizer.vis_dim})
    if wrong:
        raise ProjectorError(
            f"the frames' tokens are {wrong[0]} wide but the projector was trained on "
            f"{tokenizer.vis_dim}-wide tokens: the edge runs another encoder; train a projector "
            "on its tokens (vau-cloud train-projector) or turn visual tokens off"
        )


def save_frame_tokenizer(
    model: FrameTokenizer, path: Path, llm: str, provenance: dict[str, Any]
) -> None:
    """Weights (with what they fit in the metadata) and `<path>.json`, each written atomically."""
    meta = {
        "format": FORMAT,
        "kind": model.kind,
        "vis_dim": str(model.vis_dim),
        "llm_dim": str(model.llm_dim),
        "llm": llm,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    readable(tmp).replace(path)
    info = provenance_path(path)
    tmp = info.with_name(f".{info.name}.tmp")
    tmp.write_text(json.dumps({**meta, **provenance}, indent=2) + "\n", "utf-8")
    tmp.replace(info)


def projector_meta(path: Path) -> dict[str, str]:
    """The file's metadata: kind, vis_dim, llm_dim, llm (a file without them: ProjectorError)."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
    except (OSError, RuntimeError, ValueError) as exc:
        raise ProjectorError(f"cannot read projector weights {path}: {exc}") from None
    if meta.get("format") != FORMAT:
        raise ProjectorError(
            f"{path} is not a projector written by vau-cloud train-projector "
            f"(format {meta.get('format')!r}, want {FORMAT!r})"
        )
    return meta


def load_frame_tokenizer(path: Path, llm_dim: int, llm: str | None = None) -> FrameTokenizer:
    """Trained weights for an LLM whose embeddings are `llm_dim` wide (strict: every tensor
    present, no extra). A file for another width is refused; another LLM of the same width is
    loaded with a warning in the caller's log (its embeddings mean something else)."""
    meta = projector_meta(path)
    trained_for = int(meta["llm_dim"])
    if trained_for != llm_dim:
        raise ProjectorError(
            f"projector {path} was trained for {meta.get('llm')!r}, whose embeddings are "
            f"{trained_for} wide; the configured LLM's are {llm_dim}: train one for it "
            "(vau-cloud train-projector) or set explain.projector_weights for that LLM"
        )
    model = FrameTokenizer(meta["kind"], int(meta["vis_dim"]), trained_for)
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except RuntimeError as exc:
        raise ProjectorError(f"projector {path} does not match its own metadata: {exc}") from None
    if llm is not None and meta.get("llm") not in (None, llm):
        log.warning(
            "projector %s was trained for LLM %r, not %r: same width, different embeddings; "
            "its visual tokens may mean nothing to this LLM",
            path,
            meta.get("llm"),
            llm,
        )
    return model.eval()
