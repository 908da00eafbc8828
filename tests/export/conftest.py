"""One fused export (and its dynamic int8 twin) per test session, on the real DINOv2 weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from vau.edge.types import F32


@pytest.fixture(scope="session")
def fused_onnx(dinov2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vau.export.onnx_export import export_onnx
    from vau.export.settings import ExportSettings

    out = tmp_path_factory.mktemp("fused")
    return export_onnx(dinov2_dir, out, ExportSettings(keep_ratio=0.5))


@pytest.fixture(scope="session")
def fused_int8(fused_onnx: Path) -> Path:
    from vau.export.quantize import quantize

    return quantize(fused_onnx, "dynamic")


@pytest.fixture(scope="session")
def real_frames(vtest_path: Path) -> F32:
    from vau.export.frames import pixel_batches

    return pixel_batches(vtest_path, 4, 224)
