"""Prompt embeddings for a served model, made here from a local copy of its tokenizer and input
embedding table (imports torch: only with visual tokens on).

vLLM's completions API (`--enable-prompt-embeds`) takes the WHOLE prompt as one (T, hidden)
tensor and applies no chat template to it, so the prompt is templated here, split at `<video>`,
and the two text parts are looked up in the embedding table around the visual rows:
    embeds = [table[ids(head)] ; visual ; table[ids(tail + prefill)]]   # (T_h + V + T_t, D)
On the wire the tensor is `torch.save`d and base64-encoded (what vLLM's `tensor2base64` makes).
Only the embedding table is read from the safetensors files, not the whole model.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from transformers import AutoTokenizer

from vau.cloud.explain.llm import LlmSetupError, resolve_model
from vau.cloud.explain.prompts import VIDEO, Message

_TABLE_KEYS = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight")


def _embedding_table(folder: Path) -> torch.Tensor:
    """(vocab, hidden) input embeddings from the folder's safetensors files."""
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is no dict)
                if key.endswith(_TABLE_KEYS):
                    table: torch.Tensor = f.get_tensor(key)
                    return table.float()
    raise LlmSetupError(
        f"no input embedding table ({' | '.join(_TABLE_KEYS)}) in {folder}/*.safetensors: "
        "point explain.openai.embeddings at a local copy of the served model"
    )


class PromptEmbedder:
    """The served model's tokenizer and embedding table, loaded from a local folder."""

    def __init__(self, ref: str) -> None:
        folder = Path(resolve_model(ref))
        if not folder.is_dir():
            raise LlmSetupError(
                f"visual tokens over the openai backend need a local copy of the served model "
                f"(its tokenizer and embeddings); {ref!r} is not a folder or installed asset: set "
                "explain.openai.embeddings, or set explain.projector_weights empty (text only)"
            )
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(folder))
        self.table = _embedding_table(folder)

    @property
    def hidden_size(self) -> int:
        return int(self.table.shape[1])

    def embed_text(self, text: str) -> torch.Tensor:
        """(T, hidden) embeddings of `text`, no special tokens added."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.table[torch.tensor(ids, dtype=torch.long)]

    def prompt(
        self, messages: Sequence[Message], visual: torch.Tensor, prefill: str
    ) -> torch.Tensor:
        """(T, hidden) embeddings of the templated chat with `visual` (V, hidden) at `<video>`."""
        text = self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )
        head, sep, tail = (str(text) + prefill).partition(VIDEO)
        if not sep:
            raise ValueError(f"the prompt has no {VIDEO} placeholder for the visual tokens")
        if visual.ndim != 2 or visual.shape[1] != self.hidden_size:
            raise ValueError(f"visual tokens {tuple(visual.shape)} are not (V, {self.hidden_size})")
        parts = [self.embed_text(head), visual.detach().float().cpu(), self.embed_text(tail)]
        return torch.cat(parts)


def encode(embeds: torch.Tensor) -> str:
    """A (T, hidden) tensor as vLLM's `prompt_embeds` field: base64 of its `torch.save` bytes."""
    buf = io.BytesIO()
    torch.save(embeds.contiguous(), buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")
