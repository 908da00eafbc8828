"""One serialized TensorRT engine: named host arrays in, named host arrays out (TensorRT 10 API).

`tensorrt` and CUDA are imported only when an engine is opened, so CPU hosts never need them.
Device buffers are torch CUDA tensors, which saves a second CUDA binding package. Input shapes
are set per call (dynamic batch within the engine's optimisation profile).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vau.edge.encoders.base import EncoderError
from vau.edge.types import F32


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError:
        raise EncoderError(
            "the tensorrt backend needs TensorRT: on Jetson it ships with JetPack; on x86 run "
            "`pip install vau-edge[gpu]`. Elsewhere set encoder.backend = 'onnx'"
        ) from None
    return trt


class TrtEngine:
    def __init__(self, path: Path) -> None:
        trt = import_tensorrt()
        import torch

        if not torch.cuda.is_available():
            raise EncoderError("the tensorrt backend needs a CUDA GPU; none is visible here")
        if not path.is_file():
            raise EncoderError(f"TensorRT engine {path} not found; build it with vau-export")
        self._torch, self._trt = torch, trt
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise EncoderError(
                f"TensorRT could not load {path}: built by another TensorRT version or for "
                "another GPU; rebuild it on this device"
            )
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        self._dtypes = {
            trt.float32: torch.float32, trt.float16: torch.float16,
            trt.int32: torch.int32, trt.int64: torch.int64, trt.int8: torch.int8,
        }  # fmt: skip

    def names(self) -> list[str]:
        """Every input and output tensor's name."""
        return [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]

    def shape(self, name: str) -> tuple[int, ...]:
        """A tensor's shape as built; -1 marks a dynamic dimension."""
        return tuple(int(d) for d in self._engine.get_tensor_shape(name))

    def _dtype(self, name: str) -> Any:
        return self._dtypes[self._engine.get_tensor_dtype(name)]

    def run(self, feeds: Mapping[str, F32], outputs: Sequence[str]) -> list[Any]:
        torch, ctx = self._torch, self._context
        held = []
        for name, array in feeds.items():
            x = torch.from_numpy(np.ascontiguousarray(array)).to("cuda", self._dtype(name))
            ctx.set_input_shape(name, tuple(x.shape))
            ctx.set_tensor_address(name, x.data_ptr())
            held.append(x)
        results = []
        for name in outputs:
            out = torch.empty(tuple(ctx.get_tensor_shape(name)), dtype=self._dtype(name),
                              device="cuda")  # fmt: skip
            ctx.set_tensor_address(name, out.data_ptr())
            results.append(out)
        with torch.cuda.stream(self._stream):
            if not ctx.execute_async_v3(self._stream.cuda_stream):
                raise EncoderError("TensorRT execution failed; see the TensorRT log above")
        self._stream.synchronize()
        return [r.cpu().numpy() for r in results]

    def close(self) -> None:
        self._context = None
        self._engine = None
