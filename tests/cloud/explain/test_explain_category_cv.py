"""The classifier's cross-validation (`train-category`'s `cv`), on hand-made events."""

from __future__ import annotations

import numpy as np

from vau.cloud.explain import category as cat
from vau.cloud.explain.category_cv import Sample, cross_validate

F = len(cat.FEATURES)


def events(kind: str, centre: float, n: int, seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    base = centre + np.arange(F) * 0.1
    return [Sample(kind, base + 0.05 * rng.standard_normal(F), None) for _ in range(n)]


def one_set(seed: int) -> list[Sample]:
    """Two known kinds apart; a vehicle unlike both; a flood that lies where intruders do."""
    return (
        events("intruder", 0.0, 12, seed)
        + events("smoke", 1.0, 12, seed + 1)
        + events("vehicle", 4.0, 12, seed + 2)
        + events("flood", 0.0, 12, seed + 3)
    )


def test_a_probe_kind_left_out_of_training_is_scored_as_an_unseen_kind() -> None:
    """Shown to the classifier (the outlier class), a flood lying where intruders do is not
    simply an intrusion; never shown, it is one: `unseen_unknown` tells the two apart, and a
    kind unlike every known one stays unknown either way."""
    cv = cross_validate([one_set(0), one_set(10), one_set(20)])
    assert cv["folds"] == 3
    assert cv["known_right"]["n"] == 72
    assert cv["known_right"]["share"] >= 0.7  # a few fresh events fall past the guards' edges
    unseen = cv["unseen_unknown"]["kinds"]
    assert unseen["vehicle"] == {"share": 1.0, "n": 36}
    # drawn from the intruders' own spread: only the few the nearness guard refuses
    assert unseen["flood"]["share"] is not None and unseen["flood"]["share"] <= 0.2
    assert cv["unseen_unknown"]["n"] == 72
    assert cv["probes_unknown"]["n"] == 72


def test_a_fold_with_one_known_kind_left_to_train_on_is_skipped() -> None:
    whole = events("intruder", 0.0, 12, 0) + events("smoke", 1.0, 12, 1)
    intruders_only = events("intruder", 0.0, 12, 2)
    cv = cross_validate([whole, intruders_only])
    assert cv["known_right"]["n"] == 12  # only the fold trained on `whole` scores
    assert cv["known_right"]["share"] >= 0.7
    assert cv["unseen_unknown"] == {"share": None, "n": 0, "kinds": {}}
