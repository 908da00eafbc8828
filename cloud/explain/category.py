"""The observed category: what kind of anomaly the edge's evidence looks like, or "unknown".

A small open-set classifier over one event's facts (`features`), trained on the project's
synthetic kinds (`vau-cloud train-category`), never on the kinds it is evaluated as unseen on.
It is a Gaussian classifier with one shared diagonal covariance (linear discriminants): each
known kind is a centre in the standardised feature space. An event is that kind when

- its posterior is at least `min_posterior` (it is clearly nearer one kind than the others), and
- it lies within `edge` of that kind's centre (squared Mahalanobis distance; `edge` is the
  `EDGE_QUANTILE` of the training events' distances to their own kind's centre),

else "unknown": an event unlike every kind it knows is not forced into the nearest one. Each kind
maps to the class name the explanation reports (`labels`); a label the deployment has not
configured (`explain.classes`) is reported as "unknown" too.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vau.cloud.explain.evidence import EventEvidence, Facts
from vau.cloud.explain.schema import UNKNOWN

log = logging.getLogger(__name__)

FORMAT = "vau-category-1"
BUNDLED = Path(__file__).parent / "categories" / "default.json"
EDGE_QUANTILE = 0.95
MIN_POSTERIOR = 0.6
PARTS = ("appearance", "motion", "speed", "global", "head")
FEATURES = (
    "view_share",
    "view_change",
    "speed",
    "moving",
    "rise_s",
    "spreading",
    "extent_growth",
    "duration_s",
    "peak",
    "regions",
    *(f"mean_{p}" for p in PARTS),
)
LABELS = {  # synthetic kind -> the class name an explanation reports
    "intruder": "Intrusion",
    "running": "Running",
    "smoke": "Smoke",
    "tamper": "Camera Tamper",
}


class CategoryError(ValueError):
    """A classifier file that cannot be used; the message says what to do."""


def features(ev: EventEvidence, f: Facts) -> np.ndarray:
    """(len(FEATURES),) what the classifier reads of one event."""
    s = f.scene
    parts = [dict(fr.components) for fr in ev.frames if fr.components]
    means = [float(np.mean([p.get(k, 0.0) for p in parts])) if parts else 0.0 for k in PARTS]
    growth = {"spreading": 1.0, "shrinking": -1.0}.get(s.growth, 0.0)
    row = [
        s.view_share,
        float(s.view_change),
        min(s.speed, 2.0),
        float(s.movement != "none"),
        min(s.rise_s, 5.0),
        growth,
        s.extents[1] - s.extents[0],
        min(f.duration, 30.0),
        f.peak,
        float(len(s.where)),
        *means,
    ]
    return np.asarray(row, np.float64)


@dataclass(frozen=True)
class CategoryModel:
    kinds: tuple[str, ...]
    labels: Mapping[str, str]  # kind -> reported class name
    mean: np.ndarray  # (F,) standardisation
    scale: np.ndarray  # (F,)
    centres: np.ndarray  # (K, F) standardised class means
    var: np.ndarray  # (F,) shared within-class variance (standardised units)
    priors: np.ndarray  # (K,)
    edge: float  # squared Mahalanobis distance beyond which an event is unknown
    min_posterior: float
    provenance: Mapping[str, Any]

    def _distances(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale
        return np.asarray((((z - self.centres) ** 2) / self.var).sum(axis=1))

    def posterior(self, x: np.ndarray) -> np.ndarray:
        logits = -0.5 * self._distances(x) + np.log(self.priors)
        p = np.exp(logits - logits.max())
        return np.asarray(p / p.sum())

    def kind_of(self, x: np.ndarray) -> tuple[str, float]:
        """(kind or UNKNOWN, posterior of the nearest kind)."""
        post = self.posterior(x)
        k = int(np.argmax(post))
        near = float(self._distances(x)[k]) <= self.edge
        return (self.kinds[k] if near and post[k] >= self.min_posterior else UNKNOWN), float(
            post[k]
        )

    def observe(self, ev: EventEvidence, f: Facts, classes: Sequence[str]) -> str:
        """The class name to report, or UNKNOWN (also for a class not configured)."""
        kind, _ = self.kind_of(features(ev, f))
        label = self.labels.get(kind, UNKNOWN)
        return label if label in classes else UNKNOWN


def fit(
    rows: Sequence[np.ndarray], kinds: Sequence[str], provenance: Mapping[str, Any]
) -> CategoryModel:
    """A model from training events' feature rows and their kinds."""
    names = tuple(sorted(set(kinds)))
    if len(names) < 2:
        raise CategoryError(f"training needs events of at least two kinds, got {names}")
    x = np.stack(rows)
    y = np.array([names.index(k) for k in kinds])
    mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-3)
    z = (x - mean) / scale
    centres = np.stack([z[y == k].mean(axis=0) for k in range(len(names))])
    var = np.maximum(((z - centres[y]) ** 2).mean(axis=0), 0.05)
    priors = np.bincount(y, minlength=len(names)) / len(y)
    own = (((z - centres[y]) ** 2) / var).sum(axis=1)
    edge = float(np.quantile(own, EDGE_QUANTILE))
    labels = {k: LABELS.get(k, k) for k in names}
    counts = {k: int((y == i).sum()) for i, k in enumerate(names)}
    prov = {**provenance, "events": counts}
    return CategoryModel(
        names, labels, mean, scale, centres, var, priors, edge, MIN_POSTERIOR, prov
    )


