"""Where cached assets live, and how callers turn a model reference into something loadable.

Model references accepted by `resolve_model` (in this order):
1. a path that exists (file or folder): returned as a `Path`, untouched;
2. an asset name from the catalogue (`dinov2-s14`, `dinov2-s14-onnx`, `smollm2-135m-instruct`,
   `vtest.avi`, `bikes.mp4`): the pulled copy in the cache dir (raises `AssetMissingError`, which
   says which `vau-models pull --only ...` to run, when it is not there);
3. anything else, e.g. a hub id like `facebook/dinov2-small`: returned unchanged as a `str`, for
   transformers to resolve (which needs a reachable model hub or its local hub cache).
"""

from __future__ import annotations

import os
from pathlib import Path

from vau.assets.catalog import ASSETS
from vau.assets.errors import AssetCorruptError, AssetMissingError, UnknownAssetError
from vau.assets.manifest import load_manifest

CACHE_ENV = "VAU_CACHE_DIR"


def default_cache_dir() -> Path:
    """`$VAU_CACHE_DIR` when set (and not empty), else `~/.cache/vau`."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "vau"


def pull_hint(name: str, cache_dir: Path) -> str:
    """The command that fetches one asset into one cache dir."""
    group = ASSETS[name].group
    where = "" if cache_dir == default_cache_dir() else f" --cache-dir {cache_dir}"
    return f"vau-models pull --only {group}{where}"


def asset_path(name: str, cache_dir: Path | None = None) -> Path:
    """Path of a pulled asset (a file or a transformers folder).

    Raises `AssetMissingError` when the file is absent or the manifest does not list it (an
    interrupted pull), and `UnknownAssetError` for a name that is not in the catalogue.
    """
    if name not in ASSETS:
        raise UnknownAssetError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}")
    root = cache_dir if cache_dir is not None else default_cache_dir()
    path = root / ASSETS[name].relpath
    try:
        listed = name in load_manifest(root).assets
    except AssetCorruptError:
        listed = False
    if not listed or not path.exists():
        raise AssetMissingError(
            f"asset {name!r} is not in {root}; run `{pull_hint(name, root)}` to fetch it"
        )
    return path


def resolve_model(ref: str, cache_dir: Path | None = None) -> Path | str:
    """An existing local path, a cached asset's path, or `ref` unchanged (a hub id)."""
    local = Path(ref).expanduser()
    if ref and local.exists():
        return local
    if ref in ASSETS:
        return asset_path(ref, cache_dir)
    return ref
