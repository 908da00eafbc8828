"""Which projector weights the settings choose, without importing torch (a cloud on a served LLM
loads torch only when visual tokens are really on).

`explain.projector_weights` when set (a file that does not fit is refused loudly when it loads);
else the bundled one when its provenance says it was trained for the configured LLM; else none
(text only, logged once at start)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vau.cloud.explain.llm import LlmBackend
    from vau.cloud.explain.projector import FrameTokenizer

log = logging.getLogger(__name__)
FORMAT = "vau-projector-1"
BUNDLED = Path(__file__).parent / "projectors" / "default.safetensors"


def provenance_path(weights: Path) -> Path:
    """The JSON beside a projector file: what it fits and how it was trained."""
    return weights.with_name(weights.name + ".json")


def chosen_weights(
    weights: Path | None, enabled: bool, llm: str, bundled: Path = BUNDLED
) -> Path | None:
    """The weights to load for LLM `llm` (its id: asking a served LLM its width costs a load)."""
    if not enabled:
        return None
    if weights is not None:
        return weights
    info = provenance_path(bundled)
    if not (bundled.is_file() and info.is_file()):
        return None
    meta = json.loads(info.read_text("utf-8"))
    if meta.get("llm") != llm:
        log.info(
            "visual tokens off: the bundled projector was trained for %r, the LLM is %r; "
            "train one for it (vau-cloud train-projector) and set explain.projector_weights",
            meta.get("llm"),
            llm,
        )
        return None
    return bundled


def configured_tokenizer(
    weights: Path | None, enabled: bool, llm: LlmBackend
) -> FrameTokenizer | None:
    """The chosen projector loaded for `llm` (torch is imported only when there is one)."""
    chosen = chosen_weights(weights, enabled, llm.model_id)
    if chosen is None:
        return None
    from vau.cloud.explain.projector import load_frame_tokenizer

    return load_frame_tokenizer(chosen, llm.hidden_size, llm.model_id)
