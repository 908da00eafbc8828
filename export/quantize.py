"""`vau-export quantize`: ONNX Runtime int8 of a fused graph, dynamic or static (real frames).

Only the encoder's weight MatMuls (q/k/v/o projections and the MLP) are quantised, per channel. Kept
in fp32, measured as necessary: the attention's activation-by-activation MatMuls (QK^T and AV),
the TETG head's Gemms and everything after the last encoder block (final LayerNorm, SETS, head) —
the bundled head turns small CLS errors into large score changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vau.edge.types import F32
from vau.export.manifest import check_artefact, external_fields, sha256_file, write_manifest
from vau.export.settings import ExportError

Mode = Literal["dynamic", "static"]
# the weight-bearing MatMuls of each transformer block, as torch.onnx names them
_WEIGHT_MATMUL = re.compile(r"/backbone/encoder/layer\.\d+/(attention/\w+_proj|mlp/fc\d)/MatMul$")


def weight_matmuls(model: Any) -> tuple[list[str], list[str]]:
    """(MatMul nodes to quantise, MatMul/Gemm nodes kept in fp32)."""
    quantise: list[str] = []
    keep: list[str] = []
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            (quantise if _WEIGHT_MATMUL.search(node.name) else keep).append(node.name)
    if not quantise:
        raise ExportError("no encoder weight MatMuls found; is this a `vau-export onnx` graph?")
    return quantise, keep


def stream_feeds(fp32_model: Path, frames: F32) -> Iterator[dict[str, F32]]:
    """Calibration feeds as the graph sees them at run time: real frames (T, 3, S, S) as a stream,
    each with the previous frame's patches from the fp32 graph (zeros for the first, a keyframe)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(fp32_model), providers=["CPUExecutionProvider"])
    if len(session.get_inputs()) == 1:  # an encoder-only graph: frames are all it takes
        for image in frames:
            yield {"pixel_values": np.ascontiguousarray(image[None], dtype=np.float32)}
        return
    shape = session.get_inputs()[1].shape[1:]
    prev = np.zeros((1, *shape), dtype=np.float32)
    for image in frames:
        feed = {"pixel_values": np.ascontiguousarray(image[None], dtype=np.float32),
                "prev_patches": prev}  # fmt: skip
        prev = session.run(["patches"], feed)[0]
        yield feed


class FrameReader:
    """ONNX Runtime's CalibrationDataReader over `stream_feeds`."""

    def __init__(self, fp32_model: Path, frames: F32) -> None:
        self._feeds = stream_feeds(fp32_model, frames)

    def get_next(self) -> dict[str, F32] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # onnxruntime calls it on some versions
        pass


def quantized_name(model: Path, mode: Mode) -> Path:
    return model.with_name(f"{model.stem}-int8-{mode}.onnx")


def quantize(model: Path, mode: Mode, calib: F32 | None = None) -> Path:
    """Write `<stem>-int8-<mode>.onnx` (+ `.json` manifest) next to `model`; returns its path."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    source = check_artefact(model)
    if source.precision != "fp32":
        raise ExportError(f"{model.name} is already {source.precision}; quantise the fp32 export")
    out = quantized_name(model, mode)
    nodes, kept = weight_matmuls(onnx.load(str(model), load_external_data=False))
    external = bool(source.external_data)  # a graph past 2 GB: keep the weights beside it
    if mode == "dynamic":
        quantize_dynamic(
            model, out, per_channel=True, weight_type=QuantType.QInt8, nodes_to_quantize=nodes,
            op_types_to_quantize=["MatMul"], use_external_data_format=external,
        )  # fmt: skip
    else:
        if calib is None or len(calib) == 0:
            raise ExportError("static quantisation needs calibration frames (--calib-frames N)")
        quantize_static(
            model, out, FrameReader(model, calib), quant_format=QuantFormat.QDQ,
            per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QInt8,
            nodes_to_quantize=nodes, op_types_to_quantize=["MatMul"],
            extra_options={"ActivationSymmetric": True}, use_external_data_format=external,
        )  # fmt: skip
    note = (
        f"int8 {mode}: {len(nodes)} weight MatMuls quantised per channel; fp32 kept: "
        + ", ".join(kept)
    )
    manifest = source.model_copy(
        update={
            "artefact": out.name, "sha256": sha256_file(out), "size": out.stat().st_size,
            "precision": "int8", "quantization": mode, "notes": [*source.notes, note],
            **external_fields(out.with_name(out.name + ".data") if external else None),
        }
    )  # fmt: skip
    write_manifest(manifest, out.with_suffix(".json"))
    return out
