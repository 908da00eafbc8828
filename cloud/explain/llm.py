"""The LLM backend: one interface, its errors, and the factory keyed by `explain.backend`.

Backends, one file each: `transformers` (llm_transformers.py, the model in this process, the
embedded default) and `openai` (llm_openai.py, any OpenAI-compatible server: vLLM, SGLang,
llama.cpp's server, Ollama). `generate` continues a chat after an optional assistant prefill and
stops at the first stop string (both cut off the returned text); `generate_embeds` does the same
with visual embeddings spliced in where the user text says `<video>`.

This module imports no torch: with the `openai` backend the cloud never loads it unless visual
tokens are on (the projector needs it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vau.cloud.explain.evidence import Allowed
from vau.cloud.explain.prompts import Message
from vau.cloud.explain.settings import ExplainSettings

if TYPE_CHECKING:
    import torch

    from vau.cloud.explain.metrics import LlmMetrics


class LlmError(RuntimeError):
    """An LLM call failed; `kind` is its metrics label. The message says what to do."""

    kind = "error"


class LlmSetupError(LlmError):
    """The backend cannot be built from the settings (fix the settings, then restart)."""

    kind = "setup"


class LlmUnavailableError(LlmError):
    """The server did not answer (refused, timed out, 5xx) after every retry."""

    kind = "unavailable"


class LlmRequestError(LlmError):
    """The server refused the request (4xx): a wrong model name, key or parameter."""

    kind = "refused"
    status = 0  # the HTTP status, where there was one


class PromptEmbedsRefusedError(LlmRequestError):
    """The server does not take prompt embeddings (vLLM without --enable-prompt-embeds)."""

    kind = "embeds_refused"


class LlmReplyError(LlmError):
    """The server answered with something that is not a completion."""

    kind = "reply"


class LlmBackend(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def hidden_size(self) -> int: ...

    def generate(
        self,
        messages: Sequence[Message],
        max_new_tokens: int,
        *,
        prefill: str = "",
        stop: Sequence[str] = (),
        allowed: Allowed | None = None,
    ) -> str:
        """`allowed`: the only numbers and place words the text may hold (None: any). An
        in-process model holds to them while it writes (`faithful`); a server's reply is only
        checked after."""
        ...

    def embed_text(self, text: str) -> torch.Tensor:
        """(T, hidden_size) input embeddings of `text` (no special tokens)."""
        ...

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
        """Raises PromptEmbedsRefusedError where embeddings cannot be sent (go text-only)."""
        ...


def resolve_model(ref: str) -> str:
    """An installed asset name -> its folder; an existing path or a Hugging Face id as given."""
    if Path(ref).exists():
        return ref
    try:
        from vau.assets import asset_path

        return str(asset_path(ref))
    except (KeyError, LookupError, OSError, ValueError):  # not an installed asset: a hub id
        return ref


def cut(text: str, stop: Sequence[str]) -> str:
    """`text` up to its first stop string."""
    for s in stop:
        text = text.split(s, 1)[0]
    return text


def build_llm(settings: ExplainSettings, metrics: LlmMetrics | None = None) -> LlmBackend:
    """The backend `settings.backend` names; heavy imports happen only inside it."""
    if settings.backend == "transformers":
        from vau.cloud.explain.llm_transformers import TransformersLlm

        s = settings
        return TransformersLlm(
            s.model, s.device, s.temperature, s.repetition_penalty, s.constrained, metrics
        )
    if settings.backend == "openai":
        from vau.cloud.explain.llm_openai import OpenAiLlm

        llm = OpenAiLlm(settings, metrics)
        llm.probe()
        return llm
    raise LlmSetupError(f"unknown LLM backend {settings.backend!r}; use 'transformers' or 'openai'")
