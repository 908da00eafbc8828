"""`vau-edge bench-bandwidth` on a short real clip: bytes from the real codec and libx264."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vau.edge.synth import make_clip


def test_bandwidth_report_counts_real_bytes_for_each_ratio_and_dtype(
    vtest_path: Path, tmp_path: Path
) -> None:
    pytest.importorskip("av", reason="PyAV (libx264) comes with the dev extras")
    clip = make_clip(vtest_path, tmp_path / "clip.avi", "tamper", (3.0, 7.0), 10.0).path
    out = tmp_path / "bw.json"
    proc = subprocess.run(
        [sys.executable, "-m", "vau.edge.cli", "bench-bandwidth", "--source", str(clip),
         "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads(out.read_text())["runs"][0]
    assert run["frames_encoded"] == 20 and run["h264"]["native_bytes_per_hour"] > 0
    rows = {(r["keep_ratio"], r["dtype"]): r for r in run["rows"]}
    assert set(rows) == {(k, d) for k in (0.1, 0.25, 0.5) for d in ("fp16", "int8")}
    for k in (0.1, 0.25, 0.5):
        fp16, int8 = rows[(k, "fp16")], rows[(k, "int8")]
        assert fp16["tokens_per_frame"] == round(256 * k)
        # int8 carries 1 byte per element plus a scale per token: about half of fp16
        assert 0.45 < int8["bytes_per_frame_continuous"] / fp16["bytes_per_frame_continuous"] < 0.6
        assert fp16["continuous_bytes_per_hour"] > fp16["event_driven_bytes_per_hour_this_clip"]
    assert rows[(0.5, "fp16")]["bytes_per_frame_continuous"] > 128 * 384 * 2  # 2 bytes/element
