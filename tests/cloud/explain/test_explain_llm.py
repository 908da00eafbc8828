"""The real SmolLM2-135M: one explanation end to end, and visual embeddings via inputs_embeds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from support_explain import PRIOR

from vau.cloud.explain.evidence import EventEvidence, FrameEvidence
from vau.cloud.explain.explainer import Explainer
from vau.cloud.explain.llm_transformers import TransformersLlm
from vau.cloud.explain.projector import FrameTokenizer
from vau.cloud.explain.prompts import STOP, TITLE_PREFILL, VIDEO
from vau.cloud.explain.schema import Explanation
from vau.cloud.explain.settings import CameraContext, ExplainSettings


@pytest.fixture(scope="module")
def llm() -> Iterator[TransformersLlm]:
    try:
        yield TransformersLlm("smollm2-135m-instruct")
    except (OSError, ValueError) as exc:  # the asset is not installed (`vau-models pull`)
        pytest.skip(f"SmolLM2 asset missing: {exc}")


def test_explainer_when_real_smollm2_then_schema_valid_explanation(llm: TransformersLlm) -> None:
    s = ExplainSettings(
        max_new_tokens=32, cameras={"cam-0": CameraContext(normal="A quiet campus path.")}
    )
    frames = (FrameEvidence(3.0, 0.8, (176, 177, 192), (16, 16)),)
    ev = EventEvidence("cam-0", "ev-1", 2.0, 6.0, 0.92, 4.0, PRIOR, frames, 0.1)
    result = Explainer(s, llm).explain(ev)
    e = Explanation.model_validate(result.explanation.fields())  # round-trips the schema
    assert e.anomaly and e.category == "other" and e.threat_level == 2 and e.confidence == 0.92
    assert (e.start, e.end) == (2.0, 6.0) and not e.visual_tokens and e.projector is None
    assert e.llm == "smollm2-135m-instruct" and result.outcome in ("llm", "retry", "fallback")


def test_llm_when_projected_frame_tokens_then_accepted_via_inputs_embeds(
    llm: TransformersLlm,
) -> None:
    torch.manual_seed(0)
    # randomly initialised, test-only: checks the plumbing, says nothing about quality
    tok = FrameTokenizer("mlp2x_gelu", 384, llm.hidden_size)
    with torch.inference_mode():
        visual = tok([torch.randn(20, 384), torch.randn(12, 384)], llm.embed_text("What?"))
    assert visual.shape == (4, llm.hidden_size)
    msgs = [{"role": "user", "content": f"Frames: {VIDEO}\nDescribe them."}]
    out = llm.generate_embeds(msgs, visual, 6, prefill=TITLE_PREFILL, stop=STOP)
    assert isinstance(out, str)
    with pytest.raises(ValueError, match="placeholder"):
        llm.generate_embeds([{"role": "user", "content": "no video"}], visual, 2)
