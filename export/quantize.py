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


class FrameReader:
    """CalibrationDataReader over real frames, fed as a stream (prev = the fp32 graph's patches)."""

    def __init__(self, fp32_model: Path, batches: F32) -> None:
        import onnxruntime as ort

        self._session = ort.InferenceSession(str(fp32_model), providers=["CPUExecutionProvider"])
        self._feeds = self._stream(batches)

    def _stream(self, batches: F32) -> Iterator[dict[str, F32]]:
        prev: F32 | None = None
        for image in batches:
            x = image[None]
            if prev is None:
                prev = np.zeros((1, *self._session.get_inputs()[1].shape[1:]), dtype=np.float32)
            feed = {"pixel_values": x, "prev_patches": prev}
            prev = self._session.run(["patches"], feed)[0]
            yield feed

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
