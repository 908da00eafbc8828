"""Long footage is learnt from bursts spread over all of it (`normality.learn_frames`), on the
real vtest clip (79.5 s at 10 fps: 159 frames at the default 2 fps)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vau.edge.normality.learn import BURST_S, burst_every
from vau.edge.settings import EdgeSettings
from vau.edge.sources import file_seconds


def settings(learn_frames: int) -> EdgeSettings:
    return EdgeSettings.model_validate({"normality": {"learn_frames": learn_frames}})


def test_a_file_states_its_length(vtest_path: Path) -> None:
    assert file_seconds(vtest_path) == pytest.approx(79.5)


def test_footage_within_the_budget_is_learnt_whole(vtest_path: Path) -> None:
    assert burst_every([vtest_path], settings(600), start_s=0.0) is None


def test_footage_over_the_budget_is_learnt_from_bursts_that_fit_it(vtest_path: Path) -> None:
    every = burst_every([vtest_path, vtest_path], settings(80), start_s=10.0)
    assert every is not None
    frames = 2 * (79.5 - 10.0) * 2.0  # sampled frames of both files after the first 10 s
    assert frames / every * BURST_S == pytest.approx(80)  # 80 frames' worth of bursts


def test_a_file_that_does_not_state_its_length_is_learnt_whole(tmp_path: Path) -> None:
    junk = tmp_path / "stream.avi"
    junk.write_bytes(b"not a video")
    assert file_seconds(junk) is None
    assert burst_every([junk], settings(80), start_s=0.0) is None


@pytest.mark.slow
def test_learn_over_the_budget_encodes_bursts_and_says_so(vtest_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text("[normality]\nlearn_frames = 60\n")
    out = tmp_path / "cam"
    args = ["learn", "--source", str(vtest_path), "--out", str(out), "--config", str(config)]
    proc = subprocess.run(
        [sys.executable, "-m", "vau.edge.cli", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["burst_every_s"] == pytest.approx(BURST_S * 159 / 60, abs=0.01)
    assert 50 <= summary["frames"] <= 70 and summary["seconds"] > 70
    manifest = json.loads((out / "normality.json").read_text())
    assert manifest["settings"]["burst_every_s"] == summary["burst_every_s"]
    assert "learning from 5 s bursts" in proc.stderr
