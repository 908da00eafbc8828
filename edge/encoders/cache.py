"""The fused graph the edge runs: the configured file, or one from the edge's export cache.

Cache entries live in `<cache>/export/fused-<size>-r<keep_ratio>/` and are found by their
manifests, not their names: a graph is used when its manifest matches the input size, keep ratio,
precision and TETG head and its bytes check out. When none does (first use, a damaged file, a
retrained head), the edge asks `vau-export` to make one, in a child process: the edge reads the
artefact contract (`artefact`) but never imports the exporter, which imports the edge. Writers hold
a lock on the folder, so two agents starting at once export once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from vau.edge.encoders.artefact import (
    MANIFEST,
    ArtefactError,
    ArtefactManifest,
    check_artefact,
    read_manifest,
    sha256_file,
)
from vau.edge.encoders.fused_backend import OUTPUTS
from vau.edge.settings import EdgeSettings
from vau.edge.tetg import WEIGHTS, head_folder

log = logging.getLogger(__name__)

ArtefactWanted = Callable[[ArtefactManifest, Path], bool]
EXPORT_TIMEOUT_S = 1800.0  # a first export on a small CPU takes minutes, not hours


def carries_head(artefact: Path, head_ref: str) -> bool:
    """True when the artefact's manifest names the configured head's weights (or no head)."""
    try:
        sources = read_manifest(artefact).sources
    except ArtefactError:
        return False
    baked = {v for k, v in sources.items() if k.endswith(f"/{WEIGHTS}")}
    return not baked or sha256_file(head_folder(head_ref) / WEIGHTS) in baked


def fused_artefact(settings: EdgeSettings) -> Path:
    """The graph `encoder.backend = "fused"` runs.

    encoder.fused_model when set (a TensorRT .engine is taken as it is), else the cache's graph
    for this input size, keep ratio and head, exported when there is none that checks out.
    precision = "int8" picks the fp32 graph's dynamic int8 twin beside it, quantised on first use.
    """
    from vau.assets.paths import default_cache_dir

    enc = settings.encoder
    if enc.fused_model and Path(enc.fused_model).suffix == ".engine":
        return Path(enc.fused_model)  # built for its precision; the runner checks it
    if enc.precision == "fp16":
        raise ArtefactError(
            "the fused ONNX graph runs fp32 or int8 on CPU; for fp16 build a TensorRT engine "
            "(`vau-export tensorrt`) and set encoder.fused_model to it"
        )
    if enc.fused_model:
        path = Path(enc.fused_model)
        if not path.is_file() or enc.precision != "int8":
            return path  # the runner checks it and says what is wrong
        return _int8_twin(path)
    size, ratio = enc.input_size, settings.sets.keep_ratio
    folder = (settings.cache_dir or default_cache_dir()) / "export" / f"fused-{size}-r{ratio}"
    with _exclusive(folder):
        found = _find(folder, lambda m, p: m.precision == "fp32" and _fits(m, p, settings))
        path = found if found is not None else _export(settings, folder)
    return _int8_twin(path) if enc.precision == "int8" else path


def _fits(manifest: ArtefactManifest, path: Path, settings: EdgeSettings) -> bool:
    size, ratio = settings.encoder.input_size, settings.sets.keep_ratio
    same = manifest.input_size == size and abs(manifest.keep_ratio - ratio) < 1e-9
    current = set(OUTPUTS) <= {o.name for o in manifest.outputs}  # not from an older vau-export
    return same and current and carries_head(path, settings.head.path)


def _int8_twin(path: Path) -> Path:
    """An int8 graph as it is; for an fp32 one its dynamic int8 twin, quantised when missing."""
    source = read_manifest(path)
    if source.precision != "fp32":
        return path

    def twin(m: ArtefactManifest, _: Path) -> bool:
        made_from = source.sha256 in m.sources.values()
        return m.precision == "int8" and m.quantization.startswith("dynamic") and made_from

    with _exclusive(path.parent):
        found = _find(path.parent, twin)
        if found is not None:
            return found
        log.info("quantising %s to int8 (dynamic), once", path.name)
        return _vau_export("quantize", "--model", str(path), "--mode", "dynamic")


def _find(folder: Path, wanted: ArtefactWanted) -> Path | None:
    """The first artefact in `folder` whose manifest is `wanted` and whose bytes check out."""
    for manifest_path in sorted(folder.glob("*.json"), key=lambda p: p.name != MANIFEST):
        try:
            manifest = ArtefactManifest.model_validate_json(manifest_path.read_bytes())
        except (ValidationError, OSError):
            continue
        model = folder / manifest.artefact
        if not wanted(manifest, model):
            continue
        try:
            check_artefact(model)
        except ArtefactError as exc:
            log.warning("cached %s is unusable (%s); exporting again", model.name, exc)
            continue
        return model
    return None


def _export(settings: EdgeSettings, folder: Path) -> Path:
    size, ratio = settings.encoder.input_size, settings.sets.keep_ratio
    log.info("exporting the fused graph to %s (once per size, keep ratio and head)", folder)
    return _vau_export(
        *("onnx", "--out", str(folder), "--input-size", str(size), "--keep-ratio", str(ratio)),
        *("--head", settings.head.path, "--weights", str(_weights(settings))),
    )


def _vau_export(*args: str) -> Path:
    """Run `vau-export ARGS` in a child process; the path of the model it reports."""
    cmd = [sys.executable, "-m", "vau.export.cli", *args]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ArtefactError(f"`vau-export {args[0]}` ran past {EXPORT_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ArtefactError(f"`vau-export {args[0]}` failed: {last}")
    return Path(json.loads(done.stdout)["model"])


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _weights(settings: EdgeSettings) -> Path:
    weights = Path(settings.encoder.model)
    if weights.is_dir():
        return weights
    from vau.assets import asset_path

    return asset_path(settings.encoder.model, settings.cache_dir)
