"""Every edge setting, declared once: default, bounds, description.

Layers, lowest to highest: defaults < `--config FILE` (TOML) < `VAU_EDGE__...` environment <
command-line flags. Unknown keys are errors at every layer; values are never silently "fixed".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from vau.common.settings import LayeredSettings, SettingsError, Strict, environment_keys, load

__all__ = ["EdgeSettings", "SettingsError", "edge_environment_keys", "load_settings"]

PATCH = 14  # DINOv2 patch size in pixels


def patch_multiple(size: int) -> int:
    """A square input side must be a whole number of patches (edge and export settings)."""
    if size % PATCH:
        raise ValueError(f"input_size must be a multiple of {PATCH} (e.g. 224, 448), got {size}")
    return size


DEFAULT_CLASSES = (
    "Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting",
    "RoadAccidents", "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism",
)  # fmt: skip


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
    reconnect_initial_s: float = Field(
        0.5, gt=0, le=60, description="Live sources: first reconnect delay (doubles, jittered)."
    )
    reconnect_max_s: float = Field(
        30.0, gt=0, le=600, description="Live sources: reconnect delay ceiling."
    )
    reconnect_attempts: int = Field(
        0,
        ge=0,
        description="Live sources: consecutive failed reconnects before giving up; 0 retries "
        "forever.",
    )
    first_connect_timeout_s: float = Field(
        30.0,
        ge=0,
        le=86_400,
        description="Live sources: give up (exit 2) when the first connection has not succeeded "
        "within this long (a mistyped URL); once frames came, reconnect_attempts applies. 0 "
        "retries forever.",
    )


class EncoderSettings(Strict):
    backend: Literal["torch", "onnx", "tensorrt", "fused"] = Field(
        "onnx",
        description="Which implementation runs DINOv2: torch, onnx, tensorrt (encoder only; SETS "
        "and the head on the host) or fused (DINOv2 + SETS top-K + head in one `vau-export` "
        "graph; ONNX Runtime for .onnx, TensorRT for .engine).",
    )
    model: str = Field(
        "dinov2-s14",
        description="torch backend: asset name, local transformers folder or hub id.",
    )
    onnx_model: str = Field(
        "dinov2-s14-onnx", description="onnx backend: asset name or path of the encoder .onnx."
    )
    engine: str = Field("", description="tensorrt backend: path of the serialized engine.")
    fused_model: str = Field(
        "",
        description="fused backend: a `vau-export` graph (.onnx) or engine (.engine); '' exports "
        "one into the cache on first use (fp32, or its int8 twin for precision = 'int8').",
    )
    execution_provider: Literal["cpu", "cuda", "tensorrt"] = Field(
        "cpu", description="ONNX Runtime execution provider (cuda/tensorrt need onnxruntime-gpu)."
    )
    precision: Literal["fp32", "fp16", "int8"] = Field("fp32", description="Inference precision.")
    input_size: int = Field(
        224, ge=112, le=518, description="Square input side in pixels; a multiple of 14."
    )
    batch_size: int = Field(1, ge=1, le=64, description="Frames encoded per call.")
    threads: int = Field(0, ge=0, le=256, description="CPU threads; 0 lets the runtime decide.")

    _multiple_of_patch = field_validator("input_size")(patch_multiple)


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
    select: Literal["change", "novelty", "both"] = Field(
        "change",
        description="topk: rank patches by their change since the previous frame ('change', the "
        "paper's SETS), by the normality model's anomaly map ('novelty'), or by the sum of both "
        "ranks ('both'); without a normality model every mode ranks by change.",
    )


class HeadSettings(Strict):
    path: str = Field("default", description="TETG head folder, or 'default' for the bundled one.")


class NormalitySettings(Strict):
    """The camera's own normality model (see `vau.edge.normality`) and how frames are scored."""

    scorer: Literal["head", "normality", "fused"] = Field(
        "fused",
        description="head = the TETG head alone; normality = the camera's normality model alone; "
        "fused = both, calibrated on the camera's normal footage (the head alone while no "
        "normality model is available).",
    )
    path: Path | None = Field(
        None,
        description="Folder of this camera's normality model (`vau-edge learn --out`); unset = "
        "none, unless warmup_s > 0 learns one online.",
    )
    warmup_s: float = Field(
        0.0,
        ge=0,
        le=86_400,
        description="Online learning: a camera without a model watches this long (seconds of "
        "stream time, at least 30) to learn one, saves it to `path` (or the outbox data_dir), "
        "then scores; 0 = off.",
    )
    learn_frames: int = Field(
        600,
        ge=60,
        le=100_000,
        description="`vau-edge learn` encodes at most about this many frames (600 = 5 minutes at "
        "2 fps): longer footage is learnt from 5 s bursts spread evenly over all of it, so "
        "learning an hour costs what learning 5 minutes does, in time and memory.",
    )
    memory_patches: int = Field(
        2048,
        ge=64,
        le=16_384,
        description="Normal patch tokens kept (greedy coreset); bounds memory (2.5 KB each with "
        "the neighbourhood mask; the largest setting, with its adaptation ring, stays under 64 "
        "MB) and the per-frame search (a 256 x M matmul).",
    )
    radius: int = Field(
        -1,
        ge=-1,
        le=64,
        description="Appearance: compare a patch only with normal patches learnt at most this "
        "many grid cells away; -1 (default, measured better) = anywhere in the view.",
    )
    hot_patches: int = Field(
        1024,
        ge=0,
        le=4096,
        description="Most anomalous patches reported per frame ('hot'; only those past the edge "
        "of normal, most anomalous first): every one on the default grid, so the cloud reads how "
        "much of the view is past normal (a whole-view change) from their number; at most two "
        "bytes each on the wire.",
    )
    device: Literal["cpu", "cuda"] = Field(
        "cpu",
        description="Where the nearest-normal-patch search runs: cpu (NumPy) or cuda (torch, "
        "the memory resident on the GPU; Jetson and GPU hosts).",
    )
    adapt: bool = Field(
        True,
        description="After learning, keep adapting from frames scored normal only (bounded "
        "memory; see horizon_s).",
    )
    horizon_s: float = Field(
        600.0,
        gt=0,
        description="Adaptation: a frame joins the memory only after this long with no event "
        "open, so an anomaly that persists is not absorbed as normal sooner.",
    )
    adapt_every_s: float = Field(
        10.0, gt=0, description="Adaptation: at most one frame joins the memory this often."
    )

    @field_validator("warmup_s")
    @classmethod
    def _warmup_long_enough(cls, w: float) -> float:
        from vau.edge.normality.store import MIN_LEARN_S

        if 0 < w < MIN_LEARN_S:
            raise ValueError(f"must be 0 (off) or at least {MIN_LEARN_S:g} s of footage")
        return w


