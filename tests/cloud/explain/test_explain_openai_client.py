"""The `openai` backend's failure handling, settings and wire format, against a scripted
OpenAI-compatible server on loopback (support_openai.py: a stand-in, because a real engine cannot
be made to fail on purpose; the real vLLM runs in test_explain_vllm.py)."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from support_openai import chat_ok, stub_server

from vau.cloud.explain.evidence import EventEvidence, FrameEvidence
from vau.cloud.explain.explainer import Explainer
from vau.cloud.explain.llm import LlmRequestError, LlmUnavailableError, build_llm
from vau.cloud.explain.llm_openai import OpenAiLlm
from vau.cloud.explain.metrics import ExplainMetrics
from vau.cloud.explain.settings import ExplainSettings
from vau.cloud.settings import load_settings

MSGS = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
PRIOR = "There is one of the anomaly types occurring from 2.0s to 6.0s."


def _settings(base_url: str, model: str = "served-name", **openai: Any) -> ExplainSettings:
    o = {"base_url": base_url, "retry_backoff_s": 0.0, "timeout_s": 5.0} | openai
    return ExplainSettings(backend="openai", model=model, openai=o)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_openai_backend_when_prefill_then_chat_request_continues_it() -> None:
    with stub_server(chat_ok('Lower left activity"')) as stub:
        llm = build_llm(_settings(stub.base_url))
        text = llm.generate(MSGS, 24, prefill='{"title": "', stop=('"', "\n"))
    assert text == "Lower left activity"  # cut at the stop string
    path, body, _ = stub.requests[0]
    assert path == "/chat/completions" and body["model"] == "served-name"
    assert body["messages"][-1] == {"role": "assistant", "content": '{"title": "'}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["max_tokens"] == 24 and body["temperature"] == 0.0 and body["stop"] == ['"', "\n"]


def test_openai_backend_when_server_down_then_unavailable_after_counted_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    metrics = ExplainMetrics(registry)
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    llm = build_llm(_settings(url, retries=2), metrics.llm)
    with caplog.at_level(logging.WARNING), pytest.raises(LlmUnavailableError) as err:
        llm.generate(MSGS, 8)
    assert url in str(err.value) and "3 tries" in str(err.value) and "start it" in str(err.value)
    retries = {"backend": "openai", "reason": "connect"}
    assert metrics.value("vau_cloud_llm_retries_total", retries) == 2
    labels = {"backend": "openai", "kind": "unavailable"}
    assert metrics.value("vau_cloud_llm_errors_total", labels) == 1
    assert sum("retry" in r.message for r in caplog.records) == 2


def test_openai_backend_when_503_once_then_retried_and_answered() -> None:
    calls: list[int] = []

    def flaky(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        calls.append(1)
        if len(calls) == 1:
            return 503, {"error": {"message": "overloaded"}}
        return chat_ok("fine")(path, body)

    metrics = ExplainMetrics(CollectorRegistry())
    with stub_server(flaky) as stub:
        assert build_llm(_settings(stub.base_url), metrics.llm).generate(MSGS, 8) == "fine"
    assert len(calls) == 2
    retries = {"backend": "openai", "reason": "http_503"}
    assert metrics.value("vau_cloud_llm_retries_total", retries) == 1
    ok = {"backend": "openai", "result": "ok"}
    assert metrics.value("vau_cloud_llm_requests_total", ok) == 1


def test_openai_backend_when_model_unknown_then_request_error_at_once() -> None:
    def no_model(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 404, {"error": {"message": "The model `served-name` does not exist."}}

    with stub_server(no_model) as stub, pytest.raises(LlmRequestError) as err:
        build_llm(_settings(stub.base_url, retries=3)).generate(MSGS, 8)
    assert len(stub.requests) == 1  # a refusal is not retried
    assert "does not exist" in str(err.value) and "explain.model" in str(err.value)
    assert err.value.status == 404


def test_openai_backend_when_api_key_then_bearer_header_and_secret_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAU_CLOUD__EXPLAIN__OPENAI__API_KEY", "sk-test-123")
    with stub_server(chat_ok("ok")) as stub:
        monkeypatch.setenv("VAU_CLOUD__EXPLAIN__OPENAI__BASE_URL", stub.base_url)
        monkeypatch.setenv("VAU_CLOUD__EXPLAIN__BACKEND", "openai")
        settings = load_settings()
        llm = build_llm(settings.explain)
        assert isinstance(llm, OpenAiLlm)
        llm.generate(MSGS, 8)
    assert stub.requests[0][2]["Authorization"] == "Bearer sk-test-123"
    assert "sk-test-123" not in repr(settings) and "sk-test-123" not in str(settings.explain)


def test_settings_when_concurrency_above_1_with_transformers_then_refused() -> None:
    with pytest.raises(ValueError, match="needs backend 'openai'"):
        ExplainSettings(concurrency=4)
    assert ExplainSettings(backend="openai", concurrency=4).concurrency == 4
    with pytest.raises(ValueError, match="backend"):
        ExplainSettings(backend="tgi")  # type: ignore[arg-type]


def test_explainer_when_llm_server_down_then_template_explanation_counted() -> None:
    metrics = ExplainMetrics(CollectorRegistry())
    s = _settings(f"http://127.0.0.1:{_closed_port()}/v1", retries=0)
    frames = (FrameEvidence(3.0, 0.8, (176, 177, 192), (16, 16)),)
    ev = EventEvidence("cam-0", "ev-1", 2.0, 6.0, 0.92, 4.0, PRIOR, frames, 0.1)
    result = Explainer(s, build_llm(s, metrics.llm), metrics).explain(ev)
    e = result.explanation
    assert result.outcome == "fallback" and e.fallback and not e.visual_tokens
    assert e.llm == "served-name" and "2.0" in e.title
    assert metrics.value("vau_cloud_explanations_total", {"outcome": "fallback"}) == 1
    labels = {"backend": "openai", "kind": "unavailable"}
    assert metrics.value("vau_cloud_llm_errors_total", labels) == 1  # the first try ended it


def test_openai_backend_when_model_not_served_then_start_warns_with_served_names(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with stub_server(chat_ok("ok")) as stub, caplog.at_level(logging.WARNING):
        build_llm(_settings(stub.base_url, model="typo-name"))
    assert any("'typo-name'" in r.message and "served-name" in r.message for r in caplog.records)


def test_openai_backend_when_server_down_at_start_then_warns_and_still_builds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        llm = build_llm(_settings(f"http://127.0.0.1:{_closed_port()}/v1"))
    assert isinstance(llm, OpenAiLlm)
    assert any("not usable now" in r.message for r in caplog.records)
