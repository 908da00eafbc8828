"""Schema-constrained decoding for the in-process model: every token the model may pick keeps
the reply a prefix of valid `LlmReply` JSON (xgrammar, on CPU too).

The explainer generates the title after the prefill `{"title": "` and the summary after
`{"title": "...", "summary": "`; each generation gets a fresh matcher advanced over its prefill,
so the title is 3-80 characters and the summary 10-400, and the string is closed before anything
else. Both are plain English prose (`PROSE`: ASCII letters, digits, spaces and sentence
punctuation): no quote or backslash, no braces, brackets, bars or backquotes, no accented letter
or other script, so what the explainer refuses as a placeholder ("[location]"), markup or another
script cannot be written. The schema is compiled once per model (`ReplyGrammar`: 0.5 s for
SmolLM2's vocabulary, 1.9 s for Qwen's, measured here); masking costs 0.9-2.7 ms a token, under
1 % of generating it. xgrammar is imported here only (installed `--no-deps` by `make install`: it
declares triton, which the CPU path does not need).
"""

from __future__ import annotations

import json
from typing import Any

import torch
from transformers import LogitsProcessor

from vau.cloud.explain.llm import LlmSetupError
from vau.cloud.explain.schema import LlmReply

SEPARATORS = (", ", ": ")  # what prompts.TITLE_PREFILL and prompts.SUMMARY_KEY spell
# Plain prose: what a title or summary may be written in (a closed list of characters).
PROSE = r"[A-Za-z0-9 .,;:!'()%/&+\-]"


def reply_schema() -> str:
    """`LlmReply`'s JSON schema with its strings held to prose. xgrammar drops a string's length
    bounds beside a pattern, so they go into the pattern."""
    schema = LlmReply.model_json_schema()
    for field in schema["properties"].values():
        field["pattern"] = f"{PROSE}{{{field['minLength']},{field['maxLength']}}}"
    return json.dumps(schema)


def _xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError:
        raise LlmSetupError(
            "explain.constrained needs xgrammar: `pip install --no-deps xgrammar apache-tvm-ffi` "
            "(make install does), or set explain.constrained = false"
        ) from None
    return xgrammar


class _Constrain(LogitsProcessor):
    """Masks every token that would leave the grammar; one per `generate` call (batch 1)."""

    def __init__(self, xgr: Any, matcher: Any, vocab_size: int) -> None:
        self.xgr, self.matcher = xgr, matcher
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.started:  # the token picked after the previous call
            self.matcher.accept_token(int(input_ids[0, -1]))
        self.started = True
        if not self.matcher.is_terminated():
            self.matcher.fill_next_token_bitmask(self.bitmask)
            self.xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device))
        return scores


class ReplyGrammar:
    """The `LlmReply` JSON schema compiled for one tokenizer; `processor(prefill)` per call."""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        xgr = _xgrammar()
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self._xgr, self.vocab_size = xgr, vocab_size
        self._compiled = xgr.GrammarCompiler(info).compile_json_schema(
            reply_schema(), any_whitespace=False, separators=SEPARATORS
        )

    def processor(self, prefill: str) -> LogitsProcessor | None:
        """A fresh processor that has read `prefill`; None when the prefill is not the start of
        an `LlmReply` (then the caller decodes freely)."""
        matcher = self._xgr.GrammarMatcher(self._compiled)
        if prefill and not matcher.accept_string(prefill):
            return None
        return _Constrain(self._xgr, matcher, self.vocab_size)
