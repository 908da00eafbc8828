"""`vau-export quantize`: ONNX Runtime int8 of a fused graph, dynamic or static (real frames).

Only the encoder's weight MatMuls (q/k/v/o projections and the MLP) are quantised, per channel. Kept
in fp32, measured as necessary: the attention's activation-by-activation MatMuls (QK^T and AV),
the TETG head's Gemms and everything after the last encoder block (final LayerNorm, SETS, head) —
the bundled head turns small CLS errors into large score changes.

Also kept in fp32 by default (`sensitive=False` quantises them too): the three sub-blocks whose
quantisation alone moves the CLS most, measured one sub-block at a time on 20 vtest.avi frames of
DINOv2-S/14 (CLS L2 error; all 24 together: 1.26): the last block's attention (0.54), the first
block's MLP (0.49) and the second-to-last block's MLP (0.42). On 40 frames, keeping these 8 of 72
MatMuls costs 4 ms/frame (30 -> 34 ms) and halves the score error (max 0.46 -> 0.14, mean 0.056 ->
0.030), CLS cosine 0.9989 -> 0.9994, index overlap 0.904 -> 0.922.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vau.edge.encoders.artefact import check_artefact, external_fields, sha256_file, write_manifest
from vau.edge.types import F32
from vau.export.settings import ExportError

Mode = Literal["dynamic", "static"]
# the weight-bearing MatMuls of each transformer block, as torch.onnx names them
_WEIGHT_MATMUL = re.compile(r"/backbone/encoder/layer\.\d+/(attention/\w+_proj|mlp/fc\d)/MatMul$")


_LAYER = re.compile(r"/layer\.(\d+)/")


def _layer(name: str) -> int:
    found = _LAYER.search(name)
    if found is None:
        raise ExportError(f"node {name} is not in an encoder block")
    return int(found.group(1))


def _sensitive(name: str, last: int) -> bool:
    """The last block's attention, the first block's MLP, the second-to-last block's MLP."""
    layer = _layer(name)
    return (layer == last and "/attention/" in name) or (layer in (0, last - 1) and "/mlp/" in name)


def weight_matmuls(model: Any, sensitive: bool = False) -> tuple[list[str], list[str]]:
    """(MatMul nodes to quantise, MatMul/Gemm nodes kept in fp32); `sensitive` quantises the
    sub-blocks that are otherwise kept in fp32 (see the module's docstring)."""
    weights = [n.name for n in model.graph.node
               if n.op_type == "MatMul" and _WEIGHT_MATMUL.search(n.name)]  # fmt: skip
    if not weights:
        raise ExportError("no encoder weight MatMuls found; is this a `vau-export onnx` graph?")
    last = max(_layer(n) for n in weights)
    quantise = [n for n in weights if sensitive or not _sensitive(n, last)]
    chosen = set(quantise)
    keep = [n.name for n in model.graph.node
            if n.op_type in ("MatMul", "Gemm") and n.name not in chosen]  # fmt: skip
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


def recipe(mode: Mode, sensitive: bool = False) -> str:
    """The manifest's `quantization`: the mode, and whether the sensitive sub-blocks stayed fp32."""
    return mode if sensitive else f"{mode}/sensitive-fp32"


def quantized_name(model: Path, mode: Mode) -> Path:
    return model.with_name(f"{model.stem}-int8-{mode}.onnx")


def quantize(model: Path, mode: Mode, calib: F32 | None = None, sensitive: bool = False) -> Path:
    """Write `<stem>-int8-<mode>.onnx` (+ `.json` manifest) next to `model`; returns its path."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    source = check_artefact(model)
    if source.precision != "fp32":
        raise ExportError(f"{model.name} is already {source.precision}; quantise the fp32 export")
    out = quantized_name(model, mode)
    nodes, kept = weight_matmuls(onnx.load(str(model), load_external_data=False), sensitive)
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
            "precision": "int8", "quantization": recipe(mode, sensitive),
            "notes": [*source.notes, note],
            "sources": {**source.sources, model.name: source.sha256},  # the graph it came from
            **external_fields(out.with_name(out.name + ".data") if external else None),
        }
    )  # fmt: skip
    write_manifest(manifest, out.with_suffix(".json"))
    return out
