"""TensorRT engine encoder for Jetson and NVIDIA GPUs (TensorRT 10 tensor-address API).

`tensorrt` and CUDA are imported only when this backend is built, so CPU hosts never need them.
Device buffers are torch CUDA tensors, which saves a second CUDA binding package. The engine takes
`pixel_values` (B, 3, S, S) and returns `last_hidden_state` (B, 1 + N, C), as the ONNX encoder does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vau.edge.encoders.base import EncoderError, split_hidden
from vau.edge.types import F32

INPUT = "pixel_values"
OUTPUT = "last_hidden_state"


def _import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError:
        raise EncoderError(
            "the tensorrt backend needs TensorRT: on Jetson it ships with JetPack; on x86 run "
            "`pip install vau-edge[gpu]`. Elsewhere set encoder.backend = 'onnx'"
        ) from None
    return trt


class TensorRTEncoder:
    name = "tensorrt"

    def __init__(self, engine_path: Path, input_size: int) -> None:
        trt = _import_tensorrt()
        import torch

        if not torch.cuda.is_available():
            raise EncoderError("the tensorrt backend needs a CUDA GPU; none is visible here")
        if not engine_path.is_file():
            raise EncoderError(f"TensorRT engine {engine_path} not found; build it with vau-export")
        self._torch = torch
        self._trt = trt
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if engine is None:
            raise EncoderError(
                f"TensorRT could not load {engine_path}: built by another TensorRT version or "
                "for another GPU; rebuild it on this device"
            )
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        shape = tuple(engine.get_tensor_shape(INPUT))
        if shape[-1] not in (-1, input_size):
            raise EncoderError(
                f"engine {engine_path.name} takes {shape[-1]}px input, encoder.input_size is "
                f"{input_size}; rebuild the engine or change the setting"
            )
        self.input_size = input_size
        self.embed_dim = int(engine.get_tensor_shape(OUTPUT)[-1])

    def _torch_dtype(self, name: str) -> Any:
        trt, torch = self._trt, self._torch
        table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32}
        return table[self._engine.get_tensor_dtype(name)]

    def encode(self, batch: F32) -> tuple[F32, F32]:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(batch)).to("cuda", self._torch_dtype(INPUT))
        self._context.set_input_shape(INPUT, tuple(x.shape))
        out_shape = tuple(self._context.get_tensor_shape(OUTPUT))
        out = torch.empty(out_shape, dtype=self._torch_dtype(OUTPUT), device="cuda")
        self._context.set_tensor_address(INPUT, x.data_ptr())
        self._context.set_tensor_address(OUTPUT, out.data_ptr())
        with torch.cuda.stream(self._stream):
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise EncoderError("TensorRT execution failed; see the TensorRT log above")
        self._stream.synchronize()
        return split_hidden(out.float().cpu().numpy())

    def close(self) -> None:
        self._context = None
        self._engine = None
