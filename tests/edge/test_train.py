"""TETG head training: manifests, ROC-AUC, the trainer on toy features, and end to end on real
footage with the real encoder (synthetic anomalies with known spans)."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vau.edge.manifest import NORMAL, Clip, ManifestError, load_manifest
from vau.edge.settings import EdgeSettings, load_settings
from vau.edge.synth import build_dataset
from vau.edge.tetg import DEFAULT_HEAD, AnomalyHead, load_head
from vau.edge.train import (
    ClipFeatures,
    Consistency,
    Features,
    TrainOptions,
    evaluate,
    extract_features,
    roc_auc,
    run_training,
    split_clips,
    train_head,
)

# --- ROC-AUC against hand-computed cases ---------------------------------------------------------


def test_roc_auc_is_one_when_every_positive_outscores_every_negative() -> None:
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0


def test_roc_auc_is_zero_when_the_ranking_is_inverted() -> None:
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0


def test_roc_auc_is_one_half_when_all_scores_tie() -> None:
    assert roc_auc([0.3, 0.3, 0.3, 0.3, 0.3], [0, 1, 0, 1, 1]) == 0.5


def test_roc_auc_counts_a_tied_pair_as_one_half() -> None:
    # pairs (pos, neg): (.5,.5)=1/2 (.5,.2)=1 (.9,.5)=1 (.9,.2)=1 -> 3.5 / 4
    assert roc_auc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]) == pytest.approx(0.875)
    # a mixed case: 3 of 4 pairs ordered correctly
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_roc_auc_refuses_a_single_class() -> None:
    with pytest.raises(ValueError, match="positive and one negative"):
        roc_auc([0.1, 0.2], [1, 1])


# --- manifests -----------------------------------------------------------------------------------


def test_jsonl_manifest_resolves_paths_beside_it(tmp_path: Path, bikes_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    shutil.copy(bikes_path, tmp_path / "clips" / "a.mp4")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"video": "clips/a.mp4", "spans": [[4, 6], [1.5, 2.5]], "kind": "smoke", "split": "test"}'
        '\n\n{"video": "clips/a.mp4"}\n'
    )
    first, second = load_manifest(manifest)
    assert first == Clip(tmp_path / "clips" / "a.mp4", ((1.5, 2.5), (4.0, 6.0)), "smoke", "test")
    assert second.spans == () and second.kind == NORMAL and second.split == ""
    assert first.label_at(2.0) == 1 and first.label_at(3.0) == 0 and first.label_at(6.0) == 0


def test_jsonl_paths_resolve_under_a_video_root_when_given(
    tmp_path: Path, bikes_path: Path
) -> None:
    (tmp_path / "videos").mkdir()
    shutil.copy(bikes_path, tmp_path / "videos" / "a.mp4")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"video": "a.mp4"}\n')
    (clip,) = load_manifest(manifest, video_root=tmp_path / "videos")
    assert clip.path == tmp_path / "videos" / "a.mp4"
    with pytest.raises(ManifestError, match="not a folder"):
        load_manifest(manifest, video_root=tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"video": "a.mp4", "spans": [[3, 3]]}', "start < end"),
        ('{"video": "a.mp4", "spans": [[5, 2]]}', "start < end"),
        ('{"video": "missing.mp4"}', "missing.mp4 not found"),
        ('{"video": "a.mp4", "spans": [3, 4]}', "must be [start_s, end_s]"),
        ('{"video": "a.mp4", "split": "val"}', "split must be"),
        ('{"video": "a.mp4", "label": 1}', "unknown key"),
        ('{"video": "a.mp4"', "not valid JSON"),
    ],
)
def test_jsonl_errors_name_the_line(
    tmp_path: Path, bikes_path: Path, line: str, message: str
) -> None:
    shutil.copy(bikes_path, tmp_path / "a.mp4")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"video": "a.mp4"}\n' + line + "\n")
    with pytest.raises(ManifestError, match=re.escape(message)) as info:
        load_manifest(manifest)
    assert f"{manifest}:2:" in str(info.value)


def test_ucf_crime_annotations_become_seconds_at_the_video_fps(
    tmp_path: Path, bikes_path: Path
) -> None:
    root = tmp_path / "videos"
    (root / "Arson").mkdir(parents=True)
    shutil.copy(bikes_path, root / "Arson" / "Arson011_x264.mp4")  # 25 fps
    shutil.copy(bikes_path, root / "Normal_Videos_003_x264.mp4")
    notes = tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    notes.write_text(
        "Arson011_x264.mp4  Arson  25  75  150  200\n"
        "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n"
    )
    arson, normal = load_manifest(notes, video_root=root)
    assert arson.path == root / "Arson" / "Arson011_x264.mp4" and arson.kind == "Arson"
    assert arson.spans == ((1.0, 3.0), (6.0, 8.0))
    assert normal.spans == () and normal.kind == NORMAL and normal.split == ""


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Gone_x264.mp4  Arson  25  75  -1  -1", "Gone_x264.mp4 not found"),
        ("Arson011_x264.mp4  Arson  75  25  -1  -1", "start < end"),
        ("Arson011_x264.mp4  Arson  25  75", "6 fields"),
        ("Arson011_x264.mp4  Arson  a  75  -1  -1", "integer frame numbers"),
    ],
)
def test_ucf_crime_errors_name_the_line(
    tmp_path: Path, bikes_path: Path, line: str, message: str
) -> None:
    shutil.copy(bikes_path, tmp_path / "Arson011_x264.mp4")
    notes = tmp_path / "notes.txt"
    notes.write_text("Arson011_x264.mp4  Arson  25  75  -1  -1\n" + line + "\n")
    with pytest.raises(ManifestError, match=re.escape(message)) as info:
        load_manifest(notes)
    assert f"{notes}:2:" in str(info.value)


def test_clips_without_a_split_are_divided_stably() -> None:
    clips = [Clip(Path(f"v{i:03d}.mp4"), (), NORMAL) for i in range(100)]
    train, test = split_clips(clips)
    assert 15 <= len(test) <= 45 and len(train) + len(test) == 100
    assert split_clips(clips) == (train, test)


# --- training on toy features --------------------------------------------------------------------


def toy_features(seed: int, clips: int = 6) -> Features:
    """Raw-looking embeddings (offset 40, scale 8) where anomalies shift 3 channels by 3 sd."""
    rng = np.random.default_rng(seed)
    out = []
    for n in range(clips):
        labels = (np.arange(20) >= 12).astype(np.float32) if n % 2 else np.zeros(20, np.float32)
        cls = (40 + 8 * rng.standard_normal((20, 16))).astype(np.float32)
        cls[:, :3] += 24 * labels[:, None]
        clip = Clip(Path(f"toy{n}.avi"), ((6.0, 10.0),) if n % 2 else (), "toy" if n % 2 else "")
        out.append(ClipFeatures(clip, cls, np.arange(0, 10, 0.5, dtype=np.float32), labels))
    return Features(tuple(out), "toy", 224, 2.0)


def test_training_on_toy_features_separates_the_classes() -> None:
    head = train_head(toy_features(0), hidden=16, epochs=200, seed=0)
    report = evaluate(head, toy_features(1))
    assert report.frame_auc > 0.95
    assert report.mean_inside > 0.7 > 0.3 > report.mean_outside
    (kind,) = report.kinds
    assert kind.kind == "toy" and kind.auc is not None and kind.auc > 0.95


def perturbed(features: Features, seed: int) -> Features:
    """A second 'encoder' of the same frames: the uninformative channels moved by 1 sd."""
    rng = np.random.default_rng(seed)
    clips = []
    for c in features.clips:
        cls = c.cls.copy()
        cls[:, 3:] += 8 * rng.standard_normal(cls[:, 3:].shape).astype(np.float32)
        clips.append(replace(c, cls=cls))
    return replace(features, clips=tuple(clips), encoder="toy-int8")


def test_consistency_training_makes_scores_agree_on_the_paired_encoder() -> None:
    train, test = toy_features(0), toy_features(1)
    plain = train_head(train, hidden=16, epochs=100, seed=0)
    paired = Consistency(perturbed(train, 10), weight=100.0)
    robust = train_head(train, hidden=16, epochs=100, seed=0, consistency=paired)
    other = perturbed(test, 11)

    def gap(head: AnomalyHead) -> float:
        return float(np.abs(head.score(test.stacked()[0]) - head.score(other.stacked()[0])).mean())

    assert gap(robust) < gap(plain) / 2
    assert evaluate(robust, test).frame_auc > 0.95


def test_consistency_features_of_other_frames_are_refused() -> None:
    train = toy_features(0)
    fewer = replace(train, clips=train.clips[:-1])
    with pytest.raises(ManifestError, match="same clips and frames"):
        train_head(train, hidden=4, epochs=1, consistency=Consistency(fewer, 1.0))


def test_training_is_deterministic_by_seed() -> None:
    a, b = (train_head(toy_features(0), hidden=8, epochs=5, seed=3) for _ in range(2))
    c = train_head(toy_features(0), hidden=8, epochs=5, seed=4)
    assert all(np.array_equal(a.tensors()[k], b.tensors()[k]) for k in a.tensors())
    assert not np.array_equal(a.tensors()["w1"], c.tensors()["w1"])


# --- real footage, real encoder ------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings(dinov2_onnx: Path) -> EdgeSettings:
    return load_settings()


@pytest.fixture(scope="module")
def small_dataset(
    tmp_path_factory: pytest.TempPathFactory, vtest_path: Path, bikes_path: Path
) -> Path:
    """2 clips per kind of 6 s, seed 5 (the default head was trained on seed 0)."""
    out = tmp_path_factory.mktemp("dataset")
    return build_dataset([vtest_path, bikes_path], out, clips_per_kind=2, clip_seconds=6.0, seed=5)


def test_training_end_to_end_writes_a_loadable_head_and_report(
    small_dataset: Path, settings: EdgeSettings, tmp_path: Path
) -> None:
    started = time.monotonic()
    report = run_training(
        small_dataset, settings, tmp_path, TrainOptions(fps=1.0, hidden=32, epochs=40)
    )
    first_run = time.monotonic() - started
    assert first_run < 60, f"took {first_run:.0f} s"
    head = load_head(tmp_path)
    assert head.config.embed_dim == 384 and head.config.input_size == 224
    provenance = head.config.provenance
    assert provenance["metrics"]["frame_auc"] == pytest.approx(report.frame_auc)
    assert "vau-edge train-head --manifest" in provenance["command"] and provenance["date"]
    assert "demo-grade" in provenance["data"]["dataset"]["description"]
    saved = json.loads((tmp_path / "report.json").read_text("utf-8"))
    assert saved["frame_auc"] == pytest.approx(report.frame_auc)
    assert {k["kind"] for k in saved["kinds"]} == {"intruder", "running", "smoke", "tamper"}
    assert list((tmp_path / "features").glob("*.npz"))  # features cached for the next run
    started = time.monotonic()
    again = run_training(
        small_dataset, settings, tmp_path, TrainOptions(fps=1.0, hidden=32, epochs=40)
    )
    assert again == report and time.monotonic() - started < first_run / 2


def test_default_head_scores_inside_held_out_spans_above_outside(
    small_dataset: Path, settings: EdgeSettings, tmp_path: Path
) -> None:
    head = load_head(DEFAULT_HEAD)
    assert "demo-grade" in json.dumps(head.config.provenance)
    clips = load_manifest(small_dataset)
    report = evaluate(head, extract_features(clips, settings, fps=1.0, cache_dir=tmp_path))
    assert report.mean_inside > report.mean_outside + 0.2, report
    assert report.frame_auc > 0.7, report