class EventSettings(Strict):
    smoothing: float = Field(
        0.5, gt=0, le=1, description="EMA weight of the newest score (1 = no smoothing)."
    )
    enter: float = Field(0.6, gt=0, lt=1, description="Smoothed score that opens an event.")
    exit: float = Field(0.4, ge=0, lt=1, description="Smoothed score below which it may close.")
    min_duration_s: float = Field(1.0, ge=0, description="Shorter events are discarded.")
    lookahead: int = Field(
        1,
        ge=0,
        le=4,
        description="A frame's final score is the mean of its own and the next N frames' "
        "(`vau.edge.lookahead`): less frame-to-frame noise, at the cost of N frame intervals "
        "before its record and events leave the edge (0.5 s at 2 fps); 0 = off.",
    )
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


class UplinkSettings(Strict):
    cloud: str | None = Field(
        None,
        description="Cloud ingest HOST:PORT, or several comma-separated (replicas of one cloud: "
        "the uplink fails over to the next when a stream fails); unset keeps results local.",
    )
    data_dir: Path = Field(
        Path("vau-edge-data"), description="Folder of the durable outbox (SQLite, WAL)."
    )
    mode: Literal["events", "continuous"] = Field(
        "events",
        description="events: ship ATS-chosen frames of each event plus score summaries; "
        "continuous: ship every frame's tokens.",
    )
    token_dtype: Literal["fp16", "int8"] = Field("fp16", description="Token payload encoding.")
    summary_every_s: float = Field(
        10.0, gt=0, le=3600, description="Scores-only heartbeat period for normal time."
    )
    ring_frames: int = Field(
        600, ge=16, le=100_000, description="Recent frames kept in memory for event windows."
    )
    outbox_max_bytes: int = Field(
        256 * 2**20, ge=2**16, description="Outbox cap; when full, normal frames go first."
    )
    ttl_s: float = Field(
        7 * 24 * 3600.0, gt=0, description="Records older than this expire unsent (counted)."
    )
    max_in_flight: int = Field(64, ge=1, le=10_000, description="Unacked records on the wire.")
    drain_timeout_s: float = Field(
        30.0, ge=0, description="At the end of a file, wait this long for every record's ack."
    )
    reconnect_initial_s: float = Field(0.5, gt=0, le=60, description="First reconnect delay.")
    reconnect_max_s: float = Field(30.0, gt=0, le=600, description="Reconnect delay ceiling.")
    keepalive_s: float = Field(
        30.0, ge=10, description="gRPC keepalive ping period (the cloud permits >= 10 s)."
    )
    max_message_bytes: int = Field(
        4 * 2**20, ge=2**16, le=64 * 2**20, description="Largest message sent or received."
    )
    tls_ca: Path | None = Field(None, description="CA certificate that signed the cloud's cert.")
    tls_cert: Path | None = Field(None, description="This device's client certificate (mTLS).")
    tls_key: Path | None = Field(None, description="This device's private key (mTLS).")
    token: SecretStr | None = Field(
        None, description="Per-device token for sites without PKI (sent over TLS only)."
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> UplinkSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        return self


CAMERA_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class CameraSettings(Strict):
    """One camera of an edge that serves several (`[cameras.<id>]`); what is not set here comes
    from the top-level sections, so only what differs per camera is written."""

    source: str = Field(
        min_length=1, description="As source.uri: camera index, video file, rtsp:// or http(s):// "
        "URL, or 'sample'.",
    )  # fmt: skip
    fps: float | None = Field(None, gt=0, le=60, description="As source.fps; unset: source.fps.")
    normality: Path | None = Field(
        None,
        description="This camera's normality model (`vau-edge learn --out`); unset: "
        "<uplink.data_dir>/normality/<id>, learnt online when normality.warmup_s is set.",
    )
    warmup_s: float | None = Field(None, ge=0, description="As normality.warmup_s, for this one.")
    enter: float | None = Field(None, gt=0, lt=1, description="As events.enter, for this one.")
    exit: float | None = Field(None, ge=0, lt=1, description="As events.exit, for this one.")


class EdgeSettings(LayeredSettings):
    model_config = SettingsConfigDict(env_prefix="VAU_EDGE__")
    env_prefix: ClassVar[str] = "VAU_EDGE__"

    device_id: str = Field("edge-0", min_length=1, max_length=64, description="This device.")
    camera_id: str = Field("cam-0", min_length=1, max_length=64, description="This camera.")
    cache_dir: Path | None = Field(None, description="Model and footage cache (vau-models).")
    max_frames: int = Field(0, ge=0, description="Stop after this many processed frames; 0 = all.")
    source: SourceSettings = SourceSettings()
    encoder: EncoderSettings = EncoderSettings()
    sets: SetsSettings = SetsSettings()
    head: HeadSettings = HeadSettings()
    normality: NormalitySettings = NormalitySettings()
    events: EventSettings = EventSettings()
    ats: AtsSettings = AtsSettings()
    output: OutputSettings = OutputSettings()
    uplink: UplinkSettings = UplinkSettings()
    cameras: dict[str, CameraSettings] = Field(
        default_factory=dict,
        description="Several cameras in one process, by id (`[cameras.door]`, source = ...); "
        "empty: the one camera of camera_id and source.",
    )

    def streams(self) -> list[EdgeSettings]:
        """Each camera's own settings: `self` for one camera, else one copy per `cameras` entry
        with its id, source, fps, normality model and event thresholds."""
        if not self.cameras:
            return [self]
        return [self._camera(camera) for camera in self.cameras]

    def _camera(self, camera: str) -> EdgeSettings:
        """`camera`'s settings: each section it overrides validated again with its values."""
        c = self.cameras[camera]
        changes: dict[str, Any] = {
            "source": _given(uri=c.source, fps=c.fps),
            "normality": _given(path=c.normality, warmup_s=c.warmup_s),
            "events": _given(enter=c.enter, exit=c.exit),
        }
        update: dict[str, Any] = {"camera_id": camera, "cameras": {}}
        for name, values in changes.items():
            section = getattr(self, name)
            try:
                update[name] = type(section).model_validate(section.model_dump() | values)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in (name, *first["loc"]))
                raise ValueError(f"cameras.{camera}: {where}: {first['msg']}") from None
        return self.model_copy(update=update)

    @field_validator("cameras")
    @classmethod
    def _camera_ids(cls, cameras: dict[str, CameraSettings]) -> dict[str, CameraSettings]:
        import re

        bad = [k for k in cameras if not re.match(CAMERA_ID, k)]
        if bad:
            raise ValueError(
                f"camera id(s) {', '.join(map(repr, bad))} must be 1-64 letters, digits, '.', "
                "'_' or '-', starting with a letter or digit"
            )
        return cameras

    @model_validator(mode="after")
    def _cameras_resolve(self) -> EdgeSettings:
        for camera in self.cameras:
            self._camera(camera)  # each camera's merged settings must be valid too
        return self

    @model_validator(mode="after")
    def _one_model_per_camera(self) -> EdgeSettings:
        if len(self.cameras) > 1 and self.normality.path is not None:
            raise ValueError(
                "normality.path is one camera's model; with several cameras set "
                "cameras.<id>.normality for each instead"
            )
        return self

    @model_validator(mode="after")
    def _fused_needs_topk_one_frame(self) -> EdgeSettings:
        if self.encoder.backend != "fused":
            return self
        if self.sets.mode != "topk":
            raise ValueError(
                "encoder.backend 'fused' does SETS top-K in the graph; sets.mode must be 'topk'"
            )
        if self.encoder.batch_size > max(len(self.cameras), 1):
            raise ValueError(
                "encoder.backend 'fused' batches frames of different cameras only (each frame's "
                "SETS reference is its camera's previous output); set encoder.batch_size to at "
                "most the number of cameras"
            )
        return self


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def load_settings(
    config: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> EdgeSettings:
    """Build settings from the four layers; raise SettingsError with a readable message."""
    return load(EdgeSettings, config, overrides)


def edge_environment_keys() -> list[str]:
    return environment_keys(EdgeSettings.env_prefix)