def save(model: CategoryModel, path: Path) -> None:
    doc = {
        "format": FORMAT,
        "features": list(FEATURES),
        "kinds": list(model.kinds),
        "labels": dict(model.labels),
        "mean": model.mean.tolist(),
        "scale": model.scale.tolist(),
        "centres": model.centres.tolist(),
        "var": model.var.tolist(),
        "priors": model.priors.tolist(),
        "edge": model.edge,
        "min_posterior": model.min_posterior,
        "provenance": dict(model.provenance),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", "utf-8")
    tmp.replace(path)


def load(path: Path = BUNDLED) -> CategoryModel:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CategoryError(
            f"cannot read the category classifier {path}: {exc}; train one with "
            "`vau-cloud train-category` or leave explain.category_model unset for the bundled one"
        ) from None
    if doc.get("format") != FORMAT or doc.get("features") != list(FEATURES):
        raise CategoryError(
            f"{path} is not a {FORMAT} classifier over this version's features; train it again "
            "with `vau-cloud train-category`"
        )
    arr = {k: np.asarray(doc[k], np.float64) for k in ("mean", "scale", "centres", "var", "priors")}
    if arr["centres"].shape != (len(doc["kinds"]), len(FEATURES)) or not all(
        np.isfinite(a).all() for a in arr.values()
    ):
        raise CategoryError(f"{path}: arrays of the wrong shape or not finite; train it again")
    edge = float(doc["edge"])
    if not math.isfinite(edge) or edge <= 0:
        raise CategoryError(f"{path}: edge must be a positive number; train it again")
    return CategoryModel(
        tuple(doc["kinds"]),
        dict(doc["labels"]),
        arr["mean"],
        arr["scale"],
        arr["centres"],
        arr["var"],
        arr["priors"],
        edge,
        float(doc["min_posterior"]),
        dict(doc.get("provenance", {})),
    )


def load_category(path: Path | None) -> CategoryModel | None:
    """The configured classifier (errors are the user's to fix), else the bundled one; None with
    a warning when this install has none (the observed category is then always "unknown")."""
    if path is not None:
        return load(path)
    if not BUNDLED.is_file():
        log.warning("no bundled category classifier in %s: observed_category is 'unknown'", BUNDLED)
        return None
    return load(BUNDLED)
