"""Reference encoder: transformers' Dinov2Model in PyTorch (eager)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vau.edge.encoders.base import Encoded, EncoderError, inner_index, split_hidden
from vau.edge.types import F32


class TorchEncoder:
    name = "torch"

    def __init__(
        self, model_ref: str | Path, input_size: int, precision: str = "fp32", threads: int = 0
    ) -> None:
        import torch
        from transformers import Dinov2Model
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self._device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            model: Any = Dinov2Model.from_pretrained(str(model_ref))
        except (OSError, ValueError) as exc:
            raise EncoderError(
                f"cannot load the DINOv2 model from {model_ref!s}: {exc}. Run `vau-models pull` "
                "or set encoder.model to a transformers folder or hub id"
            ) from None
        model.eval().to(self._device)
        self._dtype = torch.float32
        if precision == "fp16":
            if self._device.type != "cuda":
                raise EncoderError("precision fp16 with the torch backend needs a CUDA GPU")
            model = model.half()
            self._dtype = torch.float16
        elif precision == "int8":
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        self._model = model
        self.input_size = input_size
        self.embed_dim = int(model.config.hidden_size)
        self._inner = inner_index(int(model.config.num_hidden_layers))

    def encode(self, batch: F32) -> Encoded:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self._device, self._dtype)
            out = self._model(pixel_values=x, output_hidden_states=True)
            inner = self._model.layernorm(out.hidden_states[self._inner])
            return split_hidden(
                out.last_hidden_state.float().cpu().numpy(), inner.float().cpu().numpy()
            )

    def close(self) -> None:
        self._model = None
