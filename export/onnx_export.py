"""`vau-export onnx`: the fused DINOv2 + SETS + TETG module to one ONNX file plus its manifest.

The graph is ~89 MB of fp32 weights, far below protobuf's 2 GB limit, so the weights stay inside the
file (no external data); `export_onnx` refuses to write a graph that would need external data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vau.edge.tetg import CONFIG, WEIGHTS, head_folder, load_head
from vau.export.fused import INPUTS, OUTPUTS, build_fused, fused_k, patch_count
from vau.export.manifest import (
    MANIFEST,
    ArtefactManifest,
    TensorSpec,
    sha256_file,
    write_manifest,
)
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
    example = (torch.zeros(1, 3, s, s), torch.zeros(1, n, c))
    dynamic = {name: {0: BATCH} for name in (*INPUTS, *OUTPUTS)}
    with torch.no_grad():
        torch.onnx.export(
            module, example, str(path), input_names=list(INPUTS), output_names=list(OUTPUTS),
            dynamic_axes=dynamic, opset_version=settings.opset, dynamo=False,
        )  # fmt: skip
    model = onnx.load(str(path))
    if model.ByteSize() >= _PROTOBUF_LIMIT:
        raise ExportError("the graph exceeds 2 GB; external-data export is not implemented")
    _pin_shapes(model, outputs)
    model.doc_string = f"DINOv2-S/14 + SETS top-{k} + TETG head, {s}px, fused by vau-export"
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path), save_as_external_data=False)
    manifest = ArtefactManifest(
        artefact=path.name, sha256=sha256_file(path), size=path.stat().st_size,
        opset=settings.opset, input_size=s, keep_ratio=settings.keep_ratio, k=k, patches=n,
        embed_dim=c, inputs=inputs, outputs=outputs, device=settings.device,
        sources=_sources(dinov2_dir, head_ref), versions=versions(),
        notes=["keyframe: pass the frame's own mean patch token as prev_patches ('distinct')"],
    )  # fmt: skip
    write_manifest(manifest, out_dir / MANIFEST)
    return path
