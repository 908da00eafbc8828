"""A corrupt or mismatched artefact is refused at load, with a message that says what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vau.edge.encoders.artefact import ArtefactError, check_artefact
from vau.edge.encoders.base import EncoderError
from vau.edge.encoders.fused_backend import FusedRunner
from vau.export.cli import main


def _copy(model: Path, tmp_path: Path) -> Path:
    shutil.copy(model.parent / "manifest.json", tmp_path / "manifest.json")
    return Path(shutil.copy(model, tmp_path / model.name))


def test_loader_refuses_truncated_file(fused_onnx: Path, tmp_path: Path) -> None:
    model = _copy(fused_onnx, tmp_path)
    with model.open("r+b") as fh:
        fh.truncate(model.stat().st_size // 2)
    with pytest.raises(EncoderError, match="truncated"):
        FusedRunner(model, 224)


def test_loader_refuses_keep_ratio_other_than_the_manifest(fused_onnx: Path) -> None:
    with pytest.raises(ArtefactError, match=r"keep_ratio 0\.5 \(K=128\) but 0\.25"):
        check_artefact(fused_onnx, keep_ratio=0.25)


def test_loader_refuses_input_size_mismatch(fused_onnx: Path) -> None:
    with pytest.raises(EncoderError, match="takes 224px input but 448px"):
        FusedRunner(fused_onnx, 448)


def test_loader_refuses_a_graph_from_before_the_inner_output(
    fused_onnx: Path, tmp_path: Path
) -> None:
    model = _copy(fused_onnx, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["outputs"] = [o for o in manifest["outputs"] if o["name"] != "inner"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EncoderError, match=r"no inner output \(exported by an older vau-export\)"):
        FusedRunner(model, 224)


def test_loader_refuses_model_without_manifest(fused_onnx: Path, tmp_path: Path) -> None:
    model = Path(shutil.copy(fused_onnx, tmp_path / fused_onnx.name))
    with pytest.raises(ArtefactError, match="no manifest"):
        check_artefact(model)


def test_verify_cli_reports_mismatch_as_user_error_exit_2(
    fused_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--model", str(fused_onnx), "--keep-ratio", "0.25"]) == 2
    assert "re-export" in capsys.readouterr().err
