"""Encoders on real DINOv2-S/14 weights and real footage: parity, shapes, and clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vau.edge.encoders.base import EncoderError, normalise, preprocess, resize
from vau.edge.encoders.factory import build_encoder
from vau.edge.encoders.onnx_backend import OnnxEncoder
from vau.edge.settings import EncoderSettings


@pytest.fixture(scope="module")
def frames(vtest_path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(vtest_path))
    out = []
    for i in range(40):
        ok, img = cap.read()
        assert ok
        if i % 10 == 0:
            out.append(img)
    cap.release()
    return out


def test_preprocess_gives_normalised_rgb_nchw(frames: list[np.ndarray]) -> None:
    x = preprocess(frames, 224)
    assert x.shape == (4, 3, 224, 224) and x.dtype == np.float32
    white = normalise(np.full((2, 2, 3), 255, np.uint8))
    np.testing.assert_allclose(white[:, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) /
                               np.array([0.229, 0.224, 0.225]), rtol=1e-6)  # fmt: skip


def test_resize_of_large_frame_keeps_whole_view_at_target_size() -> None:
    big = np.zeros((1080, 1920, 3), np.uint8)
    big[:, -200:] = 255  # a bright strip at the right edge must survive (no crop)
    small = resize(big, 224)
    assert small.shape == (224, 224, 3) and small[:, -5:].mean() > 200


def test_torch_and_onnx_backends_agree_on_real_frames(frames: list[np.ndarray]) -> None:
    x = preprocess(frames, 224)
    torch_enc = build_encoder(EncoderSettings(backend="torch"))
    onnx_enc = build_encoder(EncoderSettings(backend="onnx"))
    t, o = torch_enc.encode(x), onnx_enc.encode(x)
    pt, ct, po, co = t.patches, t.cls, o.patches, o.cls
    assert pt.shape == po.shape == t.inner.shape == o.inner.shape == (4, 256, 384)
    assert ct.shape == co.shape == (4, 384)
    diff = float(np.abs(pt - po).max())
    inner = float(np.abs(t.inner - o.inner).max())
    cos = (ct * co).sum(1) / (np.linalg.norm(ct, axis=1) * np.linalg.norm(co, axis=1))
    print(f"torch vs onnx: patch max abs diff {diff:.2e} (inner {inner:.2e}), CLS cosine min "
          f"{cos.min():.7f}")  # fmt: skip
    assert diff < 1e-3 and inner < 1e-3
    assert cos.min() > 0.99999


def test_inner_tokens_are_an_earlier_block_not_a_copy_of_the_last(frames: list[np.ndarray]) -> None:
    out = build_encoder(EncoderSettings(backend="onnx")).encode(preprocess(frames[:1], 224))
    a, b = out.patches[0], out.inner[0]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert 0.0 < float(cos.mean()) < 0.95  # related tokens, not the same ones


def test_onnx_batch_equals_frame_by_frame(frames: list[np.ndarray], dinov2_onnx: Path) -> None:
    enc = OnnxEncoder(dinov2_onnx, 224)
    x = preprocess(frames, 224)
    batch = enc.encode(x)
    singles = [enc.encode(x[i : i + 1]) for i in range(len(x))]
    np.testing.assert_allclose(
        batch.patches, np.concatenate([s.patches for s in singles]), atol=1e-4
    )
    np.testing.assert_allclose(batch.inner, np.concatenate([s.inner for s in singles]), atol=1e-4)


def test_onnx_model_at_other_input_size_is_refused(dinov2_onnx: Path) -> None:
    with pytest.raises(EncoderError, match=r"takes 224x224 input .*input_size is 448"):
        OnnxEncoder(dinov2_onnx, 448)


def test_wrong_model_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="not found"):
        build_encoder(EncoderSettings(backend="onnx", onnx_model=str(tmp_path / "x.onnx")))
    bogus = tmp_path / "broken.onnx"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(EncoderError, match="cannot load ONNX model"):
        build_encoder(EncoderSettings(backend="onnx", onnx_model=str(bogus)))
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(EncoderError, match="cannot load the DINOv2 model"):
        build_encoder(EncoderSettings(backend="torch", model=str(empty)))


def test_gpu_execution_provider_without_gpu_runtime_says_how_to_install() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here; the error path cannot be reached")
    with pytest.raises(EncoderError, match=r"vau-edge\[gpu\]"):
        build_encoder(EncoderSettings(backend="onnx", execution_provider="cuda"))


def test_tensorrt_backend_without_engine_setting_is_refused() -> None:
    with pytest.raises(EncoderError, match=r"encoder\.engine"):
        build_encoder(EncoderSettings(backend="tensorrt"))
