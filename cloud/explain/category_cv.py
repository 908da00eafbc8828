"""How well the observed-category classifier generalises, from its training events alone.

`vau-cloud train-category` over two or more eval sets reports it beside the file it writes
(`cv`), each figure over folds that leave one set out of training and score its events:

- `known_right`: the share of the left-out set's known-kind events named as their kind;
- `probes_unknown`: the share of its probe-kind events called unknown. The same probe kinds are
  in training (the outlier class), so this is what the file does for kinds it was shown;
- `unseen_unknown`: with one probe kind also left out of training entirely, the share of the
  left-out set's events of that kind called unknown: a kind the classifier never saw, as a
  deployment's new kinds are. This, not `probes_unknown`, is the estimate the held-out kinds
  come near (docs/explain.md, "Near a training event of the kind").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vau.cloud.explain import category as cat
from vau.cloud.explain.schema import UNKNOWN
from vau.edge.synth import PROBE_KINDS


@dataclass(frozen=True)
class Sample:
    """One training event: its eval kind (a known or a probe kind), facts row and look."""

    kind: str
    row: np.ndarray
    look: np.ndarray | None

    @property
    def label(self) -> str:
        """What the classifier is taught: the kind, or UNKNOWN for a probe kind."""
        return UNKNOWN if self.kind in PROBE_KINDS else self.kind


def fit_samples(samples: Sequence[Sample], provenance: dict[str, Any]) -> cat.CategoryModel:
    return cat.fit(
        [s.row for s in samples], [s.label for s in samples], provenance, [s.look for s in samples]
    )


def cross_validate(sets: Sequence[Sequence[Sample]]) -> dict[str, Any]:
    """The three shares above (each with its number of events, `unseen_unknown` per probe kind
    too); a fold whose training has fewer than two known kinds is skipped."""
    known: list[bool] = []
    probes: list[bool] = []
    unseen: dict[str, list[bool]] = {}
    for i, held in enumerate(sets):
        rest = [s for j, other in enumerate(sets) if j != i for s in other]
        model = _fit_or_none(rest)
        if model is not None:
            for s in held:
                got = model.kind_of(s.row, s.look)[0]
                (probes if s.kind in PROBE_KINDS else known).append(got == s.label)
        for probe in sorted({s.kind for s in held if s.kind in PROBE_KINDS}):
            without = _fit_or_none([s for s in rest if s.kind != probe])
            if without is None:
                continue
            unseen.setdefault(probe, []).extend(
                without.kind_of(s.row, s.look)[0] == UNKNOWN for s in held if s.kind == probe
            )
    every = [hit for hits in unseen.values() for hit in hits]
    return {
        "folds": len(sets),
        "known_right": _share(known),
        "probes_unknown": _share(probes),
        "unseen_unknown": _share(every) | {"kinds": {k: _share(v) for k, v in unseen.items()}},
    }


def _fit_or_none(samples: Sequence[Sample]) -> cat.CategoryModel | None:
    try:
        return fit_samples(samples, {})
    except cat.CategoryError:
        return None


def _share(hits: Sequence[bool]) -> dict[str, Any]:
    return {"share": round(float(np.mean(hits)), 4) if hits else None, "n": len(hits)}
