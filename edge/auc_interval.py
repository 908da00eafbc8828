"""How sure a frame AUC is: a percentile interval from resampling whole clips.

`vau-edge eval` pools a few hundred frames of a dozen clips per kind, and the choices made on it
turn on differences of 0.005-0.02. A clip's frames are not independent draws (an anomaly's frames
rise and fall together; one walker lifts a normal clip's every frame), so the interval resamples
clips, not frames (the cluster bootstrap): each replicate draws, with replacement, as many clips
of every stratum (each kind, and the normal clips) as the set has, and takes the AUC of the
drawn clips' span frames against their frames outside any span. The interval is the middle
`LEVEL` of `REPLICATES` such AUCs. The draws are seeded, so a report is reproducible, and the
same draws serve every series of one report (intervals of two scorers are paired).

The interval says how much the figure would move on another set of clips like these: another
placement of the same kinds on the same footage, not another scene.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vau.edge.train import roc_auc

REPLICATES = 200  # resampled sets per interval (the report's cost: ~1 s a series per 200)
LEVEL = 0.95  # the interval's coverage
SEED = 0

F64 = npt.NDArray[np.float64]
Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class ClipScores:
    """One clip's frame scores, split by its spans."""

    stratum: str  # its kind (normal clips are one stratum of their own)
    inside: F64  # scores of its frames inside a span
    outside: F64  # scores of its frames outside every span


def draws(
    strata: Sequence[str], replicates: int = REPLICATES, seed: int = SEED
) -> list[npt.NDArray[np.int64]]:
    """`replicates` resampled sets of clip indices: each stratum's clips drawn with replacement,
    as many as it has."""
    rng = np.random.default_rng(seed)
    members: dict[str, list[int]] = {}
    for i, s in enumerate(strata):
        members.setdefault(s, []).append(i)
    pools = [np.asarray(m, np.int64) for _, m in sorted(members.items())]
    return [np.concatenate([rng.choice(p, p.size) for p in pools]) for _ in range(replicates)]


def intervals(
    clips: Sequence[ClipScores],
    groups: Mapping[str, Sequence[str]],
    sets: Sequence[npt.NDArray[np.int64]],
    level: float = LEVEL,
) -> dict[str, Interval | None]:
    """For each group (a name -> its kinds), the interval of the AUC of its clips' span frames
    against every drawn clip's frames outside the spans, over the resampled `sets` (`draws`);
    None when the group has no span frames or too few replicates had both kinds of frames."""
    lo_q, hi_q = (1.0 - level) / 2.0, (1.0 + level) / 2.0
    out: dict[str, Interval | None] = {}
    for name, kinds in groups.items():
        members = frozenset(kinds)
        aucs = [a for idx in sets if (a := _auc([clips[i] for i in idx], members)) is not None]
        if not aucs or len(aucs) < len(sets) / 2:
            out[name] = None
            continue
        lo, hi = np.quantile(aucs, [lo_q, hi_q])
        out[name] = (round(float(lo), 4), round(float(hi), 4))
    return out


def _auc(drawn: Sequence[ClipScores], kinds: frozenset[str]) -> float | None:
    pos = [c.inside for c in drawn if c.stratum in kinds and c.inside.size]
    neg = [c.outside for c in drawn if c.outside.size]
    if not pos or not neg:
        return None
    p, n = np.concatenate(pos), np.concatenate(neg)
    return roc_auc(np.r_[p, n], np.r_[np.ones(p.size), np.zeros(n.size)])
