"""`vau-edge bench` on real frames: a JSON report with stages, ratios and backend agreement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_compares_backends_on_the_same_frames_and_writes_json(
    vtest_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "vau.edge.cli", "bench", "--source", str(vtest_path),
         "--frames", "4", "--backends", "torch,onnx", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["frames"] == 4 and report["reference"] == "torch"
    onnx = report["backends"]["onnx"]
    for key in ("fps", "ms_per_frame", "cls_cosine", "index_overlap", "score_abs_diff"):
        assert isinstance(onnx[key], float)
    assert set(onnx["stages_ms"]) == {
        "preprocess",
        "encoder",
        "sets",
        "head",
        "normality",
        "events",
    }
    assert onnx["cls_cosine"] > 0.9999 and onnx["index_overlap"] > 0.95
    assert report["backends"]["torch"]["index_overlap"] == 1.0
    assert report["ratios"]["onnx_vs_torch_fps"] > 0
    assert report["peak_rss_mb"] > 0


def test_bench_rejects_unknown_backend_with_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "vau.edge.cli", "bench", "--backends", "tflite"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "tflite" in proc.stderr


def test_bench_cameras_reports_throughput_latency_and_memory_per_camera(
    vtest_path: Path, tmp_path: Path
) -> None:
    """`--cameras 1,2`: every camera's frames go through the one model stage (each camera's live
    pass delivers all its frames), and the memory a camera holds includes SETS's previous frame."""
    out = tmp_path / "bench.json"
    cli = [sys.executable, "-m", "vau.edge.cli", "bench", "--source", str(vtest_path)]
    args = ["--frames", "4", "--backends", "onnx", "--cameras", "1,2", "--json", str(out)]
    proc = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    cams = json.loads(out.read_text())["backends"]["onnx"]["cameras"]
    assert cams["1"]["aggregate_fps_batch_1"] > 0 and "aggregate_fps_batched" not in cams["1"]
    assert cams["2"]["aggregate_fps_batched"] > 0 and cams["2"]["batched_vs_batch_1"] > 0
    live = cams["2"]["live"]
    assert set(live["cameras"]) == {"bench-0", "bench-1"}
    assert all(c["frames"] == 4 for c in live["cameras"].values())
    assert 256 * 384 * 4 / 2**20 <= cams["state_mb_per_camera"] < 4.0  # previous patches, fp32
    assert cams["uplink_ring_mb_per_camera"] == 600 * 128 * (384 * 2 + 12) / 2**20  # fp16 ring
