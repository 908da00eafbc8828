"""TensorRT encoder: runs only where a CUDA GPU and TensorRT exist; skipped with a reason elsewhere.

No mock stands in for TensorRT: on a CPU host these tests are skipped, and the CPU-only error path
(TensorRT not importable) is tested instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from support.gpu import GPU_MISSING, HAS_TRT

from vau.edge.encoders.base import EncoderError


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed; the missing-TensorRT path is moot")
def test_tensorrt_backend_without_tensorrt_says_how_to_install(tmp_path: Path) -> None:
    from vau.edge.encoders.tensorrt_backend import TensorRTEncoder

    with pytest.raises(EncoderError, match="needs TensorRT"):
        TensorRTEncoder(tmp_path / "x.engine", 224)


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(bool(GPU_MISSING), reason=GPU_MISSING or "runs")
def test_tensorrt_engine_matches_onnx_runtime_on_real_frames(
    dinov2_onnx: Path, tmp_path: Path
) -> None:
    import tensorrt as trt

    from vau.edge.encoders.onnx_backend import OnnxEncoder
    from vau.edge.encoders.tensorrt_backend import TensorRTEncoder

    engine_path = Path(os.environ.get("VAU_TEST_ENGINE", tmp_path / "dinov2.engine"))
    if not engine_path.exists():
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        assert parser.parse(dinov2_onnx.read_bytes()), parser.get_error(0)
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        profile.set_shape("pixel_values", (1, 3, 224, 224), (1, 3, 224, 224), (4, 3, 224, 224))
        config.add_optimization_profile(profile)
        engine_path.write_bytes(bytes(builder.build_serialized_network(network, config)))
    x = np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32)
    trt_out = TensorRTEncoder(engine_path, 224).encode(x)
    ort_out = OnnxEncoder(dinov2_onnx, 224).encode(x)
    assert np.abs(trt_out.patches - ort_out.patches).max() < 1e-2
    assert np.abs(trt_out.cls - ort_out.cls).max() < 1e-2
    assert np.abs(trt_out.inner - ort_out.inner).max() < 1e-2
