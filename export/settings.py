"""Export settings per device class: one small TOML file each, under firmware_configs/export/.

They are separate from the edge's runtime settings (firmware_configs/*.toml), whose loader rejects
unknown keys; the values that must agree (input size, keep ratio, precision, batch) are repeated and
`vau-export` records them in the artefact's manifest, which the fused backend checks at load.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vau.edge.encoders.artefact import ArtefactError
from vau.edge.settings import PATCH, patch_multiple


class ExportError(ArtefactError):
    """An export step cannot run or an artefact is unusable; the message says what to do."""


class ExportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field("x86-cpu", min_length=1, description="Device class, names the artefacts.")
    precision: Literal["fp32", "fp16", "int8"] = Field(
        "fp32", description="Engine precision (ONNX is always exported fp32; quantise after)."
    )
    input_size: int = Field(224, ge=PATCH, le=1022, description="Square input side S, px.")
    batch: int = Field(1, ge=1, le=64, description="Batch the engine is optimised for.")
    max_batch: int = Field(8, ge=1, le=64, description="Largest batch the engine accepts.")
    fps: float = Field(2.0, gt=0, le=120, description="Frames/s the device is expected to run.")
    keep_ratio: float = Field(0.5, gt=0, le=1, description="SETS share of patches kept (fixes K).")
    opset: int = Field(17, ge=14, le=21, description="ONNX opset the graph is pinned to.")
    workspace_mb: int = Field(1024, ge=64, le=65536, description="TensorRT builder workspace.")
    dla_core: int | None = Field(
        None, ge=0, le=1, description="Run on this DLA core (GPU fallback)."
    )
    calib_frames: int = Field(64, ge=1, le=4096, description="Real frames for INT8 calibration.")
    external_data: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Weights in a `<model>.onnx.data` file beside the graph: 'auto' when the graph "
        "would pass protobuf's 2 GB limit (ViT-L/g class encoders), 'always', or 'never' (refuse "
        "a graph that needs it).",
    )

    _multiple_of_patch = field_validator("input_size")(patch_multiple)


def load_export_settings(path: Path | None) -> ExportSettings:
    """Defaults when path is None; else the TOML file, unknown keys refused."""
    if path is None:
        return ExportSettings()
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
        return ExportSettings(**raw)
    except OSError as exc:
        raise ExportError(f"cannot read device config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExportError(f"device config {path} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise ExportError(f"device config {path} is invalid:\n{exc}") from None
