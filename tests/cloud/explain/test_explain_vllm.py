"""The `openai` backend against a REAL vLLM (the CPU build, `make vllm`) serving the offline
SmolLM2 folder with prompt embeddings on: explanations through the service with two in flight,
visual tokens as prompt embeddings, and the embedding plumbing checked token for token.

Skipped (with the reason) only where vLLM is not installed: `make vllm` puts it in .venv-vllm
(CI does); $VAU_VLLM_PYTHON names another interpreter that has it. A vLLM that is installed but
does not start fails the tests, with the end of its log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from prometheus_client import CollectorRegistry
from support_explain import PRIOR, event_records
from test_explain_service import RecordingNotifier, _run_until

from vau.cloud.explain.evidence import EventEvidence, FrameEvidence
from vau.cloud.explain.explainer import Explainer
from vau.cloud.explain.llm import build_llm
from vau.cloud.explain.llm_openai import OpenAiLlm
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.projector import FrameTokenizer
from vau.cloud.explain.schema import Explanation
from vau.cloud.explain.service import ExplainerService
from vau.cloud.explain.settings import ExplainSettings
from vau.cloud.explain.vllm_local import VllmServer, vllm_python
from vau.cloud.settings import LimitSettings
from vau.cloud.storage.factory import open_storage
from vau.cloud.storage.sqlite_ingest import SqliteIngestLog

MODEL = "smollm2-135m-instruct"  # the asset; also the name vLLM serves it under
SKIP = "vLLM CPU is not installed: `make vllm` (a separate .venv-vllm), or set VAU_VLLM_PYTHON"


@pytest.fixture(scope="module")
def vllm(smollm2_dir: Path) -> Iterator[VllmServer]:
    python = vllm_python()
    if python is None:
        pytest.skip(SKIP)
    server = VllmServer(python, smollm2_dir, MODEL).start(timeout_s=420)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    from vau.assets import asset_path

    return asset_path(MODEL)


def _settings(vllm: VllmServer, **kw: object) -> ExplainSettings:
    o = {"base_url": vllm.base_url, "timeout_s": 120.0}
    return ExplainSettings.model_validate({"backend": "openai", "model": MODEL, "openai": o} | kw)


def _evidence(event_id: str = "ev-1") -> EventEvidence:
    frames = (FrameEvidence(3.0, 0.8, (176, 177, 192), (16, 16)),)
    return EventEvidence("cam-0", event_id, 2.0, 6.0, 0.92, 4.0, PRIOR, frames, 0.1)


def test_service_when_real_vllm_and_concurrency_2_then_both_events_explained(
    vllm: VllmServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    ingest = SqliteIngestLog(data, retention_s=86400)
    ingest.commit(event_records("ev-1", 1) + event_records("ev-2", 20), time.time())
    registry = CollectorRegistry()
    s = _settings(vllm, concurrency=2, poll_s=0.05, max_new_tokens=32)
    storage = open_storage(None, data, 86_400)
    service = ExplainerService(s, storage, RecordingNotifier(), registry, limits=LimitSettings())
    notifier = service.notifier
    assert isinstance(notifier, RecordingNotifier)
    asyncio.run(_run_until(service, notifier, 2))
    assert sorted(e for _, _, e, _ in notifier.explanations) == ["ev-1", "ev-2"]
    for *_, fields in notifier.explanations:
        e = Explanation.model_validate(fields)
        assert e.llm == MODEL and (e.start, e.end) == (2.0, 6.0)
        # the bundled projector is SmolLM2's: its visual tokens went to vLLM as prompt embeds
        assert e.visual_tokens and e.projector == "mlp2x_gelu"
    m = service.metrics
    assert m.value("vau_cloud_llm_requests_total", {"backend": "openai", "result": "ok"}) >= 4
    assert m.value("vau_cloud_llm_requests_total", {"backend": "openai", "result": "failed"}) == 0
    assert m.value("vau_cloud_explain_concurrency") == 2
    assert m.value("vau_cloud_explain_in_flight") == 0  # all done


def test_explainer_when_visual_tokens_then_real_vllm_takes_them_as_prompt_embeds(
    vllm: VllmServer,
) -> None:
    metrics = ExplainMetrics(CollectorRegistry())
    s = _settings(vllm, max_new_tokens=24)
    llm = build_llm(s, metrics.llm)
    torch.manual_seed(0)
    # randomly initialised, test-only: checks the plumbing, says nothing about quality
    tokenizer = FrameTokenizer("mlp2x_gelu", 384, llm.hidden_size)
    tokens = [torch.randn(20, 384).numpy() for _ in range(3)]
    result = Explainer(s, llm, metrics, tokenizer).explain(_evidence(), tokens)
    e = result.explanation
    assert e.visual_tokens and e.projector == "mlp2x_gelu" and result.replies  # the LLM answered
    ok, refused = {"backend": "openai", "result": "ok"}, {"backend": "openai", "kind": "refused"}
    assert metrics.value("vau_cloud_llm_requests_total", ok) >= 2
    assert metrics.value("vau_cloud_llm_errors_total", refused) == 0


def test_prompt_embeds_when_text_sent_as_embeddings_then_same_greedy_reply_as_chat(
    vllm: VllmServer,
) -> None:
    # without a repetition penalty: vLLM cannot penalise prompt tokens it never saw as ids
    llm = build_llm(_settings(vllm, repetition_penalty=1.0))
    assert isinstance(llm, OpenAiLlm)
    system = {"role": "system", "content": "You write short security camera alerts."}
    user = "Camera cam-0.\n{}\nMost of the view changed at once from 8.5 s to 17.0 s."
    words = "Frames of the event"
    stop = ('"', "\n")
    as_text = [system, {"role": "user", "content": user.format(words)}]
    as_embeds = [system, {"role": "user", "content": user.format("<video>")}]
    chat = llm.generate(as_text, 24, prefill='{"title": "', stop=stop)
    embeds = llm.generate_embeds(
        as_embeds, llm.embed_text(words), 24, prefill='{"title": "', stop=stop
    )
    assert chat and embeds == chat
