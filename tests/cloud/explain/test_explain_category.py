"""The observed-category classifier: known kinds by their facts, "unknown" for the unlike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vau.cloud.explain import category as cat
from vau.cloud.explain.category import CategoryError, fit, load, save
from vau.cloud.explain.evidence import EventEvidence, FrameEvidence, facts
from vau.cloud.explain.schema import UNKNOWN
from vau.edge.synth import HELDOUT_KINDS, KINDS

F = len(cat.FEATURES)


def cluster(centre: float, n: int = 30, seed: int = 0) -> list[np.ndarray]:
    """n feature rows scattered around one point (a distinct value per feature)."""
    rng = np.random.default_rng(seed)
    base = typical(centre)
    return [base + 0.05 * rng.standard_normal(F) for _ in range(n)]


@pytest.fixture
def model() -> cat.CategoryModel:
    rows = cluster(0.0) + cluster(1.0, seed=1) + cluster(2.0, seed=2)
    kinds = ["intruder"] * 30 + ["smoke"] * 30 + ["tamper"] * 30
    return fit(rows, kinds, {"trained_on": "hand-made rows"})


def typical(centre: float) -> np.ndarray:
    """The point a cluster scatters around."""
    return centre + np.arange(F) * 0.1


def test_an_event_like_a_known_kind_is_that_kind(model: cat.CategoryModel) -> None:
    for centre, kind in ((0.0, "intruder"), (1.0, "smoke"), (2.0, "tamper")):
        got, posterior = model.kind_of(typical(centre))
        assert got == kind and posterior > 0.9


def test_an_event_unlike_every_kind_is_unknown_not_the_nearest(model: cat.CategoryModel) -> None:
    far = cluster(6.0, 1, seed=9)[0]  # nearest to tamper, but far beyond its spread
    assert model.kind_of(far)[0] == UNKNOWN
    between = (cluster(0.0, 1, seed=9)[0] + cluster(1.0, 1, seed=9)[0]) / 2
    assert model.kind_of(between)[0] == UNKNOWN  # no kind is clearly nearer


def test_the_edge_lets_most_training_events_in(model: cat.CategoryModel) -> None:
    rows = cluster(0.0, 200, seed=5)
    known = sum(model.kind_of(r)[0] == "intruder" for r in rows)
    assert known >= 0.8 * len(rows)  # the edge is the 90th percentile of the training events


def test_save_and_load_round_trip_with_provenance(model: cat.CategoryModel, tmp_path: Path) -> None:
    path = tmp_path / "category.json"
    save(model, path)
    again = load(path)
    x = cluster(1.0, 1, seed=3)[0]
    assert again.kind_of(x) == model.kind_of(x)
    assert again.labels == {"intruder": "Intrusion", "smoke": "Smoke", "tamper": "Camera Tamper"}
    assert again.provenance["events"] == {"intruder": 30, "smoke": 30, "tamper": 30}


def test_a_classifier_over_other_features_is_refused_with_what_to_do(
    model: cat.CategoryModel, tmp_path: Path
) -> None:
    path = tmp_path / "category.json"
    save(model, path)
    doc = json.loads(path.read_text())
    doc["features"] = doc["features"][:-1]
    path.write_text(json.dumps(doc))
    with pytest.raises(CategoryError, match="train it again"):
        load(path)
    with pytest.raises(CategoryError, match="vau-cloud train-category"):
        load(tmp_path / "missing.json")


def test_an_event_like_the_outliers_it_was_shown_is_unknown_not_the_nearest_known_kind() -> None:
    """Outlier exposure: events of kinds that are none of the known ones (the tuning-only probe
    kinds) train an outlier class; an event like them is unknown though it lies within the edge
    of the known kind it is nearest."""
    rows = cluster(0.0) + cluster(1.0, seed=1)
    kinds = ["intruder"] * 30 + ["smoke"] * 30
    like = typical(1.0) + np.where(np.arange(F) < 2, 0.15, 0.0)  # smoke, but two features off
    assert fit(rows, kinds, {}).kind_of(like)[0] == "smoke"
    outliers = [r + np.where(np.arange(F) < 2, 0.15, 0.0) for r in cluster(1.0, seed=3)]
    model = fit(rows + outliers, kinds + [UNKNOWN] * 30, {})
    assert model.kind_of(like)[0] == UNKNOWN
    assert model.kind_of(typical(1.0))[0] == "smoke"
    assert model.kind_of(typical(0.0))[0] == "intruder"
    assert model.labels[UNKNOWN] == UNKNOWN and model.provenance["events"][UNKNOWN] == 30


def test_training_needs_two_kinds() -> None:
    with pytest.raises(CategoryError, match="at least two known kinds"):
        fit(cluster(0.0), ["smoke"] * 30, {})
    with pytest.raises(CategoryError, match="at least two known kinds"):
        fit(cluster(0.0) + cluster(1.0), ["smoke"] * 30 + [UNKNOWN] * 30, {})


def test_the_bundled_classifier_loads_and_knows_the_tuned_kinds_and_the_probes_as_outliers() -> (
    None
):
    model = load(cat.BUNDLED)
    assert set(model.kinds) == {*KINDS, UNKNOWN} == set(model.provenance["events"])
    assert not set(model.provenance["events"]) & set(HELDOUT_KINDS)  # never trained on those
    assert all(n >= 5 for n in model.provenance["events"].values())
    assert model.memory is not None and model.memory_kinds is not None
    assert len(model.memory) == sum(model.provenance["events"].values())


def test_a_kind_whose_class_is_not_configured_is_reported_unknown() -> None:
    frames = tuple(
        FrameEvidence(2.0 + k, 0.9, (0, 1, 2), (16, 16), hot=(17, 18), components=(("head", 0.8),))
        for k in range(4)
    )
    ev = EventEvidence("cam-0", "ev-1", 2.0, 6.0, 0.92, 4.0, "prior", frames, 0.1)
    x = cat.features(ev, facts(ev))
    rng = np.random.default_rng(0)
    rows = [x + 0.01 * rng.standard_normal(F) for _ in range(20)]
    rows += [x + 5.0 + 0.01 * rng.standard_normal(F) for _ in range(20)]
    model = fit(rows, ["smoke"] * 20 + ["tamper"] * 20, {})
    assert model.observe(ev, facts(ev), ("Smoke", "Arson")) == "Smoke"
    assert model.observe(ev, facts(ev), ("Arson",)) == UNKNOWN


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


LOOKS = {k: unit(np.eye(8)[i] + 0.2) for i, k in enumerate(("intruder", "smoke"))}  # width 8


def looks_model(seed: int = 0) -> cat.CategoryModel:
    """Two kinds with the same facts that look different to the encoder."""
    rng = np.random.default_rng(seed)
    rows = cluster(0.0, 40, seed=seed)
    kinds = ["intruder"] * 20 + ["smoke"] * 20
    looks = [unit(LOOKS[k] + 0.05 * rng.standard_normal(8)) for k in kinds]
    return fit(rows, kinds, {}, looks)


def test_kinds_alike_in_facts_are_told_apart_by_their_looks() -> None:
    model = looks_model()
    assert model.looks is not None and model.looks.shape == (2, 8)
    x = typical(0.0)
    assert model.kind_of(x, LOOKS["intruder"])[0] == "intruder"
    assert model.kind_of(x, LOOKS["smoke"])[0] == "smoke"
    assert model.kind_of(x, unit(-np.ones(8)))[0] == UNKNOWN  # looks like neither


def test_without_a_usable_look_an_event_is_judged_on_its_facts_alone() -> None:
    model = looks_model()
    x = typical(0.0)
    assert model.kind_of(x)[0] == UNKNOWN  # the facts cannot tell the two kinds apart
    assert model.kind_of(x, unit(np.ones(384)))[0] == model.kind_of(x)[0]  # another width
    assert np.isfinite(model.kind_of(x)[1]) and model.edge_facts > 0.0


def test_looks_are_used_only_when_every_kind_has_them() -> None:
    rows = cluster(0.0, 20) + cluster(1.0, 20, seed=1)
    kinds = ["intruder"] * 20 + ["smoke"] * 20
    looks: list[np.ndarray | None] = [LOOKS["intruder"]] * 20 + [None] * 20
    model = fit(rows, kinds, {}, looks)
    assert model.looks is None and model.edge == model.edge_facts
    assert model.kind_of(typical(1.0), LOOKS["intruder"])[0] == "smoke"


def test_a_look_is_the_mean_token_at_the_hot_patches_the_window_kept() -> None:
    frames = (
        FrameEvidence(1.0, 0.9, (3, 7, 9), (4, 4), hot=(7, 2)),  # 2 was not kept
        FrameEvidence(1.5, 0.9, (1, 5), (4, 4), hot=(5,)),
        FrameEvidence(2.0, 0.9, (4,), (4, 4), hot=()),  # no hot patch: not counted
    )
    ev = EventEvidence("cam-0", "ev-1", 1.0, 2.0, 0.9, 1.5, "", frames)
    tokens = [np.eye(4)[[0, 1, 2]], np.eye(4)[[3, 2]], np.eye(4)[[0]]]
    assert np.allclose(cat.look(ev, tokens), unit(np.array([0.0, 1.0, 1.0, 0.0])))
    bare = EventEvidence("cam-0", "ev-2", 1.0, 2.0, 0.9, 1.5, "", frames[2:])
    assert cat.look(bare, tokens[2:]) is None


def test_looks_round_trip_and_a_wrong_shape_is_refused(tmp_path: Path) -> None:
    model = looks_model()
    path = tmp_path / "category.json"
    save(model, path)
    again = load(path)
    assert again.looks is not None and np.allclose(again.looks, model.looks, atol=1e-5)
    assert again.kind_of(typical(0.0), LOOKS["smoke"]) == model.kind_of(
        typical(0.0), LOOKS["smoke"]
    )
    doc = json.loads(path.read_text())
    doc["looks"] = doc["looks"][:1]
    path.write_text(json.dumps(doc))
    with pytest.raises(CategoryError, match="wrong shape"):
        load(path)


def test_the_classifier_reads_the_mean_of_every_normality_part_the_parts_at_rest_included() -> None:
    """A thing that came to rest shows in the edge's `static` and `settled` parts: the
    classifier must see them."""
    parts = (("appearance", 0.2), ("static", 0.9), ("settled", 0.7), ("head", 0.1))
    frames = tuple(
        FrameEvidence(2.0 + k, 0.9, (0, 1), (16, 16), hot=(17,), components=parts) for k in range(3)
    )
    ev = EventEvidence("cam-0", "ev-1", 2.0, 5.0, 0.9, 3.0, "prior", frames, 0.1)
    row = dict(zip(cat.FEATURES, cat.features(ev, facts(ev)), strict=True))
    assert row["mean_static"] == pytest.approx(0.9)
    assert row["mean_settled"] == pytest.approx(0.7)
    assert row["mean_appearance"] == pytest.approx(0.2)
    assert row["mean_flow"] == 0.0  # a part no frame carried


def test_the_training_events_round_trip_and_a_wrong_memory_is_refused(tmp_path: Path) -> None:
    model = looks_model()
    path = tmp_path / "category.json"
    save(model, path)
    again = load(path)
    assert again.memory is not None and model.memory is not None
    assert again.memory.shape == model.memory.shape and again.neighbours == model.neighbours
    for look in (LOOKS["intruder"], LOOKS["smoke"], None):
        assert again.kind_of(typical(0.0), look)[0] == model.kind_of(typical(0.0), look)[0]
    doc = json.loads(path.read_text())
    for broken in ({"memory_kinds": doc["memory_kinds"][:-1]}, {"memory": None}):
        path.write_text(json.dumps(doc | broken))
        with pytest.raises(CategoryError, match="memory of the wrong shape"):
            load(path)


def test_the_nearest_training_events_vote_and_the_kinds_centres_guard() -> None:
    """The kind is what the nearest training events vote for; it is reported only within that
    kind's edge and when the kinds' centres agree it is clearly nearer (else unknown)."""
    rows = cluster(0.0) + cluster(1.0, seed=1)
    model = fit(rows, ["intruder"] * 30 + ["smoke"] * 30, {})
    assert model.memory is not None and model.memory.shape == (60, F + 2)  # + a look per kind
    assert model.vote(model.row(typical(0.0) + 0.02)) == model.kinds.index("intruder")
    assert model.kind_of(typical(0.0) + 0.02)[0] == "intruder"
    assert model.kind_of(typical(-3.0))[0] == UNKNOWN  # voted intruder, far beyond its edge


def test_the_classifier_reads_whether_the_hot_cells_lie_in_one_place_or_scattered() -> None:
    """A thing in one place: its hot cells are one group (concentration 1, one group). A haze:
    scattered cells, the first one's group a small share of them, several groups."""
    g = (16, 16)

    def row(hot: tuple[int, ...]) -> dict[str, float]:
        frames = tuple(FrameEvidence(2.0 + k, 0.9, (0, 1), g, hot=hot) for k in range(3))
        ev = EventEvidence("cam-0", "ev-1", 2.0, 5.0, 0.9, 3.0, "prior", frames, 0.1)
        return dict(zip(cat.FEATURES, cat.features(ev, facts(ev)), strict=True))

    thing = row((17, 18, 33, 34))
    assert thing["concentration"] == pytest.approx(1.0) and thing["groups"] == pytest.approx(1.0)
    haze = row((17, 18, 100, 140, 200, 250))  # a pair, then four lone cells
    assert haze["concentration"] == pytest.approx(2 / 6) and haze["groups"] == pytest.approx(5.0)


