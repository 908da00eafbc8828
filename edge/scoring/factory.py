"""The configured frame scorer (`normality.scorer`, a closed vocabulary) and its normality model.

- `head`: the TETG head alone.
- `normality`: the camera's normality model alone; it must exist (`normality.path`) or be learnt
  online (`normality.warmup_s`).
- `fused` (default): both when a model exists or is being learnt, else the head alone (logged).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from vau.edge.normality.online import OnlineNormality
from vau.edge.normality.store import MANIFEST, NormalityError, Provenance, load_model
from vau.edge.scoring.base import FrameScorer
from vau.edge.scoring.fused import FusedScorer
from vau.edge.scoring.head import HeadScorer
from vau.edge.scoring.normality import NormalityScorer
from vau.edge.settings import EdgeSettings

log = logging.getLogger(__name__)

SCORERS = ("head", "normality", "fused")


def encoder_family(settings: EdgeSettings) -> str:
    """Which weights make the tokens: the bundled DINOv2-S/14 under any backend, else the path."""
    enc = settings.encoder
    named = {"torch": enc.model, "onnx": enc.onnx_model, "tensorrt": enc.engine}
    model = named.get(enc.backend) or enc.fused_model or enc.model
    return "dinov2-s14" if model in ("dinov2-s14", "dinov2-s14-onnx") else model


def head_sha(settings: EdgeSettings) -> str:
    from vau.edge.encoders.artefact import sha256_file
    from vau.edge.tetg import WEIGHTS, head_folder

    path = head_folder(settings.head.path) / WEIGHTS
    return sha256_file(path) if path.is_file() else ""


def model_folder(settings: EdgeSettings) -> Path:
    """Where this camera's model lives: normality.path, else beside the outbox."""
    cfg = settings.normality
    if cfg.path is not None:
        return cfg.path
    return settings.uplink.data_dir / "normality" / settings.camera_id


def build_source(settings: EdgeSettings, embed_dim: int) -> OnlineNormality | None:
    """The camera's model (loaded, or to be learnt online); None when neither is configured."""
    cfg = settings.normality
    if cfg.path is None and cfg.warmup_s == 0:
        return None
    enc = settings.encoder
    folder = model_folder(settings)
    prov = Provenance(
        encoder=encoder_family(settings),
        input_size=enc.input_size,
        embed_dim=embed_dim,
        fps=settings.source.fps,
        camera=settings.camera_id,
        head=head_sha(settings),
        settings={"memory_patches": cfg.memory_patches, "radius": cfg.radius},
    )
    if (folder / MANIFEST).exists() or cfg.warmup_s == 0:
        model, raw = load_model(folder, prov.encoder, enc.input_size, embed_dim, cfg.device)
        if abs(float(raw.get("fps", prov.fps)) - prov.fps) > 1e-6:
            log.warning(
                "normality model learnt at %s fps, camera runs at %s fps: motion "
                "statistics assume the former",
                raw.get("fps"),
                prov.fps,
            )
        head_ok = raw.get("head") == prov.head
        if not head_ok:
            log.warning(
                "the TETG head changed since %s was learnt; the fused score uses its "
                "raw probability (learn again to calibrate it)",
                folder,
            )
        core = raw.get("settings", {}).get("core_patches")
        loaded = replace(
            prov,
            footage=raw.get("footage", []),
            frames=raw.get("frames", 0),
            seconds=raw.get("seconds", 0.0),
            created=raw.get("created", ""),
            updates=raw.get("updates", {}),
        )
        log.info(
            "normality model %s (%s patches, learnt from %.0f s)",
            folder,
            model.memory.shape[0],
            loaded.seconds,
        )
        return OnlineNormality(cfg, settings.camera_id, model, loaded, folder, head_ok, core)
    log.info(
        "camera %s has no normality model: learning one over the first %.0f s",
        settings.camera_id,
        cfg.warmup_s,
    )
    return OnlineNormality(cfg, settings.camera_id, None, prov, folder, False)


def build_scorer(settings: EdgeSettings, embed_dim: int) -> FrameScorer:
    kind = settings.normality.scorer
    if kind == "head":
        return HeadScorer()
    source = build_source(settings, embed_dim)
    if source is None:
        if kind == "normality":
            raise NormalityError(
                "normality.scorer = 'normality' needs a model: pass --normality DIR (learn one "
                "with `vau-edge learn`) or set normality.warmup_s to learn it online"
            )
        log.info("no normality model configured: scoring with the TETG head alone")
        return HeadScorer()
    return NormalityScorer(source) if kind == "normality" else FusedScorer(source)
