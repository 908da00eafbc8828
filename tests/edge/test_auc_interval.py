"""The AUC's interval from resampling whole clips, on hand-made clips; `vau-edge eval`'s replay."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vau.edge.auc_interval import ClipScores, draws, intervals
from vau.edge.cli import main
from vau.edge.evaluate import ClipTrace, eval_report, traces_from
from vau.edge.manifest import Clip
from vau.edge.settings import EventSettings
from vau.edge.train import roc_auc


def noisy_clips(kind: str, n: int, seed: int, gap: float = 0.6) -> list[ClipScores]:
    """n clips of `kind` (8 span frames, 8 outside) and n normal ones (16 frames), each clip
    with its own offset (a clip's frames move together), the span frames `gap` higher."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        shift = rng.normal(0.0, 0.5)
        out.append(ClipScores(kind, rng.normal(gap + shift, 0.3, 8), rng.normal(shift, 0.3, 8)))
        out.append(ClipScores("normal", np.empty(0), rng.normal(rng.normal(0.0, 0.5), 0.3, 16)))
    return out


def point_auc(clips: list[ClipScores], kinds: set[str]) -> float:
    pos = np.concatenate([c.inside for c in clips if c.stratum in kinds])
    neg = np.concatenate([c.outside for c in clips])
    return roc_auc(np.r_[pos, neg], np.r_[np.ones(pos.size), np.zeros(neg.size)])


def test_the_interval_holds_the_figure_and_the_same_draws_give_the_same_interval() -> None:
    clips = noisy_clips("smoke", 12, seed=0)
    sets = draws([c.stratum for c in clips])
    (lo, hi) = intervals(clips, {"tuned": ["smoke"]}, sets)["tuned"]  # type: ignore[misc]
    assert 0.0 <= lo < point_auc(clips, {"smoke"}) < hi <= 1.0
    again = intervals(clips, {"tuned": ["smoke"]}, draws([c.stratum for c in clips]))
    assert again["tuned"] == (lo, hi)


def test_each_draw_keeps_as_many_clips_of_every_kind_as_the_set_has() -> None:
    strata = ["smoke"] * 3 + ["normal"] * 5 + ["fire"] * 2
    for idx in draws(strata, replicates=50):
        counts = Counter(strata[i] for i in idx)
        assert counts == Counter(strata)


def test_more_clips_of_the_same_kinds_give_a_narrower_interval() -> None:
    def width(n: int) -> float:
        clips = noisy_clips("smoke", n, seed=1)
        lo, hi = intervals(clips, {"g": ["smoke"]}, draws([c.stratum for c in clips]))["g"]  # type: ignore[misc]
        return hi - lo

    assert width(48) < 0.6 * width(6)


def test_span_frames_above_every_other_frame_give_an_interval_of_one() -> None:
    clips = noisy_clips("fire", 6, seed=2, gap=50.0)
    assert intervals(clips, {"g": ["fire"]}, draws([c.stratum for c in clips]))["g"] == (1.0, 1.0)


def test_a_group_with_no_span_frames_has_no_interval() -> None:
    clips = noisy_clips("smoke", 4, seed=3)
    sets = draws([c.stratum for c in clips])
    assert intervals(clips, {"heldout": [], "other": ["fire"]}, sets) == {
        "heldout": None,
        "other": None,
    }


def traced(kind: str, scores: list[float], span: tuple[float, float] | None) -> ClipTrace:
    clip = Clip(Path(f"{kind}.avi"), (span,) if span else (), kind, "test", "cam-0")
    t = [0.5 * k for k in range(len(scores))]
    return ClipTrace(clip, t, {"fused": scores}, lookahead=0)


def test_a_frames_file_gives_back_the_report_it_was_made_with(tmp_path: Path) -> None:
    traces = [
        traced("normal", [0.1, 0.2, 0.15, 0.3, 0.1, 0.12], None),
        traced("smoke", [0.1, 0.2, 0.7, 0.8, 0.25, 0.1], (1.0, 2.0)),
        traced("normal", [0.2, 0.1, 0.3, 0.2, 0.15, 0.1], None),
    ]
    frames = tmp_path / "frames.jsonl"
    frames.write_text("".join(json.dumps(tr.record()) + "\n" for tr in traces))
    again = traces_from(frames, gap_s=5.0)
    assert [tr.clip.kind for tr in again] == ["normal", "smoke", "normal"]
    assert again[1].clip.spans == ((1.0, 2.0),) and again[1].clip.camera == "cam-0"
    first = eval_report("made", traces, EventSettings(), heldout=())
    second = eval_report("made", again, EventSettings(), heldout=())
    assert list(first["scorers"]) == ["fused"]  # only the series every clip has
    assert second["scorers"] == first["scorers"]
    assert first["scorers"]["fused"]["auc"]["smoke"] == 1.0


def test_eval_refuses_a_replay_mixed_with_a_run_and_a_file_that_is_not_a_frames_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames.jsonl"
    frames.write_text(json.dumps(traced("smoke", [0.1, 0.9], (0.5, 1.0)).record()) + "\n")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    mixed = ["eval", "--from-frames", str(frames), "--manifest", str(manifest)]
    assert main(mixed) == 2
    assert "--from-frames alone" in capsys.readouterr().err
    assert main(["eval", "--manifest", str(manifest)]) == 2  # a run needs --models
    assert "--models" in capsys.readouterr().err
    assert main(["eval", "--from-frames", str(frames), "--frames-out", str(tmp_path / "f")]) == 2
    assert "--from-frames alone" in capsys.readouterr().err  # a replay writes no frames
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"video": "a.avi"}\n')
    assert main(["eval", "--from-frames", str(bad)]) == 2
    assert "bad.jsonl:1: not a --frames-out record" in capsys.readouterr().err
    assert main(["eval", "--from-frames", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "--from-frames", str(frames), "--replicates", "-1"]) == 2
    assert "--replicates -1" in capsys.readouterr().err
