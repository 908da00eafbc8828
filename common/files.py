"""Files the project writes are readable by the box's other users (0644): the edge run as a
service user, a backup or the cloud under another account read what one user saved. Writers
whose library picks a tighter mode pass the file through `readable` before moving it into place:
safetensors writes owner-only (0600) whatever the umask, so a normality model, a head or a
projector would otherwise be unreadable beside its 0644 JSON; the asset installer does the same
for what it stages in scratch folders (`vau.assets.fsutil`)."""

from __future__ import annotations

from pathlib import Path

MODE = 0o644  # rw-r--r--


def readable(path: Path) -> Path:
    """`path` with MODE; returned for chaining."""
    path.chmod(MODE)
    return path
