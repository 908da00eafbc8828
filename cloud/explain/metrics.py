"""Prometheus metrics of the explainer, registered on the cloud's registry (`CloudMetrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SECONDS = (0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0)
OUTCOMES = ("llm", "retry", "fallback", "error", "cooldown")


class LlmMetrics:
    """Every LLM request, retry and failure, by backend (`explain.backend`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "vau_cloud_llm_requests_total",
            "LLM server requests by backend and result: 'ok', or 'failed' (gave up after the "
            "retries, or refused).",
            ["backend", "result"],
            registry=registry,
        )
        self.retries = Counter(
            "vau_cloud_llm_retries_total",
            "LLM server requests retried after a transient failure, by reason "
            "('connect', 'timeout', 'http_429', 'http_503', ...).",
            ["backend", "reason"],
            registry=registry,
        )
        self.errors = Counter(
            "vau_cloud_llm_errors_total",
            "LLM calls that failed, by kind: 'unavailable', 'refused', 'embeds_refused' (the "
            "server takes no prompt embeddings: text-only), 'reply' (not a completion).",
            ["backend", "kind"],
            registry=registry,
        )
        self.generations = Counter(
            "vau_cloud_llm_generations_total",
            "Generations of the in-process model by decoding: 'constrained' (held to the "
            "reply's JSON schema, explain.constrained) or 'free'.",
            ["backend", "decoding"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "vau_cloud_llm_request_seconds",
            "Wall time of one successful LLM server request (one generation).",
            ["backend"],
            buckets=_SECONDS,
            registry=registry,
        )


class ExplainMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.llm = LlmMetrics(registry)
        self.in_flight = Gauge(
            "vau_cloud_explain_in_flight",
            "Explanations being generated now (at most explain.concurrency).",
            registry=registry,
        )
        self.concurrency = Gauge(
            "vau_cloud_explain_concurrency",
            "The bound on explanations in flight (explain.concurrency).",
            registry=registry,
        )
        self.explanations = Counter(
            "vau_cloud_explanations_total",
            "Explanations by outcome: 'llm' (first reply valid), 'retry' (second reply valid), "
            "'fallback' (template from evidence), 'error', 'cooldown' (trigger skipped).",
            ["outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "vau_cloud_explain_seconds",
            "Wall time of one explanation (evidence, prompt, LLM, validation).",
            buckets=_SECONDS,
            registry=registry,
        )
        self.invalid = Counter(
            "vau_cloud_llm_invalid_replies_total",
            "LLM replies that failed parsing, the schema, the faithfulness or the word check, "
            "by reason.",
            ["reason"],
            registry=registry,
        )
        self.vocabulary = Gauge(
            "vau_cloud_explain_vocabulary_words",
            "Words the reply check knows from explain.dictionaries; 0: no word list was found "
            "and replies are not checked for words in no dictionary.",
            registry=registry,
        )
        self.unreadable = Counter(
            "vau_cloud_explain_unreadable_records_total",
            "Ingest records the explainer could not read (skipped; the cursor moves past them), "
            "by reason: a validation reason (limits lowered since ingest) or 'decode'.",
            ["reason"],
            registry=registry,
        )
        self.pruned = Counter(
            "vau_cloud_event_store_pruned_total",
            "Event store rows deleted by retention (explain.retention_days), by table.",
            ["table"],
            registry=registry,
        )
        self.retention_runs = Counter(
            "vau_cloud_event_store_retention_runs_total",
            "Retention passes over the event store (every explain.retention_check_s).",
            registry=registry,
        )

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else float(found)
