"""`vau-export onnx`: the fused DINOv2 + SETS + TETG module to one ONNX file plus its manifest.

DINOv2-S/14's graph is ~89 MB of fp32 weights, so they stay inside the file. Encoders past
protobuf's 2 GB limit (ViT-g) get their weights in `<name>.onnx.data` beside the graph
(`external_data = "auto"`; "always" forces it, e.g. for a runtime that maps weights separately);
the manifest records that file's size and sha256 and the loaders check it like the graph. The export
is staged in a temporary folder and moved into place, weights, graph, then manifest.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from vau.edge.encoders.artefact import (
    MANIFEST,
    ArtefactManifest,
    TensorSpec,
    external_fields,
    sha256_file,
    write_manifest,
)
from vau.edge.encoders.fused_backend import OUTPUTS
from vau.edge.tetg import CONFIG, WEIGHTS, head_folder, load_head
from vau.export.fused import INPUTS, build_fused, fused_k, patch_count
from vau.export.settings import ExportError, ExportSettings

BATCH = "batch"
_PROTOBUF_LIMIT = 2 * 1024**3


def artefact_name(k: int) -> str:
    return f"vau-fused-k{k}.onnx"


def tensor_specs(s: int, n: int, c: int, k: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
    f32, i64 = "float32", "int64"
    inputs = [
        TensorSpec(name="pixel_values", shape=[BATCH, 3, s, s], dtype=f32),
        TensorSpec(name="prev_patches", shape=[BATCH, n, c], dtype=f32),
    ]
    outputs = [
        TensorSpec(name="patches", shape=[BATCH, n, c], dtype=f32),
        TensorSpec(name="cls", shape=[BATCH, c], dtype=f32),
        TensorSpec(name="score", shape=[BATCH], dtype=f32),
        TensorSpec(name="indices", shape=[BATCH, k], dtype=i64),
        TensorSpec(name="kept", shape=[BATCH, k, c], dtype=f32),
        TensorSpec(name="inner", shape=[BATCH, n, c], dtype=f32),
    ]
    return inputs, outputs


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "transformers": transformers.__version__,
    }


def _pin_shapes(model: Any, outputs: list[TensorSpec]) -> None:
    """Replace the exporter's made-up symbolic output dims with the real sizes."""
    by_name = {spec.name: spec for spec in outputs}
    for value in model.graph.output:
        dims = value.type.tensor_type.shape.dim
        for dim, want in zip(dims, by_name[value.name].shape, strict=True):
            if isinstance(want, int):
                dim.dim_value = want
            else:
                dim.dim_param = want


def _sources(dinov2_dir: Path, head_ref: str | Path) -> dict[str, str]:
    head_dir = head_folder(head_ref)
    files = [dinov2_dir / "model.safetensors", head_dir / WEIGHTS, head_dir / CONFIG]
    return {f"{p.parent.name}/{p.name}": sha256_file(p) for p in files if p.is_file()}


def _needs_external_data(model: Any, settings: ExportSettings) -> bool:
    """Whether the weights go to a file of their own (protobuf cannot hold 2 GB in one message)."""
    weights = sum(t.ByteSize() for t in model.graph.initializer)
    large = weights >= _PROTOBUF_LIMIT - (64 << 20)  # leave room for the graph itself
    if large and settings.external_data == "never":
        raise ExportError(
            f"the graph's weights are {weights >> 20} MB, past protobuf's 2 GB limit; export "
            "with external_data = 'auto' (the default) or 'always'"
        )
    return large or settings.external_data == "always"


def export_onnx(
    dinov2_dir: Path, out_dir: Path, settings: ExportSettings, head_ref: str | Path = "default"
) -> Path:
    """Export the fused graph (fp32) to out_dir; returns the .onnx path, manifest.json beside it."""
    import onnx
    import torch

    head = load_head(head_ref)
    s, c = settings.input_size, head.config.embed_dim
    n, k = patch_count(s), fused_k(s, settings.keep_ratio)
    module = build_fused(dinov2_dir, head, k)
    inputs, outputs = tensor_specs(s, n, c, k)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / artefact_name(k)
    data = path.with_name(path.name + ".data")
    example = (torch.zeros(1, 3, s, s), torch.zeros(1, n, c))
    dynamic = {name: {0: BATCH} for name in (*INPUTS, *OUTPUTS)}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as tmp:
        raw, staged = Path(tmp) / "raw" / path.name, Path(tmp) / path.name
        raw.parent.mkdir()
        with torch.no_grad():
            torch.onnx.export(
                module, example, str(raw), input_names=list(INPUTS), output_names=list(OUTPUTS),
                dynamic_axes=dynamic, opset_version=settings.opset, dynamo=False,
            )  # fmt: skip
        model = onnx.load(str(raw))  # with any external tensors torch wrote
        external = _needs_external_data(model, settings)
        _pin_shapes(model, outputs)
        model.doc_string = f"DINOv2 + SETS top-{k} + TETG head, {s}px, fused by vau-export"
        onnx.save_model(
            model, str(staged), save_as_external_data=external, all_tensors_to_one_file=True,
            location=data.name, size_threshold=1024,
        )  # fmt: skip
        onnx.checker.check_model(str(staged))  # by path: works past 2 GB
        # weights first, graph second, manifest last: a reader never pairs new with old
        if external:
            staged.with_name(data.name).replace(data)
        else:
            data.unlink(missing_ok=True)
        staged.replace(path)
    manifest = ArtefactManifest(
        artefact=path.name, sha256=sha256_file(path), size=path.stat().st_size,
        opset=settings.opset, input_size=s, keep_ratio=settings.keep_ratio, k=k, patches=n,
        embed_dim=c, inputs=inputs, outputs=outputs, device=settings.device,
        sources=_sources(dinov2_dir, head_ref), versions=versions(),
        **external_fields(data if external else None),
        notes=["keyframe: pass the frame's own mean patch token as prev_patches ('distinct')"],
    )  # fmt: skip
    write_manifest(manifest, out_dir / MANIFEST)
    return path
