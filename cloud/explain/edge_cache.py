"""A cache of an eval set's edge runs, so the cloud's writer can be measured again without
running the edge again (`vau-cloud eval-explanations --edge-cache FILE`).

The edge's part of the chain (`chain.run_edge`, the wire, the cloud's evidence) is most of an
evaluation's time on this CPU and does not change when only the writer does. The cache holds a
set's `ClipEvents` and a key: digests of the manifest, the camera models, the edge settings file
and the source of every module the cached values come from (the edge package, the wire's codecs
and validator, the cloud's evidence). Any of them changed and the cache is stale: it is run
again and rewritten, and the log says which part changed. The writer's modules (explainer,
prompts, checks, LLM backends) are not in the key: changing them is what the cache is for.

The file is a pickle written by this command on this machine; it is loaded only when its key
matches, and a cache from anywhere else must never be passed (unpickling runs code).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 1
_ROOT = Path(__file__).resolve().parents[2]  # the `vau` namespace's root (edge/, cloud/, ...)
# What a cached event is made of, besides the edge package itself.
_CLOUD_SOURCES = (
    "cloud/codec.py",
    "cloud/records.py",
    "cloud/validate.py",
    "cloud/explain/chain.py",
    "cloud/explain/evidence.py",
    "cloud/explain/facts.py",
)


def _digest_files(paths: Iterable[Path], root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root)).encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def key(
    manifest: Path, models: Path, edge_config: Path | None, root: Path = _ROOT
) -> dict[str, str]:
    """What the cached edge runs depend on, as digests (models: every file under the folder)."""
    sources = [*(root / "edge").rglob("*.py"), *(root / s for s in _CLOUD_SOURCES)]
    model_files = [p for p in models.rglob("*") if p.is_file()] if models.is_dir() else []
    return {
        "format": str(FORMAT),
        "manifest": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "models": _digest_files(model_files, models) if model_files else "none",
        "edge_config": (
            hashlib.sha256(edge_config.read_bytes()).hexdigest() if edge_config else "defaults"
        ),
        "sources": _digest_files([p for p in sources if p.is_file()], root),
    }


def load(path: Path, want: dict[str, str]) -> list[Any] | None:
    """The cached values when the file's key is `want`; None (and why, in the log) otherwise."""
    if not path.is_file():
        log.info("edge cache %s: none yet; the edge runs", path)
        return None
    with path.open("rb") as f:
        stored = pickle.load(f)  # a file this module wrote (module docstring)
    if not isinstance(stored, dict) or stored.get("key") != want:
        old = stored.get("key", {}) if isinstance(stored, dict) else {}
        changed = sorted(k for k in want if old.get(k) != want[k])
        log.info("edge cache %s is stale (%s changed); the edge runs again", path, changed)
        return None
    values = stored["values"]
    log.info("edge cache %s: %d clips, the edge does not run", path, len(values))
    return list(values)


def save(path: Path, want: dict[str, str], values: list[Any]) -> None:
    """Written atomically: an interrupted run leaves the old cache (or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"key": want, "values": values}, f, protocol=pickle.HIGHEST_PROTOCOL)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached(
    path: Path | None, want: Callable[[], dict[str, str]], run: Callable[[], Iterable[Any]]
) -> list[Any]:
    """`run()`'s values, from the cache at `path` when its key is `want()`, else run and stored
    under `want()` as it is after the run (a run learns the camera models it finds missing)."""
    if path is not None and (values := load(path, want())) is not None:
        return values
    values = list(run())
    if path is not None:
        save(path, want(), values)
    return values
