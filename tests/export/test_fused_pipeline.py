"""`encoder.backend = "fused"` in the real pipeline: same frames, same choices as the split path."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from support.sinks import Collect

from vau.edge.analysers import build_analyser
from vau.edge.bench import decode_frames
from vau.edge.encoders.base import EncoderError
from vau.edge.pipeline import CameraStream, Pipeline
from vau.edge.settings import EdgeSettings, SettingsError, load_settings
from vau.edge.tetg import HeadConfig, from_torch, save_head, torch_module
from vau.edge.types import Frame


def _run(settings: EdgeSettings, frames: list[Frame]) -> Collect:
    sink = Collect()
    analyser = build_analyser(settings)
    try:
        Pipeline(settings, analyser, [sink]).run(frames)
    finally:
        analyser.close()
    return sink


@pytest.fixture(scope="module")
def frames(vtest_path: Path) -> list[Frame]:
    return decode_frames(EdgeSettings(), 8, vtest_path)[0]


def test_fused_backend_makes_the_same_choices_as_the_split_path_on_real_frames(
    fused_onnx: Path, frames: list[Frame]
) -> None:
    split = _run(EdgeSettings(encoder={"backend": "onnx"}), frames)
    fused = _run(EdgeSettings(encoder={"backend": "fused", "fused_model": str(fused_onnx)}), frames)
    assert len(fused.frames) == len(split.frames) == 8
    for (a, sa), (b, sb) in zip(split.frames, fused.frames, strict=True):
        assert (a.seq, a.t, a.keyframe, a.patches, a.grid) == (
            b.seq,
            b.t,
            b.keyframe,
            b.patches,
            b.grid,
        )
        assert np.array_equal(a.indices, b.indices)
        assert np.allclose(a.tokens, b.tokens, atol=1e-3)
        assert np.allclose(a.distances, b.distances, rtol=1e-3, atol=1e-2)
        assert sa.score == pytest.approx(sb.score, abs=1e-4)
    assert [f[0].keyframe for f in fused.frames] == [True] + [False] * 7


def test_a_gap_longer_than_max_gap_makes_the_next_fused_frame_a_keyframe(
    fused_onnx: Path, frames: list[Frame]
) -> None:
    gapped = frames[:4] + [replace(f, t=f.t + 60.0) for f in frames[4:]]
    settings = EdgeSettings(encoder={"backend": "fused", "fused_model": str(fused_onnx)})
    got = [eff.keyframe for eff, _ in _run(settings, gapped).frames]
    assert got == [True, False, False, False, True, False, False, False]


def test_all_keyframes_keep_every_patch_on_the_fused_path(
    fused_onnx: Path, frames: list[Frame]
) -> None:
    settings = EdgeSettings(encoder={"backend": "fused", "fused_model": str(fused_onnx)},
                            sets={"keyframe": "all"})  # fmt: skip
    kept = [eff.kept for eff, _ in _run(settings, frames[:3]).frames]
    assert kept == [256, 128, 128]


def test_fused_graph_with_another_head_is_refused(fused_onnx: Path, tmp_path: Path) -> None:
    config = HeadConfig(embed_dim=384, hidden=8)
    head_dir = save_head(from_torch(config, torch_module(config).eval()), tmp_path / "head")
    settings = EdgeSettings(encoder={"backend": "fused", "fused_model": str(fused_onnx)},
                            head={"path": str(head_dir)})  # fmt: skip
    with pytest.raises(EncoderError, match="another TETG head"):
        build_analyser(settings)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"sets": {"mode": "threshold"}}, "sets.mode must be 'topk'"),
        ({"encoder": {"batch_size": 4}}, "at most the number of cameras"),
    ],
)
def test_fused_backend_settings_that_cannot_work_are_refused(
    overrides: dict[str, dict[str, object]], words: str
) -> None:
    merged = {**overrides, "encoder": {"backend": "fused", **overrides.get("encoder", {})}}
    with pytest.raises(SettingsError, match=words):
        load_settings(overrides=merged)


def test_bench_contract_names_onnx_int8_and_reports_agreement_with_torch(
    fused_onnx: Path, fused_int8: Path, vtest_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    env = {"VAU_EDGE__ENCODER__FUSED_MODEL": str(fused_onnx), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "vau.edge.cli", "bench", "--source", str(vtest_path),
         "--frames", "4", "--backends", "torch,onnx-int8,fused", "--json", str(out)],
        capture_output=True, text=True, timeout=300, env={**_env(), **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    backends = json.loads(out.read_text())["backends"]
    for name in ("onnx-int8", "fused"):
        for key in ("fps", "ms_per_frame", "cls_cosine", "index_overlap", "score_abs_diff"):
            assert isinstance(backends[name][key], float)
    assert backends["fused"]["cls_cosine"] > 0.99999 and backends["fused"]["index_overlap"] == 1.0
    assert 0.99 < backends["onnx-int8"]["cls_cosine"] < 1.0  # a different graph: int8, not fp32
    assert backends["onnx-int8"]["index_overlap"] > 0.8


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("VAU_EDGE__")}


def test_run_with_the_int8_fused_graph_writes_contract_records(
    fused_onnx: Path, fused_int8: Path, vtest_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    env = {**_env(), "VAU_EDGE__ENCODER__FUSED_MODEL": str(fused_onnx)}
    proc = subprocess.run(
        [sys.executable, "-m", "vau.edge.cli", "run", "--source", str(vtest_path), "--dry-run",
         "--backend", "fused", "--precision", "int8", "--max-frames", "6", "--jsonl", str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "backend=fused" in proc.stderr and fused_int8.name in proc.stderr  # the int8 twin ran
    frames = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(frames) == 6 and {r["kept"] for r in frames} == {128}
    assert all(0.0 <= r["score"] <= 1.0 and r["indices"] == sorted(r["indices"]) for r in frames)


def test_jetson_file_points_the_fused_backend_at_its_engine_and_says_how_to_build_it() -> None:
    configs = Path(__file__).resolve().parents[2] / "firmware_configs"
    settings = load_settings(configs / "jetson-orin-nano-8gb.toml")
    assert settings.encoder.backend == "fused" and settings.encoder.precision == "fp16"
    with pytest.raises(EncoderError, match="vau-export tensorrt"):
        build_analyser(settings)  # no engine on this machine: the error names the fix


@pytest.mark.parametrize("backend", ["onnx", "fused"])
def test_two_cameras_batched_through_one_model_stage_match_each_camera_alone(
    backend: str, fused_onnx: Path, frames: list[Frame]
) -> None:
    """The model stage keeps no camera state: two cameras whose frames share encoder calls get
    exactly what each gets alone (keyframes, SETS's choices, scores)."""
    encoder = {"backend": backend, "fused_model": str(fused_onnx) if backend == "fused" else ""}
    streams = {"a": frames, "b": [replace(f, seq=i) for i, f in enumerate(reversed(frames))]}
    alone = {}
    for camera, own in streams.items():
        settings = load_settings(overrides={"encoder": encoder, "camera_id": camera})
        alone[camera] = _run(settings, own)
    cameras = {camera: {"source": camera} for camera in streams}
    both = load_settings(overrides={"encoder": {**encoder, "batch_size": 2}, "cameras": cameras})
    sinks = {camera: Collect() for camera in streams}
    analyser = build_analyser(both)
    try:
        cams = [CameraStream(s, [sinks[s.camera_id]]) for s in both.streams()]
        Pipeline(both, analyser, cameras=cams).run_all(list(streams.values()))
    finally:
        analyser.close()
    for camera in streams:
        a, b = alone[camera].frames, sinks[camera].frames
        assert [t.keyframe for t, _ in a] == [t.keyframe for t, _ in b]
        assert [t.indices.tolist() for t, _ in a] == [t.indices.tolist() for t, _ in b]
        np.testing.assert_allclose([s.score for _, s in a], [s.score for _, s in b], atol=1e-5)
