"""Shared by the explainer tests: real edge-encoded records, and a scripted LLM.

`ScriptedLlm` stands in only for the model's randomness (which reply comes back), so retry and
fallback paths can be driven deterministically; the real SmolLM2 runs in test_explain_llm.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from vau.cloud.codec import decode_edge
from vau.cloud.explain.evidence import Allowed
from vau.cloud.explain.prompts import Message
from vau.cloud.records import AcceptedRecord, Hello, WireRecord
from vau.cloud.settings import LimitSettings
from vau.cloud.validate import Validator
from vau.edge.types import EffectiveTokens, EventState, EventUpdate, FrameScore, Window
from vau.edge.uplink import codec as edge

V = Validator(LimitSettings(), retention_s=30 * 86400)
PRIOR = "Known common anomaly types are: 'Fighting', 'Vandalism'. There is one of the anomaly types occurring from 2.0s to 6.0s."  # noqa: E501


def accept(body: bytes, seq: int, device: str = "dev-a", camera: str = "cam-0") -> AcceptedRecord:
    hello = decode_edge(edge.serialize(edge.hello(device, [camera], 1, "t")))
    assert isinstance(hello, Hello)
    wire = decode_edge(edge.serialize(edge.record_message(camera, 1, seq, body)))
    assert isinstance(wire, WireRecord)
    return V.record(wire, device, V.hello(hello), time.time())


def event_records(
    event_id: str = "ev-1", first_seq: int = 1, hot: tuple[int, ...] = ()
) -> list[AcceptedRecord]:
    """An event as the edge ships it in "events" mode: new, end, the window's frames, the window.
    Changed patches sit in the lower-left ninth of a 16x16 grid; each frame carries `hot` as its
    most anomalous patches (with a normality score when any)."""
    now = time.time()
    rng = np.random.default_rng(0)
    lower_left = np.array([r * 16 + c for r in range(11, 16) for c in range(0, 5)], np.int64)
    bodies = [
        edge.summary_body(0.0, 2.0, [0.1, 0.12, 0.08], now),
        edge.event_body(EventUpdate(event_id, EventState.NEW, 2.0, None, 0.7, 2.5, PRIOR), now),
        edge.event_body(EventUpdate(event_id, EventState.END, 2.0, 6.0, 0.92, 4.0, PRIOR), now),
    ]
    for seq, t in ((20, 2.5), (24, 4.0), (28, 5.5)):
        eff = EffectiveTokens(
            seq=seq, t=t, wall_time=now, indices=lower_left,
            tokens=rng.standard_normal((lower_left.size, 384)).astype(np.float32),
            distances=np.ones(lower_left.size, np.float32), patches=256, grid=(16, 16),
            keyframe=False,
        )  # fmt: skip
        normality = 0.9 if hot else None
        score = FrameScore(seq, t, 0.9, 0.8, normality, hot)
        bodies.append(edge.frame_body(eff, score, "fp16", event_id))
    bodies.append(edge.window_body(Window(event_id, 2.0, 6.0, (20, 24, 28), PRIOR), now))
    return [accept(b, first_seq + i) for i, b in enumerate(bodies)]


class ScriptedLlm:
    """Replies from a script, one per `generate` call (title, summary, title, summary, ...)."""

    def __init__(self, replies: Sequence[str], hidden: int = 16) -> None:
        self.replies, self.calls = list(replies), 0
        self._hidden = hidden
        self.prompts: list[Sequence[Message]] = []
        self.allowed: list[Allowed | None] = []  # what each call was allowed

    @property
    def model_id(self) -> str:
        return "scripted"

    @property
    def hidden_size(self) -> int:
        return self._hidden

    def generate(
        self,
        messages: Sequence[Message],
        max_new_tokens: int,
        *,
        prefill: str = "",
        stop: Sequence[str] = (),
        allowed: Allowed | None = None,
    ) -> str:
        self.prompts.append(messages)
        self.allowed.append(allowed)
        reply = self.replies[self.calls % len(self.replies)]
        self.calls += 1
        return reply

    def embed_text(self, text: str) -> torch.Tensor:
        return torch.zeros(len(text.split()), self._hidden)

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
        return self.generate(messages, max_new_tokens, prefill=prefill, stop=stop, allowed=allowed)
