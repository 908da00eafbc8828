"""Fixtures for `vau.assets` tests.

The real assets are large, so tests read the default cache (`$VAU_CACHE_DIR` or ~/.cache/vau),
which CI fills with `vau-models pull` before running them; a missing or damaged cache fails loudly.
Tests that damage files work on copies of the small footage assets in a tmp dir.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vau.assets import Manifest, default_cache_dir, load_manifest, verify
from vau.assets.manifest import save_manifest

FOOTAGE_NAMES = ("vtest.avi", "bikes.mp4")


@pytest.fixture(scope="session")
def pulled_cache() -> Path:
    """The default cache dir, checked once per session to hold every asset intact."""
    cache_dir = default_cache_dir()
    problems = verify(cache_dir, ["footage", "dinov2", "smollm2", "qwen"])
    if problems:
        pytest.fail(
            f"the asset cache {cache_dir} is not complete ({'; '.join(problems[:3])}); "
            "run `vau-models pull` (or set VAU_CACHE_DIR to a pulled cache) before the tests",
            pytrace=False,
        )
    return cache_dir


@pytest.fixture(scope="session")
def pulled_manifest(pulled_cache: Path) -> Manifest:
    return load_manifest(pulled_cache)


@pytest.fixture
def footage_cache(tmp_path: Path, pulled_cache: Path, pulled_manifest: Manifest) -> Path:
    """A tmp cache dir holding copies of the footage and a manifest listing only them."""
    cache_dir = tmp_path / "cache"
    records = []
    for name in FOOTAGE_NAMES:
        record = pulled_manifest.assets[name]
        target = cache_dir / record.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pulled_cache / record.path, target)
        records.append(record)
    save_manifest(cache_dir, Manifest().with_records(records))
    return cache_dir
