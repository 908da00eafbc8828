"""Every edge setting, declared once: default, bounds, description.

Layers, lowest to highest: defaults < `--config FILE` (TOML) < `VAU_EDGE__...` environment <
command-line flags. Unknown keys are errors at every layer; values are never silently "fixed".
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PATCH = 14  # DINOv2 patch size in pixels
DEFAULT_CLASSES = (
    "Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting",
    "RoadAccidents", "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism",
)  # fmt: skip


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SourceSettings(Strict):
    uri: str = Field(
        "sample",
        description="Camera index ('0'), video file path, rtsp:// or http(s):// URL, or 'sample' "
        "for the bundled vtest.avi footage.",
    )
    fps: float = Field(2.0, gt=0, le=60, description="Frames per second handed to the encoder.")
    buffer_frames: int = Field(
        2, ge=1, le=64, description="Live sources only: frames buffered; the newest frame wins."
    )
    reconnect_initial_s: float = Field(0.5, gt=0, le=60, description="First reconnect delay.")
    reconnect_max_s: float = Field(30.0, gt=0, le=600, description="Reconnect delay ceiling.")
    reconnect_attempts: int = Field(
        0, ge=0, description="Consecutive failed reconnects before giving up; 0 retries forever."
    )


class EncoderSettings(Strict):
    backend: Literal["torch", "onnx", "tensorrt"] = Field(
        "onnx", description="Which encoder implementation runs DINOv2."
    )
    model: str = Field(
        "dinov2-s14",
        description="torch backend: asset name, local transformers folder or hub id.",
    )
    onnx_model: str = Field(
        "dinov2-s14-onnx", description="onnx backend: asset name or path of the encoder .onnx."
    )
    engine: str = Field("", description="tensorrt backend: path of the serialized engine.")
    execution_provider: Literal["cpu", "cuda", "tensorrt"] = Field(
        "cpu", description="ONNX Runtime execution provider (cuda/tensorrt need onnxruntime-gpu)."
    )
    precision: Literal["fp32", "fp16", "int8"] = Field("fp32", description="Inference precision.")
    input_size: int = Field(
        224, ge=112, le=518, description="Square input side in pixels; a multiple of 14."
    )
    batch_size: int = Field(1, ge=1, le=64, description="Frames encoded per call.")
    threads: int = Field(0, ge=0, le=256, description="CPU threads; 0 lets the runtime decide.")

    @field_validator("input_size")
    @classmethod
    def _multiple_of_patch(cls, v: int) -> int:
        if v % PATCH:
            raise ValueError(f"must be a multiple of {PATCH} (e.g. 224), got {v}")
        return v


class SetsSettings(Strict):
    mode: Literal["topk", "threshold"] = Field(
        "topk",
        description="topk keeps a fixed share of patches; threshold keeps every patch "
        "whose mean per-channel L1 change exceeds `threshold` (DiffFP-style).",
    )
    keep_ratio: float = Field(0.5, gt=0, le=1, description="topk: share of patches kept.")
    threshold: float = Field(0.1, ge=0, description="threshold: mean |Δ| per channel to keep.")
    max_gap_s: float = Field(
        5.0, gt=0, description="A gap between frames longer than this makes the next a keyframe."
    )
    keyframe: Literal["distinct", "all"] = Field(
        "distinct",
        description="What a frame with no predecessor keeps: 'distinct' = the same count as any "
        "frame, chosen by L1 distance to the frame's mean token; 'all' = every patch.",
    )


class HeadSettings(Strict):
    path: str = Field("default", description="TETG head folder, or 'default' for the bundled one.")


class EventSettings(Strict):
    smoothing: float = Field(
        0.5, gt=0, le=1, description="EMA weight of the newest score (1 = no smoothing)."
    )
    enter: float = Field(0.6, gt=0, lt=1, description="Smoothed score that opens an event.")
    exit: float = Field(0.4, ge=0, lt=1, description="Smoothed score below which it may close.")
    min_duration_s: float = Field(1.0, ge=0, description="Shorter events are discarded.")
    merge_gap_s: float = Field(2.0, ge=0, description="Quiet time that still belongs to an event.")
    update_every_s: float = Field(5.0, gt=0, description="Open events report at least this often.")
    classes: tuple[str, ...] = Field(DEFAULT_CLASSES, min_length=1, description="Anomaly classes.")

    @model_validator(mode="after")
    def _exit_below_enter(self) -> EventSettings:
        if self.exit >= self.enter:
            raise ValueError(f"exit ({self.exit}) must be below enter ({self.enter})")
        return self


class AtsSettings(Strict):
    frames: int = Field(12, ge=1, le=256, description="Frames shipped per event window.")
    tau: float = Field(0.1, ge=0, le=1, description="Score offset so normal frames keep mass.")


class OutputSettings(Strict):
    jsonl: Path | None = Field(None, description="Write frame and event records here.")
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus port.")
    log_format: Literal["auto", "text", "json"] = Field("auto", description="Log line format.")
    status_line: bool = Field(True, description="Show a live status line on a terminal.")


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VAU_EDGE__",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    device_id: str = Field("edge-0", min_length=1, max_length=64, description="This device.")
    camera_id: str = Field("cam-0", min_length=1, max_length=64, description="This camera.")
    cache_dir: Path | None = Field(None, description="Model and footage cache (vau-models).")
    max_frames: int = Field(0, ge=0, description="Stop after this many processed frames; 0 = all.")
    source: SourceSettings = SourceSettings()
    encoder: EncoderSettings = EncoderSettings()
    sets: SetsSettings = SetsSettings()
    head: HeadSettings = HeadSettings()
    events: EventSettings = EventSettings()
    ats: AtsSettings = AtsSettings()
    output: OutputSettings = OutputSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = _CONFIG_FILE.get()
        layers: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config is not None:
            layers.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(layers)


class SettingsError(Exception):
    """A setting is invalid; the message names the key and the fix."""


_CONFIG_FILE: ContextVar[Path | None] = ContextVar("vau_edge_config_file", default=None)


@contextmanager
def _config_file(path: Path | None) -> Iterator[None]:
    token = _CONFIG_FILE.set(path)
    try:
        yield
    finally:
        _CONFIG_FILE.reset(token)


def load_settings(
    config: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> EdgeSettings:
    """Build settings from the four layers; raise SettingsError with a readable message."""
    if config is not None:
        _check_toml(config)
    _check_env_names()
    try:
        with _config_file(config):
            return EdgeSettings(**dict(overrides or {}))
    except ValidationError as exc:
        raise SettingsError(_describe(exc, config)) from None


def _check_toml(path: Path) -> None:
    if not path.is_file():
        raise SettingsError(f"config file {path} does not exist; pass an existing TOML file")
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None


def _check_env_names() -> None:
    # pydantic-settings ignores unknown top-level variables; a typo must not pass silently.
    known = {name.upper() for name in EdgeSettings.model_fields}
    unknown = [
        k for k in environment_keys() if k.removeprefix("VAU_EDGE__").split("__")[0] not in known
    ]
    if unknown:
        raise SettingsError(
            f"unknown setting(s) in the environment: {', '.join(unknown)}; "
            f"known top-level keys: {', '.join(sorted(known))}"
        )


def _describe(exc: ValidationError, config: Path | None) -> str:
    where = f" (layers: defaults, {config or 'no config file'}, VAU_EDGE__* env, flags)"
    lines = [f"invalid settings{where}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            env = "VAU_EDGE__" + key.replace(".", "__").upper()
            lines.append(f"  {key}: unknown setting (check spelling; env form would be {env})")
        else:
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def environment_keys() -> list[str]:
    """The VAU_EDGE__ variables set in this process, for start-up logs (values never logged)."""
    return sorted(k for k in os.environ if k.startswith("VAU_EDGE__"))
