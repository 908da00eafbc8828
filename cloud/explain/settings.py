"""`[explain]` settings of the cloud: the LLM backend, decoding, classes, per-camera context,
triggers. `[explain.openai]` is the OpenAI-compatible server the `openai` backend calls."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from vau.common.settings import Strict

DEFAULT_CLASSES = (
    "Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting",
    "Road Accident", "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism",
    "Intrusion", "Running", "Smoke", "Camera Tamper",  # what the bundled classifier observes
)  # fmt: skip
# the system's English word lists (`vocabulary`): Debian's wamerican and wbritish, or any `words`
DICTIONARIES = (
    Path("/usr/share/dict/american-english"),
    Path("/usr/share/dict/british-english"),
    Path("/usr/share/dict/words"),
)


class CameraContext(Strict):
    normal: str = Field("", max_length=300, description="What is normal here, in one sentence.")
    category: str | None = Field(
        None, description="The category to report for this camera's anomalies (a class name)."
    )


LlmBackendName = Literal["transformers", "openai"]  # the closed vocabulary of LLM backends
PromptEmbedsMode = Literal["auto", "on", "off"]


class OpenAiSettings(Strict):
    """An OpenAI-compatible server: vLLM, SGLang, llama.cpp's server, Ollama."""

    base_url: str = Field(
        "http://127.0.0.1:8000/v1",
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="The server's API root (ends in /v1 for vLLM, SGLang, llama.cpp, Ollama).",
    )
    api_key: SecretStr | None = Field(
        None,
        description="Bearer token, if the server wants one; set it through the environment "
        "(VAU_CLOUD__EXPLAIN__OPENAI__API_KEY), never in a file. Never logged.",
    )
    connect_timeout_s: float = Field(5.0, gt=0.0, le=120.0, description="TCP connect timeout.")
    timeout_s: float = Field(
        120.0, gt=0.0, le=3600.0, description="Whole-request timeout (one generation)."
    )
    retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of a request that failed transiently (refused, timed out, HTTP "
        "408/429/5xx); each is counted.",
    )
    retry_backoff_s: float = Field(
        0.5, ge=0.0, le=60.0, description="First retry delay; doubles at each retry."
    )
    prompt_embeds: PromptEmbedsMode = Field(
        "auto",
        description="Visual tokens as prompt embeddings (vLLM --enable-prompt-embeds): 'auto' "
        "sends them and goes text-only if the server refuses; 'on' fails instead; 'off' never.",
    )
    embeddings: str | None = Field(
        None,
        description="A local copy of the served model (asset name or folder): its tokenizer and "
        "input embedding table make the prompt embeddings. Default: explain.model, if local.",
    )


class ExplainSettings(Strict):
    enabled: bool = Field(True, description="Explain ended events with the language model.")
    backend: LlmBackendName = Field(
        "transformers",
        description="'transformers' (the model in this process) or 'openai' (an "
        "OpenAI-compatible server at explain.openai.base_url: vLLM, SGLang, llama.cpp, Ollama).",
    )
    model: str = Field(
        "smollm2-135m-instruct",
        min_length=1,
        description="transformers: an asset name (vau-models), a local folder or a Hugging Face "
        "model id; openai: the model name the server serves.",
    )
    concurrency: int = Field(
        1,
        ge=1,
        le=64,
        description="Explanations in flight at once; above 1 needs backend 'openai' (the "
        "in-process model generates one at a time).",
    )
    openai: OpenAiSettings = OpenAiSettings()
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu' or 'cuda[:N]'.")
    max_new_tokens: int = Field(64, ge=8, le=512, description="Per generated field.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy.")
    repetition_penalty: float = Field(
        1.0,
        ge=1.0,
        le=2.0,
        description="Discourages loops; 1.0 = off. A reply copies its facts' words and numbers by "
        "design (from 2.0s to 5.0s), which a penalty turns into others (5.0d) "
        "(docs/explain.md).",
    )
    constrained: bool = Field(
        True,
        description="transformers backend: hold each generation to the reply's JSON schema "
        "(xgrammar), so a reply is always valid JSON within the schema's lengths. The openai "
        "backend ignores it.",
    )
    classes: tuple[str, ...] = Field(
        DEFAULT_CLASSES, min_length=1, description="Anomaly classes a category may name."
    )
    cameras: dict[str, CameraContext] = Field(
        default_factory=dict, description="Per-camera context, keyed by camera id."
    )
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Peak score that is an anomaly.")
    high_threshold: float = Field(0.85, ge=0.0, le=1.0, description="Peak for threat level 2.")
    long_event_s: float = Field(10.0, gt=0.0, description="Duration that raises threat to 2.")
    cooldown_s: float = Field(0.0, ge=0.0, description="Per camera: skip triggers this soon.")
    early_trigger: bool = Field(False, description="Also explain an open event at its first peak.")
    window_wait_s: float = Field(
        10.0, ge=0.0, description="After an event ends, wait this long for its window."
    )
    visual_tokens: bool = Field(
        True,
        description="Send the window frames' tokens to the LLM through a trained projector "
        "(projector_weights, else the bundled one when it was trained for this LLM).",
    )
    projector_weights: Path | None = Field(
        None,
        description="Trained projector (`vau-cloud train-projector`, safetensors; its kind and "
        "widths are in the file); unset: the bundled one where it fits the LLM.",
    )
    dictionaries: tuple[Path, ...] = Field(
        DICTIONARIES,
        description="Word lists (one word a line): a reply with a word in none of them and not in "
        "what the LLM was shown is refused (`nonword`). The lists that exist are read; none: the "
        "check is off (logged at start). Debian/Ubuntu: apt install wamerican wbritish.",
    )
    category_model: Path | None = Field(
        None,
        description="Observed-category classifier (`vau-cloud train-category`); unset: the "
        "bundled demo-grade one.",
    )
    retention_days: float = Field(
        30.0, gt=0.0, description="Event store retention: events untouched this long are pruned."
    )
    retention_check_s: float = Field(
        3600.0, gt=0.0, le=86_400.0, description="How often retention runs (also at start)."
    )
    poll_s: float = Field(0.5, gt=0.0, le=60.0, description="How often the ingest store is read.")

    @model_validator(mode="after")
    def _concurrency_needs_a_server(self) -> ExplainSettings:
        if self.concurrency > 1 and self.backend != "openai":
            raise ValueError(
                f"concurrency {self.concurrency} needs backend 'openai': the in-process "
                "transformers model generates one explanation at a time; set concurrency = 1"
            )
        return self

    @model_validator(mode="after")
    def _known_categories(self) -> ExplainSettings:
        for camera, ctx in self.cameras.items():
            if ctx.category is not None and ctx.category not in (*self.classes, "other"):
                raise ValueError(f"cameras.{camera}.category {ctx.category!r} is not a class")
        return self
