"""The fused graph: what `vau-export onnx` writes, and its parity with the torch reference."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import onnx

from vau.edge.encoders.fused_backend import FusedRunner
from vau.edge.sets import keep_count
from vau.edge.types import F32
from vau.export.cli import main
from vau.export.verify import THRESHOLDS, compare


def test_export_writes_graph_and_manifest_with_names_shapes_and_sources(fused_onnx: Path) -> None:
    manifest = json.loads((fused_onnx.parent / "manifest.json").read_text())
    k = keep_count(256, 0.5)
    assert fused_onnx.name == f"vau-fused-k{k}.onnx" and manifest["k"] == k == 128
    assert [t["name"] for t in manifest["inputs"]] == ["pixel_values", "prev_patches"]
    assert [t["name"] for t in manifest["outputs"]] == [
        "patches",
        "cls",
        "score",
        "indices",
        "kept",
        "inner",
    ]
    assert manifest["outputs"][3] == {"name": "indices", "shape": ["batch", k], "dtype": "int64"}
    assert manifest["opset"] == 17 and manifest["precision"] == "fp32"
    assert {"dinov2-s14/model.safetensors", "default/head.safetensors"} <= set(manifest["sources"])
    assert {"torch", "onnx", "onnxruntime"} <= set(manifest["versions"])
    graph = onnx.load(str(fused_onnx), load_external_data=False)
    assert graph.opset_import[0].version == 17
    kept = next(o for o in graph.graph.output if o.name == "kept").type.tensor_type.shape.dim
    assert kept[0].dim_param == "batch" and [d.dim_value for d in kept[1:]] == [k, 384]


def test_fused_graph_runs_a_dynamic_batch_with_ascending_indices(
    fused_onnx: Path, real_frames: F32
) -> None:
    runner = FusedRunner(fused_onnx, 224)
    prev = np.zeros((3, 256, 384), dtype=np.float32)
    out = runner.run(real_frames[:3], prev)
    assert out.patches.shape == out.inner.shape == (3, 256, 384) and out.score.shape == (3,)
    assert out.indices.shape == (3, 128) and out.indices.dtype == np.int64
    assert (np.diff(out.indices, axis=1) > 0).all()
    gathered = np.take_along_axis(out.patches, out.indices[..., None], axis=1)
    np.testing.assert_array_equal(out.kept, gathered)


def test_fused_fp32_matches_torch_reference_on_real_frames(
    fused_onnx: Path, dinov2_dir: Path, real_frames: F32
) -> None:
    parity = compare(fused_onnx, dinov2_dir, real_frames)
    assert parity.failures(THRESHOLDS["fp32"]) == []
    assert parity.index_exact == 1.0 and parity.cls_cosine > 0.99999
    assert parity.inner_cosine > 0.99999


def test_verify_cli_exits_0_within_fp32_thresholds_and_writes_json(
    fused_onnx: Path, tmp_path: Path
) -> None:
    out = tmp_path / "parity.json"
    assert main(["verify", "--model", str(fused_onnx), "--frames", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["frames"] == 2 and report["failures"] == []


def test_dynamic_int8_keeps_head_in_fp32_and_stays_close_to_fp32(
    fused_onnx: Path, fused_int8: Path, real_frames: F32
) -> None:
    manifest = json.loads(fused_int8.with_suffix(".json").read_text())
    assert manifest["precision"] == "int8" and manifest["quantization"] == "dynamic/sensitive-fp32"
    assert "/head/head.0/Gemm" in manifest["notes"][-1]
    prev = np.zeros((4, 256, 384), dtype=np.float32)
    ref = FusedRunner(fused_onnx, 224).run(real_frames, prev)
    q = FusedRunner(fused_int8, 224).run(real_frames, prev)
    cos = (ref.cls * q.cls).sum(1) / np.linalg.norm(ref.cls, axis=1) / np.linalg.norm(q.cls, axis=1)
    assert cos.min() > 0.99
    overlap = [len(set(a) & set(b)) / 128 for a, b in zip(ref.indices, q.indices, strict=True)]
    assert np.mean(overlap) > 0.85


def test_calibration_feeds_are_a_stream_with_real_previous_patches(
    fused_onnx: Path, dinov2_onnx: Path, real_frames: F32
) -> None:
    from vau.edge.encoders.fused_backend import FusedRunner
    from vau.export.quantize import stream_feeds

    feeds = list(stream_feeds(fused_onnx, real_frames[:3]))
    assert len(feeds) == 3 and not feeds[0]["prev_patches"].any()  # the first is a keyframe
    runner = FusedRunner(fused_onnx, 224)
    for feed, following in itertools.pairwise(feeds):
        patches = runner.run(feed["pixel_values"], feed["prev_patches"]).patches
        assert np.allclose(following["prev_patches"], patches, atol=1e-5)
    encoder_only = list(stream_feeds(dinov2_onnx, real_frames[:2]))
    assert [set(f) for f in encoder_only] == [{"pixel_values"}] * 2


def test_quantisation_keeps_the_three_most_sensitive_sub_blocks_in_fp32(fused_onnx: Path) -> None:
    from vau.export.quantize import weight_matmuls

    model = onnx.load(str(fused_onnx))
    quantised, kept = weight_matmuls(model)
    everything, _ = weight_matmuls(model, sensitive=True)
    assert len(everything) == 72 and len(quantised) == 64
    left_out = sorted(set(everything) - set(quantised))
    assert all(
        "layer.11/attention/" in n or "layer.0/mlp/" in n or "layer.10/mlp/" in n for n in left_out
    )
    assert set(left_out) <= set(kept) and not any("head" in n for n in quantised)
