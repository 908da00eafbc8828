"""Training the frame tokenizer (projector + query) with the language model frozen: LLaVA's first
stage, on LLaMA-VID's two tokens per frame.

A `Sample` is what the explainer will see at inference, built by the same functions: the prompt
(`prompts.messages` with `<video>`, the event's facts and decisions), the window frames' effective
tokens as the cloud decoded them, and the caption to be written (`captions.py`). The loss is the
language model's next-token cross entropy on the reply only (`{"title": "...", "summary": "..."}`,
the JSON the explainer prefills and generates), with the visual tokens spliced in where the prompt
says `<video>` — the same splice `TransformersLlm.generate_embeds` makes. Only the tokenizer's
weights move; gradients pass through the frozen model's layers to the spliced embeddings. The
prompt puts `<video>` after the evidence, so the long text before it is run once per sample (its
key/value cache kept) and each step runs only the visual tokens, the question and the reply.

Each epoch visits the samples in a seeded order and drops each window frame with probability
`frame_drop` (at least one stays), so the projector does not learn one window's exact length.
A seeded share of the samples (`val_share`) is held back and its loss reported beside the
training loss; the returned report says how the loss moved.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vau.cloud.explain import prompts
from vau.cloud.explain.captions import Caption
from vau.cloud.explain.evidence import EventEvidence, decide, facts
from vau.cloud.explain.llm_transformers import TransformersLlm
from vau.cloud.explain.projector import FrameTokenizer
from vau.cloud.explain.schema import UNKNOWN
from vau.cloud.explain.settings import ExplainSettings

log = logging.getLogger(__name__)
IGNORE = -100  # positions the loss skips (prompt and visual tokens)


@dataclass(frozen=True)
class Sample:
    messages: list[prompts.Message]  # system + user, the user text with `<video>`
    frames: tuple[np.ndarray, ...]  # each window frame's (K, C) effective tokens
    caption: Caption
    label: str  # the kind or the caption file's name (provenance counts)


@dataclass(frozen=True, slots=True)
class TrainSettings:
    kind: str = "mlp2x_gelu"
    epochs: int = 15
    lr: float = 3e-3
    batch: int = 4  # samples per optimiser step (gradients accumulated)
    frame_drop: float = 0.2
    val_share: float = 0.1
    seed: int = 0


def sample_of(
    ev: EventEvidence,
    tokens: Sequence[np.ndarray],
    caption: Caption,
    settings: ExplainSettings,
    label: str,
    observed: str = UNKNOWN,
) -> Sample:
    """The prompt the explainer would build for this event (`observed`: its observed category),
    with the visual tokens on."""
    f = facts(ev)
    d = decide(f, ev.camera, settings)
    ctx = settings.cameras.get(ev.camera)
    normal = ctx.normal if ctx is not None else ""
    msgs = prompts.messages(ev.camera, normal, ev.prior, f, d, prompts.QUESTION, True, observed)
    return Sample(msgs, tuple(np.asarray(t, np.float32) for t in tokens), caption, label)


@dataclass(frozen=True)
class _Encoded:
    head: Any  # the frozen LLM's key/value cache of the prompt before <video>
    tail: torch.Tensor  # (T, D) embeddings of the rest of the prompt and the reply
    labels: torch.Tensor  # (T,) token ids to predict in `tail`, IGNORE on the prompt
    frames: tuple[torch.Tensor, ...]


class ProjectorTrainer:
    """One frozen LLM and one frame tokenizer being trained for it."""

    def __init__(self, llm: TransformersLlm, vis_dim: int, cfg: TrainSettings) -> None:
        self.llm, self.cfg = llm, cfg
        torch.manual_seed(cfg.seed)
        self.model = FrameTokenizer(cfg.kind, vis_dim, llm.hidden_size).to(llm.device)
        llm.model.requires_grad_(False)
        llm.model.eval()  # no dropout: the LLM is a fixed function
        self.question = llm.embed_text(prompts.QUESTION).detach()
        self.table = llm.model.get_input_embeddings()

    def encode(self, sample: Sample) -> _Encoded:
        text = self.llm.prompt_text(sample.messages)
        head, sep, tail = text.partition(prompts.VIDEO)
        if not sep:
            raise ValueError(f"a training prompt has no {prompts.VIDEO} placeholder")
        reply = prompts.reply_json(sample.caption.title, sample.caption.summary)
        prompt_ids = self.llm.ids(tail)[0]
        ids = self.llm.ids(tail + reply)[0]
        n = len(prompt_ids)
        while n and not torch.equal(ids[:n], prompt_ids[:n]):  # a token merged at the seam
            n -= 1
        labels = ids.clone()
        labels[:n] = IGNORE
        with torch.no_grad():  # the prompt before <video> never sees the visual tokens
            cache = self.llm.model(input_ids=self.llm.ids(head), use_cache=True).past_key_values
            tail_e = self.table(ids.unsqueeze(0))[0]
        frames = tuple(torch.from_numpy(f).to(self.llm.device) for f in sample.frames)
        return _Encoded(cache, tail_e, labels, frames)

    def loss(self, enc: _Encoded, frames: Sequence[torch.Tensor]) -> torch.Tensor:
        visual = self.model(list(frames), self.question)
        embeds = torch.cat([visual.to(enc.tail.dtype), enc.tail]).unsqueeze(0)
        skip = torch.full((len(visual),), IGNORE, dtype=torch.long)
        labels = torch.cat([skip.to(enc.labels.device), enc.labels]).unsqueeze(0)
        cache = copy.deepcopy(enc.head)  # the forward pass appends to it
        out = self.llm.model(inputs_embeds=embeds, past_key_values=cache, labels=labels)
        loss: torch.Tensor = out.loss
        return loss

    def _drop(self, frames: tuple[torch.Tensor, ...], rng: random.Random) -> list[torch.Tensor]:
        kept = [f for f in frames if rng.random() >= self.cfg.frame_drop]
        return kept or [frames[rng.randrange(len(frames))]]

    def mean_loss(self, encoded: Sequence[_Encoded]) -> float | None:
        if not encoded:
            return None
        with torch.no_grad():
            return float(np.mean([float(self.loss(e, e.frames)) for e in encoded]))

    def train(
        self, samples: Sequence[Sample], progress: Callable[[str], None] = log.info
    ) -> dict[str, Any]:
        """Fit on `samples` (a seeded share held back); the report of how the loss moved."""
        cfg, rng = self.cfg, random.Random(self.cfg.seed)
        if not samples:
            raise ValueError("no training samples: nothing to learn a projector from")
        order = list(range(len(samples)))
        rng.shuffle(order)
        n_val = int(len(samples) * cfg.val_share) if len(samples) >= 10 else 0
        val = [self.encode(samples[i]) for i in order[:n_val]]
        train = [self.encode(samples[i]) for i in order[n_val:]]
        steps = cfg.epochs * math.ceil(len(train) / cfg.batch)
        opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.0)
        warm = max(1, steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * s / steps))
        )
        began = time.perf_counter()
        before = {"train": self.mean_loss(train), "val": self.mean_loss(val)}
        progress(f"projector: {len(train)} samples, {len(val)} held back; loss before {before}")
        epochs = []
        self.model.train()
        for epoch in range(cfg.epochs):
            rng.shuffle(train)
            losses = []
            for i in range(0, len(train), cfg.batch):
                opt.zero_grad()
                batch = train[i : i + cfg.batch]
                for enc in batch:
                    loss = self.loss(enc, self._drop(enc.frames, rng)) / len(batch)
                    loss.backward()
                    losses.append(float(loss.detach()) * len(batch))
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                opt.step()
                sched.step()
            self.model.eval()
            row: dict[str, float | None] = {
                "epoch": epoch + 1,
                "train": round(float(np.mean(losses)), 4),
            }
            v = self.mean_loss(val)
            row["val"] = None if v is None else round(v, 4)
            self.model.train()
            epochs.append(row)
            progress(f"projector: epoch {row}")
        self.model.eval()
        after = {"train": self.mean_loss(train), "val": self.mean_loss(val)}
        return {
            "samples": len(train),
            "held_back": len(val),
            "steps": steps,
            "seconds": round(time.perf_counter() - began, 1),
            "loss_before": _rounded(before),
            "loss_after": _rounded(after),
            "epochs": epochs,
            "settings": {
                "kind": cfg.kind,
                "epochs": cfg.epochs,
                "lr": cfg.lr,
                "batch": cfg.batch,
                "frame_drop": cfg.frame_drop,
                "val_share": cfg.val_share,
                "seed": cfg.seed,
            },
        }


def _rounded(d: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 4) for k, v in d.items()}
