"""`vau-edge bench`'s fused path: the contract fields, on the same real frames as the reference."""

from __future__ import annotations

from pathlib import Path

from vau.edge.bench import BACKENDS, agreement, decode_frames
from vau.edge.settings import EdgeSettings
from vau.export.bench_fused import measure_fused


def test_fused_bench_path_reports_contract_fields_and_agrees_with_itself(
    fused_onnx: Path, vtest_path: Path
) -> None:
    assert BACKENDS["fused"]["backend"] == BACKENDS["fused-int8"]["backend"] == "fused"
    settings = EdgeSettings(encoder={"fused_model": str(fused_onnx)}, sets={"keep_ratio": 0.5})
    frames, _ = decode_frames(settings, 4, vtest_path)
    first, second = (measure_fused(settings, "fp32", frames) for _ in range(2))
    assert first["fps"] > 0 and first["ms_per_frame"] > 0
    assert set(first["stages_ms"]) == {"preprocess", "fused"}
    same = agreement(first["_rec"], second["_rec"])
    assert same["index_overlap"] == 1.0 and same["score_abs_diff"] == 0.0
    assert same["cls_cosine"] > 0.99999
