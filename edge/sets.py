"""SETS — Spatial Effective Token Selection (VA-GPT, ICCV 2025).

D_t[i] = || F_t[i] - F_{t-1}[i] ||_1 for each patch i; keep the top-K ratio of patches by D_t, or
(threshold mode, after VideoLLaMA3's DiffFP) every patch whose mean per-channel change exceeds a
threshold.

A frame with no predecessor — the first of a stream, or the first after a gap longer than
`max_gap_s` — is a *keyframe*. Its reference is its own mean token, so "distinct" keyframes keep the
same number of patches as any frame, chosen as the patches least like the frame's average (the
salient ones; in threshold mode too, since a keyframe has no change to threshold); "all" keyframes
keep every patch, for consumers that want a full refresh.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vau.edge.settings import SetsSettings
from vau.edge.types import F32, I64, EffectiveTokens, Tokens


def l1_distance(current: F32, previous: F32) -> F32:
    """(N, C), (N, C) or (1, C) -> (N,) patch-wise Manhattan distance."""
    d: F32 = np.abs(current - previous).sum(axis=1, dtype=np.float32)
    return d


def keep_count(patches: int, ratio: float) -> int:
    """Patches kept at `ratio`: rounded, never fewer than one."""
    return max(1, min(patches, round(patches * ratio)))


def top_k(distances: F32, k: int) -> I64:
    """Indices of the k largest distances, ascending by index (ties broken by lower index)."""
    if k >= distances.shape[0]:
        return np.arange(distances.shape[0], dtype=np.int64)
    # A stable sort makes ties deterministic; for N = 256 it costs a few microseconds.
    order = np.argsort(-distances, kind="stable")[:k]
    return np.sort(order).astype(np.int64)


def over_threshold(distances: F32, channels: int, threshold: float) -> I64:
    """Indices whose mean per-channel change exceeds `threshold`, ascending."""
    return np.flatnonzero(distances / channels > threshold).astype(np.int64)


@dataclass
class StreamMemory:
    """What SETS remembers of one stream: the previous frame's time and patch tokens.

    The one keyframe rule lives here and in `choose`: a frame is a keyframe when the stream has
    no previous frame (start, `forget`) or the gap to it is longer than `max_gap_s`.
    """

    t: float | None = None
    patches: F32 | None = None

    def reference(self, t: float, max_gap_s: float) -> F32 | None:
        """The patches this frame is compared with; None makes it a keyframe."""
        if self.patches is None or self.t is None or t - self.t > max_gap_s:
            return None
        return self.patches

    def remember(self, t: float, patches: F32) -> None:
        self.t, self.patches = t, patches

    def forget(self) -> None:
        self.t, self.patches = None, None


@dataclass(frozen=True)
class Choice:
    """SETS's answer for one frame."""

    indices: I64  # (K,) ascending
    distances: F32  # (K,) each kept patch's change (a keyframe's: distance to its mean token)
    change: F32 | None  # (N,) every patch's change since the previous frame; None: keyframe

    @property
    def keyframe(self) -> bool:
        return self.change is None


def choose(
    patches: F32, reference: F32 | None, cfg: SetsSettings, picked: I64 | None = None
) -> Choice:
    """Which patches of a frame to keep; `reference` None makes it a keyframe.

    `picked`: indices a fused graph already chose by top-K on the change (non-keyframes only).
    A keyframe's reference is its own mean token: "distinct" keeps as many patches as any frame,
    the ones least like the frame's average (also in threshold mode, since a keyframe has no
    change to threshold); "all" keeps every patch.
    """
    n, c = patches.shape
    if reference is None:
        dist = l1_distance(patches, patches.mean(axis=0, keepdims=True))
        if cfg.keyframe == "all":
            indices = np.arange(n, dtype=np.int64)
        else:
            indices = top_k(dist, keep_count(n, cfg.keep_ratio))
    else:
        dist = l1_distance(patches, reference)
        if picked is not None:
            indices = picked
        elif cfg.mode == "threshold":
            indices = over_threshold(dist, c, cfg.threshold)
        else:
            indices = top_k(dist, keep_count(n, cfg.keep_ratio))
    return Choice(indices, np.ascontiguousarray(dist[indices]), None if reference is None else dist)


def effective(tokens: Tokens, choice: Choice) -> EffectiveTokens:
    """The kept tokens of a frame, as the rest of the pipeline sees them."""
    return EffectiveTokens(
        seq=tokens.seq,
        t=tokens.t,
        wall_time=tokens.wall_time,
        indices=choice.indices,
        tokens=np.ascontiguousarray(tokens.patches[choice.indices]),
        distances=choice.distances,
        patches=tokens.patches.shape[0],
        grid=tokens.grid,
        keyframe=choice.keyframe,
    )


class SetsSelector:
    """SETS for one stream: a `StreamMemory` and `choose`, for tools that walk one stream."""

    def __init__(self, cfg: SetsSettings) -> None:
        self._cfg = cfg
        self._memory = StreamMemory()

    def reset(self) -> None:
        self._memory.forget()

    def select(self, tokens: Tokens) -> EffectiveTokens:
        return self.step(tokens)[0]

    def step(self, tokens: Tokens) -> tuple[EffectiveTokens, F32 | None]:
        """The kept tokens and every patch's change since the previous frame (None: keyframe)."""
        choice = choose(
            tokens.patches, self._memory.reference(tokens.t, self._cfg.max_gap_s), self._cfg
        )
        self._memory.remember(tokens.t, tokens.patches)
        return effective(tokens, choice), choice.change


def ranks(values: F32) -> F32:
    """0 for the smallest value up to N - 1 for the largest (stable for ties)."""
    out = np.empty(values.shape[0], np.float32)
    out[np.argsort(values, kind="stable")] = np.arange(values.shape[0], dtype=np.float32)
    return out


def selection_key(change: F32 | None, novelty: F32, select: str) -> F32:
    """What top-K ranks by: `novelty` alone, or (`both`) the sum of the change and novelty ranks.

    A keyframe (change None) ranks by novelty in both modes.
    """
    if select == "novelty" or change is None:
        return novelty
    return ranks(change) + ranks(novelty)


def prefer(
    eff: EffectiveTokens, patches: F32, change: F32 | None, novelty: F32 | None, select: str
) -> EffectiveTokens:
    """`eff` with the same number of patches, re-ranked by `selection_key` for `select` = novelty
    or both; unchanged for `change`, without an anomaly map, or when every patch is kept. Distances
    stay each patch's change (a keyframe's: to its mean token)."""
    if select == "change" or novelty is None or eff.kept == eff.patches:
        return eff
    indices = top_k(selection_key(change, novelty, select), eff.kept)
    if change is None:
        change = l1_distance(patches, patches.mean(axis=0, keepdims=True))
    return replace(
        eff,
        indices=indices,
        tokens=np.ascontiguousarray(patches[indices]),
        distances=np.ascontiguousarray(change[indices]),
    )
