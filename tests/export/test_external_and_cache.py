"""Weights in a file beside the graph, and the edge's export cache: checked, repaired, locked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vau.edge.encoders.artefact import check_artefact
from vau.edge.encoders.base import EncoderError
from vau.edge.encoders.cache import fused_artefact
from vau.edge.encoders.fused_backend import FusedRunner
from vau.edge.settings import EdgeSettings
from vau.edge.types import F32
from vau.export.quantize import quantize


@pytest.fixture(scope="module")
def external(dinov2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vau.export.onnx_export import export_onnx
    from vau.export.settings import ExportSettings

    out = tmp_path_factory.mktemp("external")
    return export_onnx(dinov2_dir, out, ExportSettings(keep_ratio=0.5, external_data="always"))


def test_external_data_export_keeps_weights_beside_a_small_graph_with_same_outputs(
    external: Path, fused_onnx: Path, real_frames: F32
) -> None:
    data = external.with_name(external.name + ".data")
    manifest = check_artefact(external)
    assert manifest.external_data == data.name and manifest.external_size == data.stat().st_size
    assert external.stat().st_size < 2 << 20 < 80 << 20 < data.stat().st_size
    assert not list(external.parent.glob(".export-*"))  # the staging folder is gone
    a, b = FusedRunner(external, 224), FusedRunner(fused_onnx, 224)
    for image in real_frames[:2]:
        x, y = a.step(image[None]), b.step(image[None])
        assert np.abs(x.patches - y.patches).max() < 1e-5
        assert np.array_equal(x.indices, y.indices) and x.score == pytest.approx(y.score, abs=1e-6)


@pytest.mark.parametrize(("damage", "words"), [("truncate", "truncated"), ("remove", "missing")])
def test_damaged_or_missing_external_weights_are_refused_at_load(
    external: Path, tmp_path: Path, damage: str, words: str
) -> None:
    copy = Path(shutil.copytree(external.parent, tmp_path / "copy"))
    data = copy / f"{external.name}.data"
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[: 1 << 20])
    else:
        data.unlink()
    with pytest.raises(EncoderError, match=words):
        FusedRunner(copy / external.name, 224)


def test_int8_twin_of_an_external_data_graph_is_checked_like_the_graph(external: Path) -> None:
    int8 = quantize(external, "dynamic")
    manifest = check_artefact(int8)
    assert manifest.precision == "int8" and manifest.external_data == f"{int8.name}.data"
    out = FusedRunner(int8, 224).step(np.zeros((1, 3, 224, 224), np.float32))
    assert out.kept.shape == (128, 384) and 0.0 <= out.score <= 1.0


def test_edge_cache_exports_again_over_a_damaged_graph(
    fused_onnx: Path, dinov2_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = EdgeSettings(cache_dir=tmp_path,
                            encoder={"backend": "fused", "model": str(dinov2_dir)})  # fmt: skip
    folder = tmp_path / "export" / "fused-224-r0.5"
    folder.mkdir(parents=True)
    shutil.copy(fused_onnx, folder / fused_onnx.name)
    shutil.copy(fused_onnx.parent / "manifest.json", folder / "manifest.json")
    assert fused_artefact(settings) == folder / fused_onnx.name  # a good copy is used as it is
    broken = folder / fused_onnx.name
    broken.write_bytes(broken.read_bytes()[:4096])  # an export killed half-way
    path = fused_artefact(settings)
    assert path == broken and check_artefact(path).size > 4096
    assert "exporting again" in caplog.text
    assert (
        json.loads((folder / "manifest.json").read_text())["sha256"] == check_artefact(path).sha256
    )
