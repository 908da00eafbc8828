"""The `transformers` LLM backend: any causal LM by asset name, folder or Hugging Face id, loaded
into this process (the embedded default). `generate_embeds` splices the visual embeddings in where
the prompt says `<video>` and generates from `inputs_embeds` (the LLaMA-VID path). With
`constrained`, each generation is held to the `LlmReply` JSON schema from its prefill on
(`constrained.py`, xgrammar: plain prose); each generation is counted by decoding (free or
constrained). Given the numbers and place words a text may hold, it writes no other, nor the words
of a kind it may not name (`faithful.py`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria

from vau.cloud.explain.evidence import Allowed
from vau.cloud.explain.faithful import NumberGuard, TokenTexts, WordGuard
from vau.cloud.explain.llm import cut, resolve_model
from vau.cloud.explain.prompts import VIDEO, Message

if TYPE_CHECKING:
    from vau.cloud.explain.constrained import ReplyGrammar
    from vau.cloud.explain.metrics import LlmMetrics

log = logging.getLogger(__name__)


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class _StopOn(StoppingCriteria):
    def __init__(self, tokenizer: Any, start: int, stop: Sequence[str]) -> None:
        self.tokenizer, self.start, self.stop = tokenizer, start, tuple(stop)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> bool:
        text = self.tokenizer.decode(input_ids[0, self.start :], skip_special_tokens=True)
        return any(s in text for s in self.stop)


class TransformersLlm:
    """One loaded model; calls are serialised by a lock (run it from one worker thread)."""

    def __init__(
        self,
        ref: str,
        device: str = "auto",
        temperature: float = 0.0,
        repetition_penalty: float = 1.0,
        constrained: bool = False,
        metrics: LlmMetrics | None = None,
    ) -> None:
        self._ref = ref
        path = resolve_model(ref)
        self.device = pick_device(device)
        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.tokenizer: Any = AutoTokenizer.from_pretrained(path)
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        self.model: Any = model.to(self.device)
        self.model.eval()
        self.temperature, self.repetition_penalty = temperature, repetition_penalty
        self._lock = threading.Lock()
        self.metrics = metrics
        self.grammar: ReplyGrammar | None = None
        self._token_texts: TokenTexts | None = None
        if constrained:
            from vau.cloud.explain.constrained import ReplyGrammar

            vocab = int(self.model.get_output_embeddings().weight.shape[0])  # logits' width
            self.grammar = ReplyGrammar(self.tokenizer, vocab)

    @property
    def model_id(self) -> str:
        return self._ref

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def prompt_text(self, messages: Sequence[Message], prefill: str = "") -> str:
        """The chat as the model reads it, the assistant turn opened and prefilled."""
        text = self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )
        return str(text) + prefill

    def ids(self, text: str) -> torch.Tensor:
        """`text`'s token ids (no special tokens added), (1, T) on the model's device."""
        ids: torch.Tensor = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)[
            "input_ids"
        ]
        return ids.to(self.device)

    def _sampling(self) -> dict[str, Any]:
        if self.temperature <= 0.0:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_p": 0.9}

    def _texts(self) -> TokenTexts:
        """The tokens' texts for the number guard, decoded once (0.1 s for SmolLM2)."""
        if self._token_texts is None:
            vocab = int(self.model.get_output_embeddings().weight.shape[0])
            self._token_texts = TokenTexts(self.tokenizer, vocab)
        return self._token_texts

    def _processors(self, prefill: str) -> list[Any]:
        """The grammar's processor when constrained and the prefill fits the schema; counted."""
        constrain = self.grammar.processor(prefill) if self.grammar is not None else None
        if self.grammar is not None and constrain is None:
            log.warning("prefill %r is not the start of an LlmReply: decoding freely", prefill)
        if self.metrics is not None:
            decoding = "free" if constrain is None else "constrained"
            self.metrics.generations.labels("transformers", decoding).inc()
        return [] if constrain is None else [constrain]

    def _run(
        self,
        max_new_tokens: int,
        stop: Sequence[str],
        start: int,
        prefill: str,
        allowed: Allowed | None,
        **inputs: Any,
    ) -> str:
        criteria = [_StopOn(self.tokenizer, start, stop)] if stop else []
        processors = self._processors(prefill)
        if allowed is not None:
            table = self._texts()
            processors.append(NumberGuard(self.tokenizer, table, allowed.numbers, start))
            processors.append(WordGuard(table, allowed.banned))
        with self._lock, torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                repetition_penalty=self.repetition_penalty,
                stopping_criteria=criteria,
                logits_processor=processors,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                **self._sampling(),
            )
        text = self.tokenizer.decode(out[0, start:], skip_special_tokens=True)
        return cut(str(text), stop)

    def generate(
        self,
        messages: Sequence[Message],
        max_new_tokens: int,
        *,
        prefill: str = "",
        stop: Sequence[str] = (),
        allowed: Allowed | None = None,
    ) -> str:
        ids = self.ids(self.prompt_text(messages, prefill))
        mask = torch.ones_like(ids)
        return self._run(
            max_new_tokens,
            stop,
            ids.shape[1],
            prefill,
            allowed,
            input_ids=ids,
            attention_mask=mask,
        )

    def embed_text(self, text: str) -> torch.Tensor:
        with torch.inference_mode():
            emb: torch.Tensor = self.model.get_input_embeddings()(self.ids(text))[0]
        return emb.float()

    def generate_embeds(
        self,
        messages: Sequence[Message],
        visual: torch.Tensor,
        max_new_tokens: int,
        *,
        prefill: str = "",
        stop: Sequence[str] = (),
        allowed: Allowed | None = None,
    ) -> str:
        head, sep, tail = self.prompt_text(messages, prefill).partition(VIDEO)
        if not sep:
            raise ValueError(f"the prompt has no {VIDEO} placeholder for the visual tokens")
        table = self.model.get_input_embeddings()
        with torch.inference_mode():
            parts = [
                table(self.ids(head))[0],
                visual.to(self.device, table.weight.dtype),
                table(self.ids(tail))[0],
            ]
        embeds = torch.cat(parts).unsqueeze(0)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=self.device)
        # with inputs_embeds only, generate returns just the new tokens
        return self._run(
            max_new_tokens, stop, 0, prefill, allowed, inputs_embeds=embeds, attention_mask=mask
        )
