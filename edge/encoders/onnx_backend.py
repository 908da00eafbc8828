"""ONNX Runtime encoder: CPU, CUDA or TensorRT execution provider, chosen by configuration.

The graph is `vau-models`' `dinov2-s14-onnx` (or one like it): `pixel_values` in,
`last_hidden_state` and `inner_hidden_state` (`encoders.base.INNER_FROM_END`) out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vau.edge.encoders.base import Encoded, EncoderError, split_hidden
from vau.edge.types import F32

OUTPUTS = ("last_hidden_state", "inner_hidden_state")
_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def _provider_options(provider: str, precision: str, cache_dir: Path) -> list[dict[str, Any]]:
    if provider != "tensorrt":
        return [{} for _ in _PROVIDERS[provider]]
    trt = {
        "trt_fp16_enable": precision in ("fp16", "int8"),
        "trt_int8_enable": precision == "int8",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": True,
    }
    return [trt, {}, {}]


def session_options(threads: int) -> Any:
    """All graph optimisations on; `threads` intra-op threads (0 lets ONNX Runtime decide)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    # Idle intra-op threads sleep instead of spinning after each run: on a few cores their spin
    # took the CPU from the normality stage and the sources' reader threads (docs/normality.md).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OnnxEncoder:
    name = "onnx"

    def __init__(
        self, path: Path, input_size: int, provider: str = "cpu", precision: str = "fp32",
        threads: int = 0,
    ) -> None:  # fmt: skip
        import onnxruntime as ort

        if not path.is_file():
            raise EncoderError(
                f"ONNX model {path} not found; run `vau-models pull` or fix the path"
            )
        wanted = _PROVIDERS[provider]
        if wanted[0] not in ort.get_available_providers():
            raise EncoderError(
                f"ONNX Runtime here has no {wanted[0]} (available: "
                f"{', '.join(ort.get_available_providers())}); install vau-edge[gpu] on a GPU host "
                "or set encoder.execution_provider = 'cpu'"
            )
        opts = session_options(threads)
        try:
            self._session = ort.InferenceSession(
                str(path), opts, providers=wanted,
                provider_options=_provider_options(provider, precision, path.parent),
            )  # fmt: skip
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EncoderError(f"cannot load ONNX model {path}: {exc}") from None
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        self._batch_fixed = isinstance(inp.shape[0], int)
        side = inp.shape[-1]
        if isinstance(side, int) and side != input_size:
            raise EncoderError(
                f"{path.name} takes {side}x{side} input but encoder.input_size is {input_size}; "
                f"set encoder.input_size = {side} or export the model at {input_size}"
            )
        names = [o.name for o in self._session.get_outputs()]
        if not set(OUTPUTS) <= set(names):
            raise EncoderError(
                f"{path.name} has outputs {names}, not {list(OUTPUTS)} (the normality model reads "
                "an inner block's tokens): run `vau-models pull` to rebuild it"
            )
        self.input_size = input_size
        self.embed_dim = int(self._session.get_outputs()[0].shape[-1])

    def encode(self, batch: F32) -> Encoded:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if self._batch_fixed and x.shape[0] != 1:
            parts = [self._session.run(OUTPUTS, {self._input: x[i : i + 1]}) for i in range(len(x))]
            return split_hidden(*(np.concatenate(p) for p in zip(*parts, strict=True)))
        last, inner = self._session.run(OUTPUTS, {self._input: x})
        return split_hidden(last, inner)

    def close(self) -> None:
        del self._session
