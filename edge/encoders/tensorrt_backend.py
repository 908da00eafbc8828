"""TensorRT encoder for Jetson and NVIDIA GPUs: an encoder-only engine (`trt_engine.TrtEngine`).

The engine takes `pixel_values` (B, 3, S, S) and returns `last_hidden_state` and
`inner_hidden_state` (B, 1 + N, C), as the ONNX encoder it is built from does. Fused engines
(DINOv2 + SETS + head) run through `fused_backend` instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vau.edge.encoders.base import Encoded, EncoderError, split_hidden
from vau.edge.encoders.onnx_backend import OUTPUTS
from vau.edge.encoders.trt_engine import TrtEngine
from vau.edge.types import F32

INPUT = "pixel_values"
OUTPUT, INNER = OUTPUTS  # the ONNX encoder's, which the engine is built from


class TensorRTEncoder:
    name = "tensorrt"

    def __init__(self, engine_path: Path, input_size: int) -> None:
        self._engine = TrtEngine(engine_path)
        if INNER not in self._engine.names():
            raise EncoderError(
                f"engine {engine_path.name} has no {INNER} output (built from an older ONNX "
                "encoder); run `vau-models pull`, then rebuild it with `vau-export tensorrt`"
            )
        side = self._engine.shape(INPUT)[-1]
        if side not in (-1, input_size):
            raise EncoderError(
                f"engine {engine_path.name} takes {side}px input, encoder.input_size is "
                f"{input_size}; rebuild the engine or change the setting"
            )
        self.input_size = input_size
        self.embed_dim = self._engine.shape(OUTPUT)[-1]

    def encode(self, batch: F32) -> Encoded:
        hidden, inner = self._engine.run({INPUT: batch}, list(OUTPUTS))
        return split_hidden(np.asarray(hidden, np.float32), np.asarray(inner, np.float32))

    def close(self) -> None:
        self._engine.close()
