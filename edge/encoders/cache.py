"""The fused graph the edge runs: the configured file, or one exported (and quantised) to the cache.

Cache entries live in `<cache>/export/fused-<size>-r<keep_ratio>/` and are checked like any artefact
(manifest, size, sha256). An entry that carries another TETG head than `head.path` is exported
again, so retraining the head never leaves a stale graph behind.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vau.edge.settings import EdgeSettings
from vau.edge.tetg import WEIGHTS, head_folder
from vau.export.manifest import check_artefact, read_manifest, sha256_file
from vau.export.settings import ExportError

log = logging.getLogger(__name__)


def carries_head(artefact: Path, head_ref: str) -> bool:
    """True when the artefact's manifest names the configured head's weights (or no head)."""
    try:
        sources = read_manifest(artefact).sources
    except ExportError:
        return False
    baked = {v for k, v in sources.items() if k.endswith(f"/{WEIGHTS}")}
    return not baked or sha256_file(head_folder(head_ref) / WEIGHTS) in baked


def fused_artefact(settings: EdgeSettings) -> Path:
    """The graph `encoder.backend = "fused"` runs.

    encoder.fused_model when set (a TensorRT .engine is taken as it is), else the cache's export
    for this input size, keep ratio and head, exported again when missing, damaged or made with
    another head. precision = "int8" picks the fp32 graph's dynamic int8 twin beside it, quantised
    on first use. Writers hold a lock on the folder, so two agents starting at once export once.
    """
    from vau.assets.paths import default_cache_dir
    from vau.export.fused import fused_k
    from vau.export.onnx_export import artefact_name

    enc = settings.encoder
    if enc.fused_model and Path(enc.fused_model).suffix == ".engine":
        return Path(enc.fused_model)  # built for its precision; the runner checks it
    if enc.precision == "fp16":
        raise ExportError(
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
    path = folder / artefact_name(fused_k(size, ratio))
    with _exclusive(folder):
        if not _usable(path) or not carries_head(path, settings.head.path):
            if path.exists():
                log.warning("cached %s is damaged or carries another head; exporting again", path)
            _export_into_cache(settings, folder)
    return _int8_twin(path) if enc.precision == "int8" else path


def _export_into_cache(settings: EdgeSettings, folder: Path) -> None:
    from vau.export.onnx_export import export_onnx
    from vau.export.quantize import quantized_name
    from vau.export.settings import ExportSettings

    size, ratio = settings.encoder.input_size, settings.sets.keep_ratio
    log.info("exporting the fused graph to %s (once per size, keep ratio and head)", folder)
    export = ExportSettings(input_size=size, keep_ratio=ratio)
    path = export_onnx(_weights(settings), folder, export, settings.head.path)
    stale = quantized_name(path, "dynamic")
    for leftover in (stale, stale.with_suffix(".json"), stale.with_name(stale.name + ".data")):
        leftover.unlink(missing_ok=True)


def _int8_twin(path: Path) -> Path:
    """An int8 graph as it is; for an fp32 one its dynamic int8 twin, quantised when missing."""
    from vau.export.quantize import quantize, quantized_name, recipe

    if read_manifest(path).precision != "fp32":
        return path
    twin = quantized_name(path, "dynamic")
    with _exclusive(path.parent):
        if _usable(twin) and read_manifest(twin).quantization == recipe("dynamic"):
            return twin
        return quantize(path, "dynamic")  # missing, damaged, or made by an older recipe


def _usable(path: Path) -> bool:
    try:
        check_artefact(path)
    except ExportError:
        return False
    return True


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
