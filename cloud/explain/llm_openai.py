"""The `openai` LLM backend: any OpenAI-compatible server (vLLM, SGLang, llama.cpp's server,
Ollama) at `explain.openai.base_url`, serving `explain.model`.

Text: `POST /chat/completions` with the messages and the prefill as a final assistant message to
continue (`continue_final_message`, `add_generation_prompt: false`: vLLM and SGLang; llama.cpp's
server continues a trailing assistant message by itself), greedy at temperature 0, `stop`.
Visual tokens: `POST /completions` with `prompt_embeds` (vLLM `--enable-prompt-embeds`), the whole
templated prompt embedded here (llm_embeds.py, the only part that imports torch). With
`prompt_embeds = "auto"` a server that refuses them is remembered and every later call raises
`PromptEmbedsRefusedError` at once (the explainer then goes text-only); "on" makes the refusal an
error; "off" never sends them. Thread-safe: the explainer calls it from N threads at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vau.cloud.explain.evidence import Allowed
from vau.cloud.explain.llm import (
    LlmError,
    LlmReplyError,
    LlmRequestError,
    PromptEmbedsRefusedError,
    cut,
)
from vau.cloud.explain.llm_http import JsonClient
from vau.cloud.explain.prompts import Message
from vau.cloud.explain.settings import ExplainSettings

if TYPE_CHECKING:
    import torch

    from vau.cloud.explain.llm_embeds import PromptEmbedder
    from vau.cloud.explain.metrics import LlmMetrics

log = logging.getLogger(__name__)
BACKEND = "openai"


class OpenAiLlm:
    def __init__(self, settings: ExplainSettings, metrics: LlmMetrics | None = None) -> None:
        o = settings.openai
        self.settings, self.metrics = settings, metrics
        key = o.api_key.get_secret_value() if o.api_key is not None else None
        self.client = JsonClient(
            o.base_url,
            key,
            o.connect_timeout_s,
            o.timeout_s,
            o.retries,
            o.retry_backoff_s,
            self._retried,
        )
        self.embeds_mode = o.prompt_embeds
        self._embeds_refused = o.prompt_embeds == "off"
        self._embedder: PromptEmbedder | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.settings.model

    @property
    def hidden_size(self) -> int:
        return self._embeds().hidden_size

    def probe(self) -> None:
        """Log (never raise) whether the server answers and serves `explain.model`: at start,
        so a wrong URL or model name shows before the first event falls back to the template."""
        try:
            listed = self.client.get("/models").get("data")
        except LlmError as exc:
            log.warning(
                "LLM server not usable now (%s); explanations use the facts' template until it is",
                exc,
            )
            return
        names = [m.get("id") for m in listed or [] if isinstance(m, dict)]
        if self.settings.model not in names:
            log.warning(
                "the LLM server at %s does not list explain.model %r (it serves %s): set "
                "explain.model to one of those",
                self.client.base_url,
                self.settings.model,
                names,
            )
        else:
            log.info("LLM: %s at %s", self.settings.model, self.client.base_url)

    def _sampling(self, max_new_tokens: int, stop: Sequence[str]) -> dict[str, Any]:
        s = self.settings
        return {
            "model": s.model,
            "max_tokens": max_new_tokens,
            "temperature": s.temperature,
            "repetition_penalty": s.repetition_penalty,  # vLLM / SGLang extension
            "stop": list(stop),
            "stream": False,
        }

    def generate(
        self,
        messages: Sequence[Message],
        max_new_tokens: int,
        *,
        prefill: str = "",
        stop: Sequence[str] = (),
        allowed: Allowed | None = None,  # checked after the reply (the server decodes)
    ) -> str:
        body = self._sampling(max_new_tokens, stop)
        body["messages"] = list(messages)
        if prefill:
            body["messages"].append({"role": "assistant", "content": prefill})
            body |= {"continue_final_message": True, "add_generation_prompt": False}
        reply = self._post("/chat/completions", body)
        return cut(_choice_text(reply, "message"), stop)

    def embed_text(self, text: str) -> torch.Tensor:
        return self._embeds().embed_text(text)

    def generate_embeds(
        self,
        messages: Sequence[Message],
        visual: torch.Tensor,
        max_new_tokens: int,
        *,
        prefill: str = "",
        stop: Sequence[str] = (),
        allowed: Allowed | None = None,  # checked after the reply (the server decodes)
    ) -> str:
        if self._embeds_refused:
            raise PromptEmbedsRefusedError(
                f"prompt embeddings are off (explain.openai.prompt_embeds = {self.embeds_mode!r}"
                " or refused earlier by the server): text only"
            )
        from vau.cloud.explain.llm_embeds import encode

        body = self._sampling(max_new_tokens, stop)
        body["prompt_embeds"] = encode(self._embeds().prompt(messages, visual, prefill))
        try:
            reply = self._post("/completions", body)
        except LlmRequestError as exc:
            if self.embeds_mode != "auto" or exc.status not in (400, 422):
                raise  # "on", or not about the embeddings (a wrong key or model name)
            self._embeds_refused = True
            log.warning(
                "the LLM server refuses prompt embeddings (%s); text only from now on "
                "(start vLLM with --enable-prompt-embeds to send visual tokens)",
                exc,
            )
            raise PromptEmbedsRefusedError(f"the server refused prompt embeddings: {exc}") from None
        return cut(_choice_text(reply, "text"), stop)

    def _embeds(self) -> PromptEmbedder:
        with self._lock:
            if self._embedder is None:
                from vau.cloud.explain.llm_embeds import PromptEmbedder

                self._embedder = PromptEmbedder(
                    self.settings.openai.embeddings or self.settings.model
                )
            return self._embedder

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        began = time.perf_counter()
        try:
            reply = self.client.post(path, body)
            _choice(reply)
        except LlmError as exc:
            if self.metrics is not None:
                self.metrics.requests.labels(BACKEND, "failed").inc()
                self.metrics.errors.labels(BACKEND, exc.kind).inc()
            raise
        if self.metrics is not None:
            self.metrics.requests.labels(BACKEND, "ok").inc()
            self.metrics.request_seconds.labels(BACKEND).observe(time.perf_counter() - began)
        return reply

    def _retried(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.retries.labels(BACKEND, reason).inc()


def _choice(reply: dict[str, Any]) -> dict[str, Any]:
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LlmReplyError(f"the LLM server's answer has no choices: {str(reply)[:200]}")
    return choices[0]


def _choice_text(reply: dict[str, Any], field: str) -> str:
    """The first choice's text: choices[0].message.content (chat) or choices[0].text."""
    choice = _choice(reply)
    value = choice.get(field)
    text = value.get("content") if isinstance(value, dict) else value
    if not isinstance(text, str):
        raise LlmReplyError(f"the LLM server's choice has no {field} text: {str(choice)[:200]}")
    return text
