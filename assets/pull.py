"""`pull` and `verify`: fetch groups that are missing or damaged, checksum everything.

A group is rebuilt when any of its assets is absent from the manifest or fails its checksum; an
intact group costs only the checksum pass. Heavy converters (torch, transformers) are imported only
when their group is actually built.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vau.assets.catalog import (
    ASSETS,
    DINOV2,
    FOOTAGE,
    GROUPS,
    QWEN_GROUP,
    RECIPES,
    SMOLLM2_GROUP,
    assets_of,
    expand_selection,
)
from vau.assets.errors import AssetCorruptError
from vau.assets.fsutil import cache_lock, remove_leftovers
from vau.assets.manifest import AssetRecord, Manifest, load_manifest, problems_with, save_manifest

log = logging.getLogger(__name__)

Builder = Callable[[Path], list[AssetRecord]]
_BUILDERS: dict[str, tuple[str, str]] = {
    FOOTAGE: ("vau.assets.footage", "pull_footage"),
    DINOV2: ("vau.assets.dinov2", "pull_dinov2"),
    SMOLLM2_GROUP: ("vau.assets.smollm2", "pull_smollm2"),
    QWEN_GROUP: ("vau.assets.qwen", "pull_qwen"),
}


def _builder(group: str) -> Builder:
    module_name, function_name = _BUILDERS[group]
    builder: Builder = getattr(importlib.import_module(module_name), function_name)
    return builder


def _written_folders(cache_dir: Path) -> set[Path]:
    """The folders a pull writes into: the cache dir and each asset's parent folder."""
    return {cache_dir} | {(cache_dir / spec.relpath).parent for spec in ASSETS.values()}


def _group_problems(manifest: Manifest, group: str, cache_dir: Path) -> list[str]:
    problems: list[str] = []
    for spec in assets_of(group):
        record = manifest.assets.get(spec.name)
        recipe = RECIPES.get(group, 1)
        if record is None:
            problems.append(f"{spec.name}: not pulled yet")
        elif record.details.get("recipe", 1) != recipe:
            problems.append(
                f"{spec.name}: made by recipe {record.details.get('recipe', 1)}, this version's "
                f"is {recipe}"
            )
        else:
            problems.extend(problems_with(record, cache_dir))
    return problems


def _load_or_empty(cache_dir: Path) -> Manifest:
    try:
        return load_manifest(cache_dir)
    except AssetCorruptError as exc:
        log.warning("%s; rebuilding every selected asset", exc)
        return Manifest()


def pull(names: Sequence[str], cache_dir: Path, *, force: bool = False) -> Manifest:
    """Make the selected groups (or assets' groups; all when `names` is empty) present and intact.

    Idempotent: intact groups are only checksummed. Raises `RegistryError` when a registry cannot
    deliver, `ConversionError` when a conversion or parity check fails.
    """
    groups = expand_selection(tuple(names)) if names else list(GROUPS)
    with cache_lock(cache_dir):
        remove_leftovers(_written_folders(cache_dir))
        manifest = _load_or_empty(cache_dir)
        for group in groups:
            problems = ["--force given"] if force else _group_problems(manifest, group, cache_dir)
            if not problems:
                log.info("%s: present, checksums match", group)
                continue
            log.info("%s: building (%s)", group, "; ".join(problems))
            started = time.perf_counter()
            records = _builder(group)(cache_dir)
            manifest = manifest.with_records(records)
            save_manifest(cache_dir, manifest)
            log.info("%s: done in %.1f s", group, time.perf_counter() - started)
    return manifest


def verify(cache_dir: Path, names: Sequence[str] = ()) -> list[str]:
    """Every mismatch between the cache and its manifest (empty list: all intact).

    With no `names`, checks every asset the manifest lists; with names, also reports the selected
    assets that were never pulled.
    """
    try:
        manifest = load_manifest(cache_dir)
    except AssetCorruptError as exc:
        return [str(exc)]
    if names:
        problems: list[str] = []
        for group in expand_selection(tuple(names)):
            problems.extend(_group_problems(manifest, group, cache_dir))
        return problems
    if not manifest.assets:
        return [f"nothing has been pulled into {cache_dir}; run `vau-models pull`"]
    return [
        problem
        for record in manifest.assets.values()
        for problem in problems_with(record, cache_dir)
    ]
