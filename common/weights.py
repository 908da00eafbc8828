"""Weights files on disk. safetensors writes its files owner-only (0600) whatever the umask, while
the JSON written beside them is 0644: a normality model, a head or a projector saved by one user
could then not be read by the services and people that share the box (the edge run as a service
user, a backup, the cloud under another account). Every writer passes its file through
`readable` before moving it into place."""

from __future__ import annotations

from pathlib import Path

MODE = 0o644  # rw-r--r--, as the project's other written files (`vau.assets.fsutil`)


def readable(path: Path) -> Path:
    """`path` with MODE; returned for chaining."""
    path.chmod(MODE)
    return path