def test_a_kind_is_reported_only_near_one_of_its_own_training_events() -> None:
    """A kind whose events lie in two places has its centre between them, where none of them
    is: an event there is voted that kind and sits on its centre, yet it is like none of its
    events, so it is unknown (`near`); an event in either place is the kind."""
    rows = cluster(0.0, 15) + cluster(1.0, 15, seed=1) + cluster(3.0, seed=2)
    model = fit(rows, ["intruder"] * 30 + ["smoke"] * 30, {})
    k = model.kinds.index("intruder")
    between = model.row(typical(0.5))
    assert model.vote(between) == k and model.posterior(between)[k] > 0.9
    assert not model.near_its_kind(between, k)
    assert model.kind_of(typical(0.5))[0] == UNKNOWN
    for place in (0.0, 1.0):
        assert model.kind_of(cluster(place, 1, seed=7)[0])[0] == "intruder"


def test_the_nearness_edges_are_read_again_from_a_saved_memory(tmp_path: Path) -> None:
    model = looks_model()
    save(model, tmp_path / "category.json")
    again = load(tmp_path / "category.json")
    assert np.isfinite(model.near).all() and (model.near > 0).all()
    np.testing.assert_allclose(again.near, model.near, rtol=1e-3)


def test_how_long_an_event_lasted_does_not_change_what_kind_it_looks_like() -> None:
    """Every synthetic span lasts 1-5 s whatever its kind, so a camera covered for a minute
    would lie far from every training event if the duration were read: it is not."""
    parts = (("appearance", 0.9), ("static", 0.9), ("head", 0.6))
    frames = tuple(
        FrameEvidence(8.0 + k, 0.95, (0, 1), (16, 16), hot=tuple(range(200)), components=parts)
        for k in range(4)
    )
    short = EventEvidence("cam-0", "ev-1", 8.0, 12.0, 1.0, 9.0, "prior", frames, 0.1)
    long = EventEvidence("cam-0", "ev-2", 8.0, 68.0, 1.0, 9.0, "prior", frames, 0.1)
    assert facts(long).duration == pytest.approx(60.0)
    assert "duration_s" not in cat.FEATURES
    np.testing.assert_array_equal(
        cat.features(short, facts(short)), cat.features(long, facts(long))
    )
