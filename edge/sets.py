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

from dataclasses import replace

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


class SetsSelector:
    """Stateful per stream: remembers the previous frame's patch tokens."""

    def __init__(self, cfg: SetsSettings) -> None:
        self._cfg = cfg
        self._prev: Tokens | None = None

    def reset(self) -> None:
        self._prev = None

    def select(self, tokens: Tokens) -> EffectiveTokens:
        return self.step(tokens)[0]

    def step(self, tokens: Tokens) -> tuple[EffectiveTokens, F32 | None]:
        """The kept tokens and every patch's change since the previous frame (None: keyframe)."""
        prev, self._prev = self._prev, tokens
        keyframe = prev is None or tokens.t - prev.t > self._cfg.max_gap_s
        n, c = tokens.patches.shape
        if prev is not None and not keyframe:
            dist = l1_distance(tokens.patches, prev.patches)
        else:
            dist = l1_distance(tokens.patches, tokens.patches.mean(axis=0, keepdims=True))
        indices = self._indices(dist, c, keyframe)
        eff = EffectiveTokens(
            seq=tokens.seq,
            t=tokens.t,
            wall_time=tokens.wall_time,
            indices=indices,
            tokens=np.ascontiguousarray(tokens.patches[indices]),
            distances=np.ascontiguousarray(dist[indices]),
            patches=n,
            grid=tokens.grid,
            keyframe=keyframe,
        )
        return eff, (None if keyframe else dist)

    def _indices(self, dist: F32, channels: int, keyframe: bool) -> I64:
        n = dist.shape[0]
        if keyframe and self._cfg.keyframe == "all":
            return np.arange(n, dtype=np.int64)
        if self._cfg.mode == "threshold" and not keyframe:
            return over_threshold(dist, channels, self._cfg.threshold)
        return top_k(dist, keep_count(n, self._cfg.keep_ratio))


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
