"""N explanations in flight, text-only where the server refuses prompt embeddings, and a cloud
with the `openai` backend that never imports torch. The LLM server is the scripted stand-in of
support_openai.py (it answers slowly on purpose to show requests overlap, and refuses prompt
embeddings the way vLLM without --enable-prompt-embeds does); the real vLLM runs in
test_explain_vllm.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from prometheus_client import CollectorRegistry
from support_explain import PRIOR, event_records
from support_openai import chat_ok, stub_server
from test_explain_service import RecordingNotifier, _run_until

from vau.cloud.explain.evidence import EventEvidence, FrameEvidence
from vau.cloud.explain.explainer import Explainer
from vau.cloud.explain.llm import LlmRequestError, build_llm
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.projector import FrameTokenizer
from vau.cloud.explain.service import ExplainerService
from vau.cloud.explain.settings import ExplainSettings
from vau.cloud.settings import LimitSettings
from vau.cloud.storage.factory import open_storage
from vau.cloud.storage.sqlite_ingest import SqliteIngestLog

TITLE, SUMMARY = "Activity in the lower left", "The score peaked at 0.92 in the lower left."


def _replies(delay_s: float) -> Any:
    def reply(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "/completions" and "prompt_embeds" in body:
            msg = "You must set `--enable-prompt-embeds` to input `prompt_embeds`."
            return 400, {"error": {"message": msg, "type": "BadRequestError", "code": 400}}
        prefill = body["messages"][-1]["content"]
        return chat_ok(SUMMARY if "summary" in prefill else TITLE, delay_s)(path, body)

    return reply


def _explain_events(tmp_path: Path, concurrency: int, events: int) -> tuple[int, float, Any]:
    """(most requests the server had at once, seconds, service) for `events` ended events."""
    data = tmp_path / f"data-{concurrency}"
    records = [r for i in range(events) for r in event_records(f"ev-{i}", 1 + 20 * i)]
    SqliteIngestLog(data, retention_s=86400).commit(records, time.time())
    with stub_server(_replies(0.4)) as stub:
        o = {"base_url": stub.base_url, "retry_backoff_s": 0.0}
        s = ExplainSettings(backend="openai", concurrency=concurrency, poll_s=0.05, openai=o)
        notifier = RecordingNotifier()
        storage = open_storage(None, data, 86_400)
        service = ExplainerService(
            s, storage, notifier, CollectorRegistry(), limits=LimitSettings()
        )
        began = time.monotonic()
        asyncio.run(_run_until(service, notifier, events))
        seconds = time.monotonic() - began
    assert sorted(e for _, _, e, _ in notifier.explanations) == [f"ev-{i}" for i in range(events)]
    return stub.max_active, seconds, service


def test_service_when_concurrency_4_then_four_requests_in_flight_never_more(
    tmp_path: Path,
) -> None:
    most, _, service = _explain_events(tmp_path, 4, 6)
    assert most == 4
    assert service.metrics.value("vau_cloud_explain_concurrency") == 4
    assert service.metrics.value("vau_cloud_explain_in_flight") == 0


def test_service_when_concurrency_1_then_one_request_at_a_time(tmp_path: Path) -> None:
    most, _, _ = _explain_events(tmp_path, 1, 3)
    assert most == 1


def _evidence() -> EventEvidence:
    frames = (FrameEvidence(3.0, 0.8, (176, 177, 192), (16, 16)),)
    return EventEvidence("cam-0", "ev-1", 2.0, 6.0, 0.92, 4.0, PRIOR, frames, 0.1)


def _visual_explainer(url: str, mode: str, metrics: ExplainMetrics) -> Explainer:
    o = {"base_url": url, "prompt_embeds": mode, "retry_backoff_s": 0.0}
    # the default model, smollm2-135m-instruct, is a local asset: its embeddings are here
    s = ExplainSettings(backend="openai", openai=o, max_new_tokens=16)
    llm = build_llm(s, metrics.llm)
    torch.manual_seed(0)
    return Explainer(s, llm, metrics, FrameTokenizer("linear", 384, llm.hidden_size))


def test_explainer_when_server_refuses_prompt_embeds_then_text_only_and_remembered() -> None:
    metrics = ExplainMetrics(CollectorRegistry())
    tokens = [torch.randn(10, 384).numpy()]
    with stub_server(_replies(0.0)) as stub:
        explainer = _visual_explainer(stub.base_url, "auto", metrics)
        first = explainer.explain(_evidence(), tokens).explanation
        second = explainer.explain(_evidence(), tokens).explanation
    assert not first.visual_tokens and first.projector is None and not first.fallback
    assert not second.visual_tokens
    assert stub.paths().count("/completions") == 1  # the refusal is remembered
    assert "<video>" not in str(stub.requests[-1][1]["messages"])  # the text-only prompt
    labels = {"backend": "openai", "kind": "embeds_refused"}
    assert metrics.value("vau_cloud_llm_errors_total", labels) == 2  # each went text-only


def test_explainer_when_prompt_embeds_on_and_refused_then_error_names_the_flag() -> None:
    metrics = ExplainMetrics(CollectorRegistry())
    with stub_server(_replies(0.0)) as stub:
        explainer = _visual_explainer(stub.base_url, "on", metrics)
        with pytest.raises(LlmRequestError, match="enable-prompt-embeds"):
            explainer.llm.generate_embeds(
                [{"role": "user", "content": "<video>"}], torch.zeros(2, 576), 4
            )


_NO_TORCH = textwrap.dedent(
    """
    import asyncio, sys
    from vau.cloud.settings import load_settings
    from vau.cloud.server import create_server
    from vau.cloud.explain.evidence import EventEvidence, FrameEvidence

    async def main():
        cloud, _ = create_server(load_settings())
        await cloud.start()
        frames = (FrameEvidence(3.0, 0.8, (176, 177, 192), (16, 16)),)
        ev = EventEvidence("cam-0", "ev-1", 2.0, 6.0, 0.92, 4.0, "", frames, 0.1)
        result = await asyncio.to_thread(cloud.explainer.explainer.explain, ev)
        await cloud.shutdown(0)
        print(result.outcome, "torch" in sys.modules, "transformers" in sys.modules)

    asyncio.run(main())
    """
)


def test_cloud_when_openai_backend_then_serves_and_explains_without_importing_torch(
    tmp_path: Path,
) -> None:
    with stub_server(_replies(0.0)) as stub:
        env = os.environ | {
            "VAU_CLOUD__LISTEN": "127.0.0.1:0",
            "VAU_CLOUD__DATA_DIR": str(tmp_path / "cloud"),
            "VAU_CLOUD__EXPLAIN__BACKEND": "openai",
            "VAU_CLOUD__EXPLAIN__OPENAI__BASE_URL": stub.base_url,
            # the served model is SmolLM2, for which a projector is bundled: visual tokens need
            # torch (the projector); text-only, the cloud must not load it
            "VAU_CLOUD__EXPLAIN__VISUAL_TOKENS": "false",
        }
        out = subprocess.run(
            [sys.executable, "-c", _NO_TORCH],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["llm", "False", "False"], out.stdout + out.stderr[-2000:]
