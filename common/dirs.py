"""Folders the user names for data (`--data-dir`): created when missing, refused with one line that
says what to change when they cannot be (a file in the way, no permission, a read-only disk)."""

from __future__ import annotations

import os
from pathlib import Path


class DataDirError(Exception):
    """A data folder cannot be used; the message names it and the fix."""


def ensure_data_dir(path: Path, flag: str = "--data-dir") -> Path:
    """Create `path` (and its parents) if missing; DataDirError unless it is a writable folder.
    `flag` is how the user sets it, for the message (e.g. "--data-dir (uplink.data_dir)")."""
    blocker = _file_in_the_way(path)
    if blocker is not None:
        why = "is a file" if blocker == path else f"cannot be created: {blocker} is a file"
        raise DataDirError(f"data folder {path} {why}; pass a folder as {flag}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(
            f"data folder {path} cannot be created ({exc.strerror}); pass a folder you can write "
            f"to as {flag}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(
            f"data folder {path} is not writable; pass a folder you can write to as {flag}"
        )
    return path


def _file_in_the_way(path: Path) -> Path | None:
    """`path` or the nearest of its parents that exists, when that is not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None
