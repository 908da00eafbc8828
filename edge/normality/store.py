"""A normality model on disk: `normality.safetensors` + `normality.json` in one folder per camera.

The JSON manifest records what the model was learnt with (encoder family, input size, embedding
width, grid), from what (footage, frames, seconds, dates), its sizes, its settings and its
calibration. Loading refuses a model made with another encoder or input size, with a message that
says how to learn a matching one. Saving is atomic: the folder is staged beside the target and
swapped in with renames, so an interrupted learn leaves the previous model (or none), never a
half-written one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from vau.common.files import readable
from vau.edge.normality.calibration import Calibration
from vau.edge.normality.model import NormalityModel

log = logging.getLogger(__name__)

WEIGHTS = "normality.safetensors"
MANIFEST = "normality.json"
FORMAT = 2  # 2: the appearance memory holds block 10's tokens (1: the last layer's)
LATER_AT_REST = ("settled", "lingering")  # parts at rest added after the static part
MIN_LEARN_S = 30.0  # seconds of normal footage a model needs at least


class NormalityError(Exception):
    """A normality model cannot be used or made; the message says what to do."""


@dataclass(frozen=True)
class Provenance:
    """Where a model came from (the manifest's descriptive part)."""

    encoder: str  # encoder family, e.g. "dinov2-s14"
    input_size: int
    embed_dim: int
    fps: float  # frames per second it was learnt at (motion statistics depend on it)
    camera: str
    footage: list[dict[str, Any]] = field(default_factory=list)  # {"source", "seconds", "frames"}
    frames: int = 0
    seconds: float = 0.0
    created: str = ""
    head: str = ""  # sha256 of the head weights its "head" calibration was measured with
    settings: dict[str, Any] = field(default_factory=dict)
    updates: dict[str, int] = field(default_factory=dict)  # online adaptation counters


def save_model(model: NormalityModel, prov: Provenance, folder: Path) -> Path:
    """Write the model atomically into `folder` (replacing a previous one)."""
    from safetensors.numpy import save_file

    folder = folder.absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    stage.chmod(0o755)
    try:
        tensors = {
            "memory": model.memory.astype(np.float16),
            "positions": model.positions.astype(np.int32),
            "motion_mu": model.motion_mu,
            "motion_sigma": model.motion_sigma,
            "cls_memory": model.cls_memory.astype(np.float16),
        }
        if model.background is not None:
            tensors["background"] = model.background
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, stage / WEIGHTS)
        readable(stage / WEIGHTS)
        manifest = _manifest(model, prov)
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        for name in (WEIGHTS, MANIFEST):
            _fsync(stage / name)
        _swap(stage, folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return folder


def _manifest(model: NormalityModel, prov: Provenance) -> dict[str, Any]:
    created = prov.created or datetime.now(UTC).isoformat(timespec="seconds")
    return {
        "format": FORMAT,
        "encoder": prov.encoder,
        "input_size": prov.input_size,
        "embed_dim": prov.embed_dim,
        "grid": list(model.grid),
        "fps": prov.fps,
        "camera": prov.camera,
        "created": created,
        "footage": prov.footage,
        "frames": prov.frames,
        "seconds": round(prov.seconds, 3),
        "head": prov.head,
        "radius": model.radius,
        "sizes": {
            "memory_patches": int(model.memory.shape[0]),
            "class_tokens": int(model.cls_memory.shape[0]),
            "bytes_in_memory": model.nbytes,
        },
        "settings": prov.settings,
        "calibration": {k: c.to_list() for k, c in model.calibration.items()},
        "patch_calibration": {k: c.to_list() for k, c in model.patch_calibration.items()},
        "updates": prov.updates,
    }


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _swap(stage: Path, folder: Path) -> None:
    """stage -> folder with renames only; the old folder is removed after the new is in place."""
    old = None
    if folder.exists():
        if not folder.is_dir():
            raise NormalityError(f"{folder} exists and is not a folder; choose another --out")
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        folder.replace(old)
    stage.replace(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_manifest(folder: Path) -> dict[str, Any]:
    if not (folder / WEIGHTS).is_file() or not (folder / MANIFEST).is_file():
        raise NormalityError(
            f"no normality model in {folder} (needs {WEIGHTS} and {MANIFEST}); learn one with "
            "`vau-edge learn --source FILE --out DIR`"
        )
    try:
        raw: dict[str, Any] = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise NormalityError(f"{folder / MANIFEST} is unreadable ({exc}); learn it again") from None
    if raw.get("format") != FORMAT:
        raise NormalityError(
            f"{folder} holds normality format {raw.get('format')}, this version reads {FORMAT} "
            "(since format 2 the appearance memory holds the encoder's block-10 tokens); learn it "
            "again with `vau-edge learn`"
        )
    return raw


def check_fits(raw: dict[str, Any], folder: Path, encoder: str, input_size: int, dim: int) -> None:
    """Refuse a model learnt with another encoder, input size or embedding width."""
    if raw.get("encoder") != encoder or raw.get("embed_dim") != dim:
        raise NormalityError(
            f"the normality model in {folder} was learnt with encoder {raw.get('encoder')!r} "
            f"({raw.get('embed_dim')}-d) but this camera runs {encoder!r} ({dim}-d); learn it "
            "again with the running encoder (`vau-edge learn --config <the same settings>`)"
        )
    if raw.get("input_size") != input_size:
        raise NormalityError(
            f"the normality model in {folder} was learnt at {raw.get('input_size')}px input but "
            f"the encoder runs at {input_size}px; set encoder.input_size = {raw.get('input_size')} "
            "or learn the model again at this size"
        )


def load_model(
    folder: Path, encoder: str, input_size: int, dim: int, device: str = "cpu"
) -> tuple[NormalityModel, dict[str, Any]]:
    """The model in `folder` and its manifest; NormalityError when missing, damaged or unfit."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    raw = read_manifest(folder)
    check_fits(raw, folder, encoder, input_size, dim)
    try:
        t = load_file(folder / WEIGHTS)
        grid = (int(raw["grid"][0]), int(raw["grid"][1]))
        calib = {k: Calibration(*map(float, v)) for k, v in raw["calibration"].items()}
        patch = {k: Calibration(*map(float, v)) for k, v in raw["patch_calibration"].items()}
        model = NormalityModel(
            grid=grid,
            memory=t["memory"].astype(np.float32),
            positions=t["positions"].astype(np.int64),
            motion_mu=t["motion_mu"].astype(np.float32),
            motion_sigma=t["motion_sigma"].astype(np.float32),
            cls_memory=t["cls_memory"].astype(np.float32),
            radius=int(raw["radius"]),
            calibration=calib,
            patch_calibration=patch,
            background=t["background"].astype(np.float32) if "background" in t else None,
            device=device,
        )
    except (SafetensorError, KeyError, TypeError, ValueError, OSError) as exc:
        raise NormalityError(
            f"normality model in {folder} is damaged ({exc}); learn it again"
        ) from None
    if model.memory.shape[1] != dim or model.motion_mu.shape[0] != model.patches:
        raise NormalityError(f"normality model in {folder} has inconsistent shapes; learn it again")
    if "flow" not in calib:
        log.warning(
            "normality model in %s has no pixel-flow calibration (learnt before it existed, or "
            "from a source below 5 fps): speed is judged without it; learn it again to add it",
            folder,
        )
    if model.background is None or "static" not in calib:
        log.warning(
            "normality model in %s has no background (learnt before the static part existed): "
            "things that arrive and stay are judged without it; learn it again to add it",
            folder,
        )
    else:
        missing = [k for k in LATER_AT_REST if k not in calib]
        if missing:
            log.warning(
                "normality model in %s has no %s-part calibration (learnt before it existed): "
                "things at rest are judged without it; learn it again to add it",
                folder,
                " or ".join(missing),
            )
        unmapped = [k for k in LATER_AT_REST if k in calib and k not in patch]
        if unmapped:
            log.warning(
                "normality model in %s has no per-patch units for the %s part (learnt before "
                "they joined the anomaly map): hot patches leave it out, so the place of a thing "
                "at rest may be missed; learn it again to add them",
                folder,
                " or ".join(unmapped),
            )
        if model.background.ndim != 3:
            log.warning(
                "normality model in %s has a grey background (learnt before the static part "
                "compared colours): things at rest are judged on grey levels; learn it again to "
                "see them in colour",
                folder,
            )
    return model, raw
