"""Build the configured encoder backend."""

from __future__ import annotations

from pathlib import Path

from vau.edge.encoders.base import Encoder, EncoderError
from vau.edge.settings import EncoderSettings


def _resolve(ref: str, cache_dir: Path | None) -> Path | str:
    from vau.assets import AssetError, resolve_model

    try:
        return resolve_model(ref, cache_dir)
    except AssetError as exc:
        raise EncoderError(str(exc)) from None


def build_encoder(cfg: EncoderSettings, cache_dir: Path | None = None) -> Encoder:
    """Closed vocabulary: an unknown backend is a settings error, caught before this point.

    The pipeline runs "fused" through `analysers.FusedAnalyser`; here it is a plain encoder.
    """
    if cfg.backend == "torch":
        from vau.edge.encoders.torch_backend import TorchEncoder

        return TorchEncoder(
            _resolve(cfg.model, cache_dir), cfg.input_size, cfg.precision, cfg.threads
        )
    if cfg.backend == "onnx":
        from vau.edge.encoders.onnx_backend import OnnxEncoder

        path = Path(_resolve(cfg.onnx_model, cache_dir))
        return OnnxEncoder(path, cfg.input_size, cfg.execution_provider, cfg.precision, cfg.threads)
    if cfg.backend == "tensorrt":
        from vau.edge.encoders.tensorrt_backend import TensorRTEncoder

        if not cfg.engine:
            raise EncoderError("encoder.engine must name a TensorRT engine file for this backend")
        return TensorRTEncoder(Path(cfg.engine), cfg.input_size)
    if cfg.backend == "fused":
        from vau.edge.encoders.fused_backend import FusedEncoder

        if not cfg.fused_model:
            raise EncoderError(
                "to use a fused graph as a plain encoder set encoder.fused_model to its file "
                "(a `vau-export onnx` or `quantize` output)"
            )
        return FusedEncoder(Path(cfg.fused_model), cfg.input_size, cfg.threads)
    raise EncoderError(f"unknown encoder backend {cfg.backend!r}; use torch, onnx or tensorrt")
