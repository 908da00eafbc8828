"""`vau-edge train-head --consistency-model` end to end: real clips, real fp32 and int8 graphs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vau.edge.synth import build_dataset
from vau.edge.tetg import load_head


def test_train_head_against_the_int8_graph_records_the_held_out_score_gap(
    fused_int8: Path, vtest_path: Path, bikes_path: Path, tmp_path: Path
) -> None:
    manifest = build_dataset([vtest_path, bikes_path], tmp_path / "ds", clips_per_kind=2,
                             clip_seconds=6.0, seed=5)  # fmt: skip
    out = tmp_path / "head"
    proc = subprocess.run(
        [sys.executable, "-m", "vau.edge.cli", "train-head", "--manifest", str(manifest),
         "--out", str(out), "--fps", "1", "--epochs", "20", "--hidden", "16",
         "--consistency-model", str(fused_int8), "--consistency-weight", "300"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    training = load_head(out).config.provenance["training"]
    consistency = training["consistency"]
    assert consistency["encoder"] == f"fused:{fused_int8}@224" and consistency["weight"] == 300
    gap = consistency["test_score_gap"]
    assert 0.0 <= gap["mean"] <= gap["p99"] <= gap["max"] <= 1.0
    assert "p_consistency_model" in training["loss"]
    assert "--consistency-model" in load_head(out).config.provenance["command"]
    # every clip's features were extracted twice, fp32 and int8, and cached
    clips = len(manifest.read_text().splitlines())
    assert len(list((out / "features").glob("*.npz"))) == 2 * clips
