"""The fused graph the edge runs: the configured file, or one exported (and quantised) to the cache.

Cache entries live in `<cache>/export/fused-<size>-r<keep_ratio>/` and are checked like any artefact
(manifest, size, sha256). An entry that carries another TETG head than `head.path` is exported
again, so retraining the head never leaves a stale graph behind.
"""

from __future__ import annotations

import logging
from pathlib import Path

from vau.edge.settings import EdgeSettings
from vau.edge.tetg import WEIGHTS, head_folder
from vau.export.manifest import read_manifest, sha256_file
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
    for this input size, keep ratio and head. precision = "int8" picks the fp32 graph's dynamic
    int8 twin beside it, quantised on first use.
    """
    from vau.assets.paths import default_cache_dir
    from vau.export.fused import fused_k
    from vau.export.onnx_export import artefact_name, export_onnx
    from vau.export.quantize import quantize, quantized_name
    from vau.export.settings import ExportSettings

    enc = settings.encoder
    if enc.fused_model:
        path = Path(enc.fused_model)
        if path.suffix == ".engine" or not path.is_file():
            return path  # the runner checks it and says what is wrong
    else:
        size, ratio = enc.input_size, settings.sets.keep_ratio
        folder = (settings.cache_dir or default_cache_dir()) / "export" / f"fused-{size}-r{ratio}"
        path = folder / artefact_name(fused_k(size, ratio))
        if not path.is_file() or not carries_head(path, settings.head.path):
            log.info("exporting the fused graph to %s (once per size, keep ratio, head)", folder)
            export_onnx(
                _weights(settings),
                folder,
                ExportSettings(input_size=size, keep_ratio=ratio),
                settings.head.path,
            )
            for stale in (quantized_name(path, "dynamic"),):
                stale.unlink(missing_ok=True)
                stale.with_suffix(".json").unlink(missing_ok=True)
    if enc.precision == "fp16":
        raise ExportError(
            "the fused ONNX graph runs fp32 or int8 on CPU; for fp16 build a TensorRT engine "
            "(`vau-export tensorrt`) and set encoder.fused_model to it"
        )
    if enc.precision == "int8" and read_manifest(path).precision == "fp32":
        twin = quantized_name(path, "dynamic")
        return twin if twin.is_file() else quantize(path, "dynamic")
    return path


def _weights(settings: EdgeSettings) -> Path:
    weights = Path(settings.encoder.model)
    if weights.is_dir():
        return weights
    from vau.assets import asset_path

    return asset_path(settings.encoder.model, settings.cache_dir)
