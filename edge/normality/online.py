"""The normality model while a camera runs: learnt online during a warm-up, then adapting slowly.

- Warm-up: a camera without a model keeps its frames (patches as fp16) for `warmup_s` seconds of
  stream time, fits a model (`fit`), saves it atomically and scores from then on. Frames score 0
  meanwhile: the camera cannot know its own normal before it has seen it.
- Adaptation: every `adapt_every_s` at most, a frame scored normal (below the edge of normal) gives
  a candidate: its `ADAPT_PATCHES` least familiar patches. A candidate joins the memory only after
  `horizon_s` with no event open; an event drops every pending candidate. So an anomaly that
  persists is never learnt from its own frames, and the frames just before it are not either.
  Adapted patches live beside the learnt core in a ring of at most a quarter of `memory_patches`;
  the oldest leave first. A committed candidate's colour copy also moves the static part's
  background `BACKGROUND_RATE` of the way towards it (one candidate per `adapt_every_s`: the
  background follows the daylight over tens of candidates, and a walker in one copy moves it by
  a twentieth of their contrast, never past `PIXEL_DELTA`). Added, evicted and refused
  patches/frames are counted (metrics, logs) and the adapted model is saved when the stream ends.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from vau.edge import metrics
from vau.edge.analysers import Analysis
from vau.edge.normality.calibration import Calibration
from vau.edge.normality.fit import LearnError, NormalFrame, fit
from vau.edge.normality.model import NormalityModel, Scored, background_copy, normalise_rows
from vau.edge.normality.store import MIN_LEARN_S, NormalityError, Provenance, save_model
from vau.edge.settings import NormalitySettings
from vau.edge.types import F32, I64, U8

log = logging.getLogger(__name__)

ADAPT_BELOW = 0.3  # a frame whose every part is below this (the edge of normal, u = 1) is normal
ADAPT_PATCHES = 16  # patches a normal frame offers to the memory
BACKGROUND_RATE = 0.05  # share of a committed candidate's copy blended into the background


def judged_normal(scored: Scored) -> bool:
    """Every calibrated part below the edge of its normal. Not `scored.score`: that weights the
    static part up (`model.combine`), and a thing at rest well inside its normal would then keep
    the camera from ever adapting."""
    return max(scored.parts.values()) < ADAPT_BELOW


@dataclass(frozen=True, eq=False)
class _Candidate:
    t: float
    tokens: F32  # (k, C) unit-norm
    positions: I64  # (k,)
    copy: U8 | None = None  # the frame's copy the background is made of (colour or grey)


class OnlineNormality:
    """One camera's model source: a fixed model, or one being learnt; adapts when configured."""

    def __init__(
        self,
        cfg: NormalitySettings,
        camera: str,
        model: NormalityModel | None,
        prov: Provenance,
        folder: Path | None,
        head_calibrated: bool,
        core: int | None = None,
    ) -> None:
        self._cfg = cfg
        self._camera = camera
        self.model = model
        self._prov = prov
        self._folder = folder
        self._head_ok = head_calibrated
        self._warm: list[NormalFrame] = []
        self._previous: F32 | None = None  # the last frame's patches (token flow)
        learnt = 0 if model is None else int(model.memory.shape[0])
        self._core = learnt if core is None else min(core, learnt)  # the rest was adapted
        self._pending: deque[_Candidate] = deque()
        self._last_candidate = -np.inf
        self.counts = dict.fromkeys(("added", "evicted", "refused"), 0)

    # -- scoring ---------------------------------------------------------------------------------

    def observe(self, a: Analysis) -> Scored | None:
        """Score a frame (None while warming up, or the frame that finishes the warm-up)."""
        previous = self._previous if a.change is not None else None
        self._previous = a.patches
        if self.model is None:
            self._warm_up(a)
            return None
        scored = self.model.score(
            a.patches, a.change, a.cls, self._cfg.hot_patches, previous, a.flow, a.still, a.inner
        )
        metrics.NORMALITY_SCORE.labels(self._camera).set(scored.score)
        if self._cfg.adapt:
            self._offer(a, scored)
        return scored

    def head_calibration(self) -> Calibration | None:
        if self.model is None or not self._head_ok:
            return None
        return self.model.calibration.get("head")

    # -- warm-up -----------------------------------------------------------------------------------

    def _warm_up(self, a: Analysis) -> None:
        eff = a.effective
        self._warm.append(NormalFrame.kept(a, eff.t))
        seconds = eff.t - self._warm[0].t
        if seconds < max(self._cfg.warmup_s, MIN_LEARN_S):
            return
        frames, self._warm = self._warm, []
        try:
            model = fit(frames, eff.grid, self._cfg.memory_patches, self._cfg.radius)
        except LearnError as exc:
            raise NormalityError(f"online learning failed: {exc}") from None
        self._prov = replace(
            self._prov,
            frames=len(frames),
            seconds=seconds,
            footage=[
                {"source": "online warm-up", "seconds": round(seconds, 1), "frames": len(frames)}
            ],
        )
        self.model, self._core, self._head_ok = model, int(model.memory.shape[0]), True
        if self._cfg.device != "cpu":
            self.model = replace(model, device=self._cfg.device)
        if self._folder is not None:
            save_model(model, self._prov, self._folder)
        log.info(
            "camera %s: learnt its normal from %.0f s (%d frames); scoring now%s",
            self._camera,
            seconds,
            len(frames),
            f", model saved to {self._folder}" if self._folder else "",
        )

    # -- adaptation --------------------------------------------------------------------------------

    def _offer(self, a: Analysis, scored: Scored) -> None:
        t = a.effective.t
        if not judged_normal(scored):
            self._count("refused", 1)
            return
        if t - self._last_candidate < self._cfg.adapt_every_s:
            return
        self._last_candidate = t
        amap = scored.anomaly_map
        pick = np.sort(np.argsort(-amap, kind="stable")[:ADAPT_PATCHES]).astype(np.int64)
        tokens = normalise_rows(a.looks[pick].astype(np.float32))
        bg = None if self.model is None else self.model.background
        copy = None if a.still is None or bg is None else background_copy(a.still, bg)
        self._pending.append(_Candidate(t, tokens, pick, copy))

    def settle(self, t: float, event_open: bool) -> None:
        if event_open:
            if self._pending:
                self._count("refused", len(self._pending))
                log.info(
                    "camera %s: %d normality candidates dropped (event open)",
                    self._camera,
                    len(self._pending),
                )
            self._pending.clear()
            return
        while self._pending and t - self._pending[0].t >= self._cfg.horizon_s:
            self._commit(self._pending.popleft())

    def _commit(self, c: _Candidate) -> None:
        model = self.model
        assert model is not None
        ring = max(ADAPT_PATCHES, self._cfg.memory_patches // 4)
        memory = np.concatenate([model.memory, c.tokens])
        positions = np.concatenate([model.positions, c.positions])
        over = memory.shape[0] - (self._core + ring)
        if over > 0:  # the oldest adapted patches leave; the learnt core stays
            keep = np.r_[0 : self._core, self._core + over : memory.shape[0]]
            memory, positions = memory[keep], positions[keep]
            self._count("evicted", over)
        bg = model.background
        if bg is not None and c.copy is not None and c.copy.shape == bg.shape:
            bg = bg + BACKGROUND_RATE * (c.copy - bg)  # a new array: the old model stays whole
        memory = np.ascontiguousarray(memory)
        self.model = replace(model, memory=memory, positions=positions, background=bg)
        self._count("added", c.tokens.shape[0])

    def _count(self, change: str, n: int) -> None:
        self.counts[change] += n
        metrics.NORMALITY_MEMORY.labels(self._camera, change).inc(n)

    def close(self) -> None:
        """Save an adapted model (a model only learnt and never changed was saved already)."""
        if self.model is None or self._folder is None or not self.counts["added"]:
            return
        settings = self._prov.settings | {"core_patches": self._core}
        prov = replace(self._prov, updates=dict(self.counts), settings=settings)
        save_model(self.model, prov, self._folder)
        log.info(
            "camera %s: adapted normality model saved to %s (%s)",
            self._camera,
            self._folder,
            self.counts,
        )
