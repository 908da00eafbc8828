"""`vau-edge run` end to end on real footage and real weights, and its user-facing errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from vau.edge.tetg import HeadConfig, from_torch, save_head, torch_module

CLI = [sys.executable, "-m", "vau.edge.cli"]


def vau_edge(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_on_sample_clip_writes_contract_records_for_every_sampled_frame(
    vtest_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    proc = vau_edge("run", "--source", str(vtest_path), "--dry-run", "--jsonl", str(out))
    assert proc.returncode == 0, proc.stderr
    frames = [r for r in records(out) if r["kind"] == "frame"]
    assert len(frames) in (159, 160)  # 79.5 s at 2 fps
    for r in frames:
        assert isinstance(r["seq"], int) and isinstance(r["t"], float)
        assert 0.0 <= r["score"] <= 1.0
        assert r["patches"] == 256 and r["kept"] == 128 == len(r["indices"])
        idx = r["indices"]
        assert idx == sorted(set(idx)) and idx[0] >= 0 and idx[-1] < 256
    ts = [r["t"] for r in frames]
    assert ts == sorted(ts) and ts[1] - ts[0] == pytest.approx(0.5)
    for ev in (r for r in records(out) if r["kind"] == "event"):
        assert ev["state"] in {"new", "update", "end"} and isinstance(ev["prior"], str)
        assert isinstance(ev["id"], str) and (ev["end"] is None) == (ev["state"] != "end")


def test_keep_ratio_flag_sets_tokens_kept_per_frame(vtest_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = vau_edge("run", "--source", str(vtest_path), "--dry-run", "--jsonl", str(out),
                    "--keep-ratio", "0.1", "--max-frames", "5", "--backend", "torch")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    frames = records(out)
    assert len(frames) == 5 and {r["kept"] for r in frames} == {26}


def test_changed_patches_fall_on_the_moving_pedestrians(vtest_path: Path, tmp_path: Path) -> None:
    """SETS keeps what moved: a region that is static in the footage is rarely kept."""
    out = tmp_path / "out.jsonl"
    proc = vau_edge("run", "--source", str(vtest_path), "--dry-run", "--jsonl", str(out),
                    "--keep-ratio", "0.1", "--max-frames", "20")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    counts = np.zeros(256)
    for r in records(out)[1:]:  # skip the keyframe
        counts[r["indices"]] += 1
    # Kept indices concentrate: the most-kept 25% of patches take most of the selections.
    top = np.sort(counts)[::-1][:64].sum() / counts.sum()
    assert top > 0.5


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--source", "/nonexistent/clip.mp4"], "no such file"),
        (["--camera", "57"], "camera 57"),
    ],
)
def test_bad_source_exits_2_with_message_and_no_traceback(args: list[str], fragment: str) -> None:
    proc = vau_edge("run", "--dry-run", *args, timeout=60)
    assert proc.returncode == 2
    assert fragment in proc.stderr and "Traceback" not in proc.stderr


def test_corrupt_video_exits_2_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(os.urandom(4096))
    proc = vau_edge("run", "--dry-run", "--source", str(bad), timeout=60)
    assert proc.returncode == 2 and "broken.mp4" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_wrong_model_path_and_invalid_setting_exit_2(tmp_path: Path, vtest_path: Path) -> None:
    env = {**os.environ, "VAU_EDGE__ENCODER__ONNX_MODEL": str(tmp_path / "missing.onnx")}
    proc = subprocess.run([*CLI, "run", "--dry-run", "--source", str(vtest_path)],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "missing.onnx" in proc.stderr
    proc = vau_edge("run", "--dry-run", "--keep-ratio", "0", timeout=60)
    assert proc.returncode == 2 and "sets.keep_ratio" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_head_with_other_dimensions_exits_2(tmp_path: Path, vtest_path: Path) -> None:
    config = HeadConfig(embed_dim=768, hidden=8, encoder="dinov2-b14")
    save_head(from_torch(config, torch_module(config)), tmp_path / "head")
    proc = vau_edge("run", "--dry-run", "--source", str(vtest_path), "--head",
                    str(tmp_path / "head"), timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "768-d" in proc.stderr and "Traceback" not in proc.stderr


def test_sigterm_stops_a_run_cleanly_with_exit_0(vtest_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([*CLI, "run", "--dry-run", "--source", str(vtest_path),
                             "--jsonl", str(out), "--fps", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size == 0):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in err
    n = len(records(out))
    assert 0 < n < 795  # stopped before the end of the clip, every line complete


def test_run_reports_an_event_on_a_clip_with_an_injected_tamper(
    vtest_path: Path, tmp_path: Path
) -> None:
    """Camera tamper (an occluding blob) from 8 s to 16 s: the default head raises an event."""
    clip = tmp_path / "tamper.avi"
    cap = cv2.VideoCapture(str(vtest_path))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (768, 576))
    for i in range(240):
        ok, img = cap.read()
        assert ok
        if 80 <= i < 160:
            cv2.circle(img, (384, 288), 260, (20, 20, 20), -1)
        writer.write(img)
    writer.release()
    out = tmp_path / "out.jsonl"
    proc = vau_edge("run", "--dry-run", "--source", str(clip), "--jsonl", str(out))
    assert proc.returncode == 0, proc.stderr
    events = [r for r in records(out) if r["kind"] == "event"]
    ends = [e for e in events if e["state"] == "end"]
    assert ends, f"no event ended; scores: {[r['score'] for r in records(out)][::4]}"
    assert any(e["start"] < 16.0 and e["end"] > 8.0 for e in ends)
    assert any(r["kind"] == "window" for r in records(out))
