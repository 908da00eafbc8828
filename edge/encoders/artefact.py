"""`manifest.json` beside every exported artefact, and the checks that refuse a corrupt or
mismatched one.

The manifest is the contract between `vau-export`, which writes artefacts, and the edge, which
checks one before a runtime touches it; it lives with the edge so that the edge never imports the
exporter (`vau.export` imports it from here)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST = "manifest.json"


class ArtefactError(Exception):
    """An artefact is missing, damaged or made for other settings; the message says what to do."""


class TensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    shape: list[int | str]  # str: a symbolic dimension such as "batch"
    dtype: str


class ArtefactManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    artefact: str = Field(description="File name of the model, next to this manifest.")
    sha256: str = Field(min_length=64, max_length=64)
    size: int = Field(ge=1)
    kind: Literal["onnx", "tensorrt"] = "onnx"
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    quantization: str = Field("", description="e.g. 'dynamic', 'static' for ONNX int8.")
    opset: int
    input_size: int
    keep_ratio: float
    k: int
    patches: int
    embed_dim: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    device: str = "x86-cpu"
    external_data: str = Field("", description="File of the weights, beside the model; '' = none.")
    external_sha256: str = ""
    external_size: int = 0
    sources: dict[str, str] = Field(default_factory=dict, description="source file -> sha256")
    versions: dict[str, str] = Field(default_factory=dict, description="exporter -> version")
    notes: list[str] = Field(default_factory=list)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_for(model: Path) -> Path:
    """Each artefact has its own manifest: DIR/manifest.json for the first, NAME.json for others."""
    shared = model.parent / MANIFEST
    own = model.with_suffix(".json")
    if own.is_file():
        return own
    return shared


def write_manifest(manifest: ArtefactManifest, path: Path) -> Path:
    path.write_text(manifest.model_dump_json(indent=2) + "\n", "utf-8")
    return path


def read_manifest(model: Path) -> ArtefactManifest:
    path = manifest_for(model)
    if not path.is_file():
        raise ArtefactError(
            f"no manifest next to {model} ({path}); re-export with `vau-export onnx`"
        )
    try:
        manifest = ArtefactManifest(**json.loads(path.read_text("utf-8")))
    except (json.JSONDecodeError, ValidationError, TypeError) as exc:
        raise ArtefactError(f"manifest {path} is unreadable ({exc}); re-export the model") from None
    if manifest.artefact != model.name:
        raise ArtefactError(
            f"manifest {path} describes {manifest.artefact}, not {model.name}; re-export or pass "
            "the model the manifest names"
        )
    return manifest


def external_fields(data: Path | None) -> dict[str, str | int]:
    """Manifest fields for a weights file beside the model (empty fields for none)."""
    if data is None or not data.is_file():
        return {"external_data": "", "external_sha256": "", "external_size": 0}
    return {"external_data": data.name, "external_sha256": sha256_file(data),
            "external_size": data.stat().st_size}  # fmt: skip


def _check_bytes(path: Path, size: int, sha256: str) -> None:
    """Refuse a file whose size or sha256 is not the manifest's (truncated, replaced, altered)."""
    if path.stat().st_size != size:
        raise ArtefactError(
            f"{path.name} is {path.stat().st_size} bytes but its manifest says {size}: the file "
            "is truncated or replaced; copy it again or re-export"
        )
    if sha256_file(path) != sha256:
        raise ArtefactError(f"{path.name} does not match its manifest's sha256; re-export it")


def check_artefact(
    model: Path, *, keep_ratio: float | None = None, input_size: int | None = None
) -> ArtefactManifest:
    """Refuse a missing, truncated, altered or mismatched artefact before a runtime touches it."""
    if not model.is_file():
        how = (
            "`vau-export tensorrt`" if model.suffix == ".engine" else "`vau-export onnx --out DIR`"
        )
        raise ArtefactError(f"model {model} not found; build it with {how}")
    manifest = read_manifest(model)
    _check_bytes(model, manifest.size, manifest.sha256)
    if manifest.external_data:
        data = model.parent / manifest.external_data
        if not data.is_file():
            raise ArtefactError(
                f"{model.name} keeps its weights in {data.name}, which is missing; copy it "
                "beside the model"
            )
        _check_bytes(data, manifest.external_size, manifest.external_sha256)
    if keep_ratio is not None and abs(keep_ratio - manifest.keep_ratio) > 1e-9:
        raise ArtefactError(
            f"{model.name} was exported for keep_ratio {manifest.keep_ratio} (K={manifest.k}) but "
            f"{keep_ratio} was requested; set sets.keep_ratio = {manifest.keep_ratio} or re-export "
            f"with `vau-export onnx --keep-ratio {keep_ratio}`"
        )
    if input_size is not None and input_size != manifest.input_size:
        raise ArtefactError(
            f"{model.name} takes {manifest.input_size}px input but {input_size}px was requested; "
            f"set encoder.input_size = {manifest.input_size} or re-export at {input_size}"
        )
    return manifest
