"""Export settings per device class: every shipped file loads; bad values are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.gpu import GPU_MISSING, HAS_TRT

from vau.edge.types import F32
from vau.export.settings import ExportError, load_export_settings

CONFIGS = Path(__file__).resolve().parents[2] / "firmware_configs" / "export"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_export_config_loads_and_names_its_device(path: Path) -> None:
    s = load_export_settings(path)
    assert s.device == path.stem and s.input_size % 14 == 0 and s.batch <= s.max_batch


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_runtime_file_runs_what_its_export_file_builds(path: Path) -> None:
    from vau.edge.settings import load_settings
    from vau.export.fused import fused_k
    from vau.export.onnx_export import artefact_name
    from vau.export.tensorrt import engine_stem

    export = load_export_settings(path)
    runtime = load_settings(CONFIGS.parent / path.name)
    assert runtime.encoder.input_size == export.input_size
    assert runtime.sets.keep_ratio == export.keep_ratio
    assert runtime.encoder.precision == export.precision
    if runtime.encoder.backend == "fused":
        onnx = Path(artefact_name(fused_k(export.input_size, export.keep_ratio)))
        assert Path(runtime.encoder.fused_model).name == engine_stem(onnx, export) + ".engine"


def test_export_configs_cover_each_device_class() -> None:
    names = {p.stem for p in CONFIGS.glob("*.toml")}
    assert names == {"x86-cpu", "jetson-orin-nano-8gb", "jetson-orin-nx-16gb",
                     "jetson-agx-orin-64gb", "jetson-xavier-nx"}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "match"),
    [("input_size = 225", "multiple of 14"), ("dla = 0", "Extra inputs"), ("opset = 9", "opset")],
)
def test_export_config_refuses_bad_values(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ExportError, match=match):
        load_export_settings(path)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed; the missing-TensorRT path is moot")
def test_tensorrt_command_without_tensorrt_says_how_to_install(
    fused_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vau.export.cli import main

    cfg = CONFIGS / "jetson-orin-nano-8gb.toml"
    assert main(["tensorrt", "--onnx", str(fused_onnx), "--device-config", str(cfg)]) == 2
    assert "needs TensorRT" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(bool(GPU_MISSING), reason=GPU_MISSING or "runs")
def test_tensorrt_fp16_engine_builds_from_the_fused_graph(fused_onnx: Path) -> None:
    from vau.export.settings import ExportSettings
    from vau.export.tensorrt import build_engine

    settings = ExportSettings(device="test-gpu", precision="fp16", workspace_mb=1024)
    engine = build_engine(fused_onnx, settings)
    assert engine.is_file() and engine.stat().st_size > 1_000_000
    assert engine.with_name(f"{fused_onnx.stem}-fp16-test-gpu.timing").is_file()


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(bool(GPU_MISSING), reason=GPU_MISSING or "runs")
def test_fused_tensorrt_engine_runs_on_the_edge_like_the_onnx_graph(
    fused_onnx: Path, real_frames: F32
) -> None:
    from vau.edge.encoders.fused_backend import FusedRunner
    from vau.export.settings import ExportSettings
    from vau.export.tensorrt import build_engine

    settings = ExportSettings(device="test-gpu", precision="fp16", workspace_mb=1024)
    engine = build_engine(fused_onnx, settings)
    assert engine.with_suffix(".json").is_file()  # the manifest the fused backend checks
    onnx_runner, trt_runner = FusedRunner(fused_onnx, 224), FusedRunner(engine, 224)
    for image in real_frames:
        a, b = onnx_runner.step(image[None]), trt_runner.step(image[None])
        cosine = float((a.cls * b.cls).sum() / (np.linalg.norm(a.cls) * np.linalg.norm(b.cls)))
        assert cosine > 0.999
        overlap = len(set(a.indices.tolist()) & set(b.indices.tolist())) / len(a.indices)
        assert overlap >= 0.9
        assert a.keyframe == b.keyframe
