"""Train and evaluate the TETG head on frozen encoder CLS features of labelled clips.

extract_features (clips -> per-frame CLS, times, labels; cached as .npz) -> train_head (torch MLP,
BCE with logits, class-balanced) -> evaluate (frame ROC-AUC overall and per anomaly kind) ->
run_training (all of it, saving the head, its provenance and report.json).

Per-kind AUC: the span frames of that kind's test clips (positives) against every frame of the test
split outside any span (negatives, shared by all kinds), so each kind is measured against the same
normal background. Inputs are standardised while training and the scaling is folded into the first
layer afterwards, so the saved head takes raw CLS embeddings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from vau.edge.manifest import NORMAL, Clip, ManifestError, load_manifest
from vau.edge.settings import EdgeSettings
from vau.edge.tetg import AnomalyHead, HeadConfig, from_torch, save_head, torch_module
from vau.edge.types import F32

log = logging.getLogger(__name__)

DEFAULT_EPOCHS = 200
REPORT = "report.json"


@dataclass(frozen=True, eq=False)
class ClipFeatures:
    clip: Clip
    cls: F32  # (T, C) CLS embedding per sampled frame
    times: F32  # (T,) seconds into the clip
    labels: F32  # (T,) 1.0 inside an anomaly span, else 0.0


@dataclass(frozen=True, eq=False)
class Features:
    clips: tuple[ClipFeatures, ...]
    encoder: str  # which encoder made them, e.g. "onnx:dinov2-s14-onnx@224"
    input_size: int  # the encoder's square input side in pixels
    fps: float

    def stacked(self) -> tuple[F32, F32]:
        """(N, C) features and (N,) labels of every frame of every clip."""
        return (
            np.concatenate([c.cls for c in self.clips]),
            np.concatenate([c.labels for c in self.clips]),
        )


@dataclass(frozen=True)
class KindReport:
    kind: str
    clips: int
    frames_inside: int
    auc: float | None  # None when the kind has no span frames in the test split
    mean_inside: float | None  # mean score of its span frames
    mean_outside: float | None  # mean score of its clips' frames outside the spans


@dataclass(frozen=True)
class Report:
    frame_auc: float
    mean_inside: float
    mean_outside: float
    frames: int
    positives: int
    clips: int
    kinds: tuple[KindReport, ...]


def encoder_id(settings: EdgeSettings) -> str:
    enc = settings.encoder
    models = {"torch": enc.model, "onnx": enc.onnx_model, "tensorrt": enc.engine}
    model = models.get(enc.backend, enc.fused_model)
    return f"{enc.backend}:{model}@{enc.input_size}"


def extract_features(
    clips: Sequence[Clip], settings: EdgeSettings, fps: float = 2.0, cache_dir: Path | None = None
) -> Features:
    """CLS embeddings of each clip sampled at `fps`; reuses `cache_dir`/*.npz when given."""
    name = encoder_id(settings)
    encoder: Any = None
    out = []
    for clip in clips:
        cached = _cache_file(cache_dir, clip.path, name, fps)
        if cached is not None and cached.is_file():
            with np.load(cached) as data:
                cls, times = data["cls"], data["times"]
        else:
            if encoder is None:
                from vau.edge.encoders.factory import build_encoder

                encoder = build_encoder(settings.encoder, settings.cache_dir)
            cls, times = _encode_clip(clip.path, encoder, settings, fps)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cached, cls=cls, times=times)
        labels = np.array([clip.label_at(float(t)) for t in times], np.float32)
        out.append(ClipFeatures(clip, cls, times, labels))
        log.info("features: %s, %d frames, %d in spans", clip.path.name, len(times), labels.sum())
    if encoder is not None:
        encoder.close()
    return Features(tuple(out), name, settings.encoder.input_size, fps)


def _cache_file(cache_dir: Path | None, video: Path, encoder: str, fps: float) -> Path | None:
    if cache_dir is None:
        return None
    stat = video.stat()
    key = f"{video.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{encoder}|{fps}"
    return cache_dir / f"{video.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _encode_clip(video: Path, encoder: Any, settings: EdgeSettings, fps: float) -> tuple[F32, F32]:
    from vau.edge.encoders.base import preprocess
    from vau.edge.sources import open_source, sampled

    cfg = settings.source.model_copy(update={"uri": str(video)})
    size, batch = settings.encoder.input_size, settings.encoder.batch_size
    images, times, parts = [], [], []
    with open_source(cfg, "train") as source:
        for frame in sampled(source, fps, "train"):
            images.append(frame.image)
            times.append(frame.t)
            if len(images) == batch:
                parts.append(encoder.encode(preprocess(images, size)).cls)
                images = []
    if images:
        parts.append(encoder.encode(preprocess(images, size)).cls)
    if not parts:
        raise ManifestError(f"{video} yielded no frames; is it an empty or unreadable video?")
    return np.concatenate(parts).astype(np.float32), np.array(times, np.float32)


@dataclass(frozen=True, eq=False)
class Consistency:
    """Train the head to score a second encoder's features of the same frames alike.

    `features` come from the same clips at the same fps as the training features, e.g. from the
    int8 graph the edge will run; the loss adds weight * mean((p(fp32) - p(other))^2). Without it
    a head trained on fp32 features turns the int8 encoder's small CLS error (CLS cosine 0.999)
    into score changes of up to 0.5 (docs/head.md).
    """

    features: Features
    weight: float


def train_head(
    train: Features, hidden: int = 128, epochs: int = DEFAULT_EPOCHS, lr: float = 1e-3,
    seed: int = 0, weight_decay: float = 1e-2, batch_size: int = 128,
    label_smoothing: float = 0.0, consistency: Consistency | None = None,
) -> AnomalyHead:  # fmt: skip
    """Fit the MLP with BCE-with-logits, AdamW and pos_weight = negatives / positives.

    Targets are smoothed towards 1/2 by `label_smoothing`; `consistency` adds the paired term.
    """
    import torch

    x, y = train.stacked()
    positives = float(y.sum())
    if positives == 0 or positives == len(y):
        raise ManifestError("training needs frames inside and outside anomaly spans; add both")
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    torch.manual_seed(seed)
    model = train.encoder.split(":", 1)[-1].rsplit("@", 1)[0]
    config = HeadConfig(int(x.shape[1]), hidden, encoder=model, input_size=train.input_size)
    module = torch_module(config)
    optimiser = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    pos_weight = torch.tensor([(len(y) - positives) / positives])
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y * (1.0 - label_smoothing) + 0.5 * label_smoothing)
    paired, weight = None, 0.0
    if consistency is not None:
        paired = torch.from_numpy((_paired(train, consistency.features) - mean) / std)
        weight = consistency.weight
    order = torch.Generator().manual_seed(seed)
    module.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(yt), generator=order).split(batch_size):
            optimiser.zero_grad()
            logits = module(xt[idx])[:, 0]
            loss = loss_fn(logits, yt[idx])
            if paired is not None:
                gap = torch.sigmoid(logits) - torch.sigmoid(module(paired[idx])[:, 0])
                loss = loss + weight * (gap**2).mean()
            loss.backward()
            optimiser.step()
    module.eval()
    return _fold_standardisation(from_torch(config, module), mean, std)


def _paired(train: Features, other: Features) -> F32:
    """The other encoder's features, checked frame for frame against the training features."""
    if [c.clip.path for c in train.clips] != [c.clip.path for c in other.clips] or [
        len(c.cls) for c in train.clips
    ] != [len(c.cls) for c in other.clips]:
        raise ManifestError("consistency features must come from the same clips and frames")
    return other.stacked()[0]


def _fold_standardisation(head: AnomalyHead, mean: F32, std: F32) -> AnomalyHead:
    """((z - mean) / std) @ w1 + b1 == z @ (w1 / std[:, None]) + (b1 - (mean / std) @ w1)."""
    t = head.tensors()
    w1 = (t["w1"] / std[:, None]).astype(np.float32)
    b1 = (t["b1"] - (mean / std) @ t["w1"]).astype(np.float32)
    return AnomalyHead(head.config, {**t, "w1": w1, "b1": b1})


def roc_auc(scores: Sequence[float] | F32, labels: Sequence[float] | F32) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties count 1/2.

    Computed from ranks (Mann-Whitney U) with tied scores given their average rank.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and labels {y.shape} must be equal-length vectors")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs at least one positive and one negative label")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based ranks, ties averaged
    ranks = average_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate(head: AnomalyHead, test: Features) -> Report:
    """Frame ROC-AUC overall and per kind, and mean scores inside / outside the spans."""
    scores = [head.score(c.cls) for c in test.clips]
    s, y = np.concatenate(scores), np.concatenate([c.labels for c in test.clips]).astype(bool)
    if y.all() or not y.any():
        raise ManifestError("the test split needs frames inside and outside anomaly spans")
    kinds = sorted({_kind(c.clip) for c in test.clips if c.clip.spans})
    reports = tuple(_kind_report(k, test, scores, s[~y]) for k in kinds)
    return Report(
        frame_auc=roc_auc(s, y), mean_inside=float(s[y].mean()), mean_outside=float(s[~y].mean()),
        frames=len(y), positives=int(y.sum()), clips=len(test.clips), kinds=reports,
    )  # fmt: skip


def _kind_report(kind: str, test: Features, scores: list[F32], normal: F32) -> KindReport:
    mine = [i for i, c in enumerate(test.clips) if c.clip.spans and _kind(c.clip) == kind]
    inside = np.concatenate([scores[i][test.clips[i].labels > 0] for i in mine])
    outside = np.concatenate([scores[i][test.clips[i].labels == 0] for i in mine])
    auc = None
    if len(inside):
        both = np.concatenate([inside, normal])
        auc = roc_auc(both, np.r_[np.ones(len(inside)), np.zeros(len(normal))])
    return KindReport(
        kind=kind, clips=len(mine), frames_inside=len(inside), auc=auc,
        mean_inside=float(inside.mean()) if len(inside) else None,
        mean_outside=float(outside.mean()) if len(outside) else None,
    )  # fmt: skip


def _kind(clip: Clip) -> str:
    return clip.kind if clip.kind not in ("", NORMAL) else "unnamed"


def split_clips(clips: Sequence[Clip]) -> tuple[list[Clip], list[Clip]]:
    """(train, test) by each clip's split; clips without one go to test when a stable hash of
    the file name falls in the lowest 30 %, else to train."""

    def is_test(c: Clip) -> bool:
        return c.split == "test" or (c.split == "" and zlib.crc32(c.path.name.encode()) % 10 < 3)

    return [c for c in clips if not is_test(c)], [c for c in clips if is_test(c)]


@dataclass(frozen=True)
class TrainOptions:
    """What `vau-edge train-head` takes besides the manifest and the output folder."""

    fps: float = 2.0
    hidden: int = 128
    epochs: int = DEFAULT_EPOCHS
    seed: int = 0
    lr: float = 1e-3
    label_smoothing: float = 0.0
    consistency_model: Path | None = None  # a fused graph (e.g. the int8 one) to agree with
    consistency_weight: float = 1000.0
    video_root: Path | None = None

    def command(self, manifest: Path, out_dir: Path) -> str:
        parts = [
            f"vau-edge train-head --manifest {manifest} --out {out_dir} --fps {self.fps}",
            f"--epochs {self.epochs} --hidden {self.hidden} --seed {self.seed}",
        ]
        if self.label_smoothing:
            parts.append(f"--label-smoothing {self.label_smoothing}")
        if self.consistency_model is not None:
            parts.append(f"--consistency-model {self.consistency_model}")
            parts.append(f"--consistency-weight {self.consistency_weight}")
        if self.video_root:
            parts.append(f"--video-root {self.video_root}")
        return " ".join(parts)


def run_training(
    manifest_path: Path, settings: EdgeSettings, out_dir: Path, options: TrainOptions | None = None
) -> Report:
    """Train on the manifest's train split, evaluate on its test split, save head + report."""
    opt = options or TrainOptions()
    started = datetime.now(UTC)
    train_clips, test_clips = split_clips(load_manifest(manifest_path, opt.video_root))
    if not train_clips or not test_clips:
        raise ManifestError(
            f"{manifest_path}: need clips in both splits (train {len(train_clips)}, test "
            f'{len(test_clips)}); set "split" on some lines or leave it empty to auto-split'
        )
    cache = out_dir / "features"
    train = extract_features(train_clips, settings, opt.fps, cache)
    test = extract_features(test_clips, settings, opt.fps, cache)
    model = opt.consistency_model
    other = None if model is None else _fused_settings(settings, model)
    consistency = None
    if other is not None:
        features = extract_features(train_clips, other, opt.fps, cache)
        consistency = Consistency(features, opt.consistency_weight)
    head = train_head(
        train, hidden=opt.hidden, epochs=opt.epochs, lr=opt.lr, seed=opt.seed,
        label_smoothing=opt.label_smoothing, consistency=consistency,
    )  # fmt: skip
    report = evaluate(head, test)
    data = _data_provenance(manifest_path, train, test)
    training: dict[str, Any] = {
        "fps": opt.fps, "hidden": opt.hidden, "epochs": opt.epochs, "lr": opt.lr,
        "seed": opt.seed, "label_smoothing": opt.label_smoothing,
        "loss": "BCE with logits, pos_weight = negatives / positives, AdamW",
    }  # fmt: skip
    if other is not None:
        training["consistency"] = {
            "model": str(model),
            "encoder": encoder_id(other),
            "weight": opt.consistency_weight,
            "test_score_gap": _score_gap(head, test, other, cache),
        }
        training["loss"] += " + weight * mean((p - p_consistency_model)^2)"
    provenance = {
        "description": data.get("dataset", {}).get("description", f"trained on {manifest_path}"),
        "data": data,
        "metrics": asdict(report),
        "training": training,
        "command": opt.command(manifest_path, out_dir),
        "date": started.isoformat(timespec="seconds"),
    }
    save_head(AnomalyHead(replace(head.config, provenance=provenance), head.tensors()), out_dir)
    (out_dir / REPORT).write_text(json.dumps(asdict(report), indent=2) + "\n", "utf-8")
    return report


def _fused_settings(settings: EdgeSettings, model: Path) -> EdgeSettings:
    """The same settings with a fused graph as the feature encoder."""
    update = {"backend": "fused", "fused_model": str(model)}
    return settings.model_copy(update={"encoder": settings.encoder.model_copy(update=update)})


def _score_gap(
    head: AnomalyHead, test: Features, other: EdgeSettings, cache: Path
) -> dict[str, float]:
    """|score(features) - score(the other encoder's features)| on the held-out clips."""
    paired = extract_features([c.clip for c in test.clips], other, test.fps, cache)
    a = head.score(test.stacked()[0])
    b = head.score(_paired(test, paired))
    gap = np.abs(a - b)
    return {
        "max": float(gap.max()),
        "p99": float(np.quantile(gap, 0.99)),
        "mean": float(gap.mean()),
    }


def _data_provenance(manifest: Path, train: Features, test: Features) -> dict[str, Any]:
    data: dict[str, Any] = {
        "manifest": str(manifest),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "encoder": train.encoder,
        "train": {
            "clips": len(train.clips),
            "frames": int(sum(len(c.labels) for c in train.clips)),
        },
        "test": {"clips": len(test.clips), "frames": int(sum(len(c.labels) for c in test.clips))},
    }
    dataset = manifest.parent / "dataset.json"  # written by vau.edge.synth.build_dataset
    if dataset.is_file():
        data["dataset"] = json.loads(dataset.read_text("utf-8"))
    return data
