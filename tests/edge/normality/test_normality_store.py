"""A normality model on disk: round trip, refusal of another encoder or size, atomic writes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from support.normal_scene import GRID, normal_frames

from vau.edge.normality import store
from vau.edge.normality.fit import fit
from vau.edge.normality.model import NormalityModel
from vau.edge.normality.store import NormalityError, Provenance, load_model, save_model

PROV = Provenance(encoder="dinov2-s14", input_size=224, embed_dim=32, fps=2.0, camera="cam-1")


@pytest.fixture(scope="module")
def model() -> NormalityModel:
    return fit(normal_frames(), GRID, memory_patches=256, radius=2)


def test_a_saved_model_loads_with_the_same_scores(model: NormalityModel, tmp_path: Path) -> None:
    save_model(model, PROV, tmp_path / "m")
    loaded, raw = load_model(tmp_path / "m", "dinov2-s14", 224, 32)
    frame = normal_frames(seconds=2)[1]
    a = model.score(frame.patches, frame.change, frame.cls, 8)
    b = loaded.score(frame.patches, frame.change, frame.cls, 8)
    assert a.parts == pytest.approx(b.parts, abs=2e-3)  # memory is stored as fp16
    assert raw["camera"] == "cam-1" and raw["sizes"]["memory_patches"] == 256
    for name in (store.WEIGHTS, store.MANIFEST):  # others may read both (safetensors writes 0600)
        assert (tmp_path / "m" / name).stat().st_mode & 0o777 == 0o644


def test_a_saved_model_keeps_its_background_and_scores_the_static_part_alike(
    tmp_path: Path,
) -> None:
    model = fit(normal_frames(pixels=True), GRID, memory_patches=256, radius=2)
    save_model(model, PROV, tmp_path / "m")
    loaded, raw = load_model(tmp_path / "m", "dinov2-s14", 224, 32)
    assert loaded.background is not None and model.background is not None
    assert np.array_equal(loaded.background, model.background)
    assert "static" in raw["calibration"] and "static" in raw["patch_calibration"]
    frame = normal_frames(seconds=3, pixels=True)[-1]
    a = model.score(frame.patches, frame.change, frame.cls, 8, still=frame.still)
    b = loaded.score(frame.patches, frame.change, frame.cls, 8, still=frame.still)
    assert a.parts["static"] == pytest.approx(b.parts["static"], abs=1e-6)


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        (("settled", "lingering"), "no settled or lingering-part calibration"),
        (("lingering",), "no lingering-part calibration"),
    ],
)
def test_a_model_learnt_before_a_part_at_rest_loads_and_scores_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, missing: tuple[str, ...], said: str
) -> None:
    model = fit(normal_frames(pixels=True), GRID, memory_patches=256, radius=2)
    assert {"static", "settled", "lingering"} <= set(model.calibration)
    calibration = {k: v for k, v in model.calibration.items() if k not in missing}
    patch = {k: v for k, v in model.patch_calibration.items() if k not in missing}
    older = replace(model, calibration=calibration, patch_calibration=patch)
    save_model(older, PROV, tmp_path / "m")
    with caplog.at_level("WARNING"):
        loaded, _ = load_model(tmp_path / "m", "dinov2-s14", 224, 32)
    assert said in caplog.text and "learn it again" in caplog.text
    frame = normal_frames(seconds=3, pixels=True)[-1]
    parts = loaded.score(frame.patches, frame.change, frame.cls, 8, still=frame.still).parts
    assert "static" in parts and not set(missing) & set(parts)


def test_a_model_learnt_before_the_parts_at_rest_joined_the_anomaly_map_scores_them_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = fit(normal_frames(pixels=True), GRID, memory_patches=256, radius=2)
    assert {"static", "settled", "lingering"} <= set(model.patch_calibration)
    patch = {k: v for k, v in model.patch_calibration.items() if k not in ("settled", "lingering")}
    save_model(replace(model, patch_calibration=patch), PROV, tmp_path / "m")
    with caplog.at_level("WARNING"):
        loaded, _ = load_model(tmp_path / "m", "dinov2-s14", 224, 32)
    assert "no per-patch units for the settled or lingering part" in caplog.text
    assert "learn it again" in caplog.text
    frame = normal_frames(seconds=3, pixels=True)[-1]
    parts = loaded.score(frame.patches, frame.change, frame.cls, 8, still=frame.still).parts
    assert {"settled", "lingering"} <= set(parts)  # the frame scores keep both parts


def test_a_model_learnt_with_a_grey_background_loads_and_judges_things_at_rest_on_grey_levels(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    older = fit(normal_frames(pixels=True, colour=False), GRID, memory_patches=256, radius=2)
    assert older.background is not None and older.background.ndim == 2
    save_model(older, PROV, tmp_path / "m")
    with caplog.at_level("WARNING"):
        loaded, _ = load_model(tmp_path / "m", "dinov2-s14", 224, 32)
    assert "grey background" in caplog.text and "learn it again" in caplog.text
    frame = normal_frames(seconds=3, pixels=True)[-1]  # the running edge gives colour copies
    a = older.score(frame.patches, frame.change, frame.cls, 8, still=frame.still).parts
    b = loaded.score(frame.patches, frame.change, frame.cls, 8, still=frame.still).parts
    assert a["static"] == pytest.approx(b["static"], abs=1e-6) and "settled" in b
    caplog.clear()
    with caplog.at_level("WARNING"):
        load_model(save_model_of(tmp_path / "c"), "dinov2-s14", 224, 32)
    assert "grey background" not in caplog.text


def save_model_of(folder: Path) -> Path:
    save_model(fit(normal_frames(pixels=True), GRID, memory_patches=256, radius=2), PROV, folder)
    return folder


def test_a_model_from_another_encoder_is_refused(model: NormalityModel, tmp_path: Path) -> None:
    save_model(model, PROV, tmp_path / "m")
    with pytest.raises(NormalityError, match=r"learnt with encoder 'dinov2-s14'.*learn it"):
        load_model(tmp_path / "m", "facebook/dinov2-base", 224, 32)


def test_a_model_from_another_input_size_is_refused(model: NormalityModel, tmp_path: Path) -> None:
    save_model(model, PROV, tmp_path / "m")
    with pytest.raises(NormalityError, match=r"learnt at 224px.*runs at 448px"):
        load_model(tmp_path / "m", "dinov2-s14", 448, 32)


def test_a_model_learnt_from_the_last_layers_tokens_is_refused(
    model: NormalityModel, tmp_path: Path
) -> None:
    save_model(model, PROV, tmp_path / "m")
    manifest = tmp_path / "m" / store.MANIFEST
    manifest.write_text(manifest.read_text().replace('"format": 2', '"format": 1'))
    with pytest.raises(NormalityError, match=r"format 1, this version reads 2 .*block-10.*learn"):
        load_model(tmp_path / "m", "dinov2-s14", 224, 32)


def test_a_missing_model_names_the_learn_command(tmp_path: Path) -> None:
    with pytest.raises(NormalityError, match="vau-edge learn"):
        load_model(tmp_path / "none", "dinov2-s14", 224, 32)


def test_an_interrupted_save_leaves_the_previous_model(
    model: NormalityModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "m"
    save_model(model, PROV, folder)
    before = (folder / store.WEIGHTS).read_bytes()

    def killed(path: Path) -> None:  # the process dies after the new files were written
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, PROV, folder)
    assert (folder / store.WEIGHTS).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no half-written stage left
    load_model(folder, "dinov2-s14", 224, 32)


def test_a_damaged_model_is_refused_with_a_fix(model: NormalityModel, tmp_path: Path) -> None:
    save_model(model, PROV, tmp_path / "m")
    (tmp_path / "m" / store.WEIGHTS).write_bytes(b"\x00" * 10)
    with pytest.raises(NormalityError, match=r"damaged.*learn it again"):
        load_model(tmp_path / "m", "dinov2-s14", 224, 32)


def test_a_model_at_the_largest_memory_setting_stays_within_64_mb() -> None:
    from vau.edge.normality.calibration import Calibration
    from vau.edge.settings import NormalitySettings

    largest = NormalitySettings.model_fields["memory_patches"].metadata[1].le
    m = int(largest * 1.25)  # the learnt core plus the adaptation ring
    model = NormalityModel(
        GRID,
        np.zeros((m, 384), np.float32),
        np.zeros(m, np.int64),
        np.zeros(256, np.float32),
        np.ones(256, np.float32),
        np.zeros((1024, 384), np.float32),
        2,
        {"appearance": Calibration(0, 1)},
        {"appearance": Calibration(0, 1)},
    )
    assert model.nbytes <= 64 * 2**20
