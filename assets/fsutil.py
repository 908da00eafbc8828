"""Filesystem helpers: checksums, atomic installs and a cache-wide lock.

Every artefact is written under a temporary name inside the cache dir and moved into place with
an atomic rename, so an interrupted pull leaves only `.tmp-*` leftovers (removed by the next pull),
never a half-written file under a real asset name.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vau.common.files import readable

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
_CHUNK = 4 * 1024 * 1024


def sha256_file(path: Path) -> str:
    """Hex sha256 of one file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_under(path: Path) -> dict[str, Path]:
    """Map of relative name -> file for a file (its own name) or every file in a folder."""
    if path.is_file():
        return {path.name: path}
    return {p.relative_to(path).as_posix(): p for p in sorted(path.rglob("*")) if p.is_file()}


@contextmanager
def work_dir(cache_dir: Path, label: str) -> Iterator[Path]:
    """A scratch folder inside the cache dir (same filesystem, so renames are atomic)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{label}-", dir=cache_dir))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _make_readable(path: Path) -> None:
    """0644 files, 0755 folders: scratch dirs (and some writers) create owner-only entries."""
    if path.is_file():
        readable(path)
        return
    path.chmod(0o755)
    for child in path.rglob("*"):
        if child.is_dir():
            child.chmod(0o755)
        else:
            readable(child)


def install(staged: Path, target: Path) -> None:
    """Move a finished file or folder into place, replacing any previous copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _make_readable(staged)
    if staged.is_file():
        staged.replace(target)
        return
    if target.exists():
        trash = target.with_name(f"{TMP_PREFIX}old-{target.name}-{os.getpid()}")
        target.replace(trash)
        staged.replace(target)
        shutil.rmtree(trash, ignore_errors=True)
        return
    staged.replace(target)


def write_text_atomic(target: Path, text: str) -> None:
    """Write a text file through a temporary name and an atomic rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.name}-", dir=target.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    readable(Path(tmp)).replace(target)


def remove_leftovers(folders: set[Path]) -> None:
    """Delete `.tmp-*` files and folders that an interrupted pull left in these folders.

    Only the folders we write into are swept (not recursively), so a cache dir pointed at a shared
    place such as /tmp never loses anything else.
    """
    leftovers = [p for folder in folders if folder.is_dir() for p in folder.glob(f"{TMP_PREFIX}*")]
    for leftover in leftovers:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


@contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """Exclusive lock on the cache dir so two pulls never build the same asset at once."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another pull holds %s; waiting for it to finish", cache_dir / ".lock")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
