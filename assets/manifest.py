"""`DIR/manifest.json`: what is in the cache, its checksums, provenance and check results."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vau.assets.catalog import AssetSpec, Source
from vau.assets.errors import AssetCorruptError
from vau.assets.fsutil import files_under, sha256_file, write_text_atomic

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

Detail = float | int | str | bool


class FileRecord(BaseModel):
    """One file's size and sha256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(ge=0, description="size in bytes")
    sha256: str = Field(min_length=64, max_length=64, description="hex sha256")


class Provenance(BaseModel):
    """Where an asset came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registry: str = Field(description="'pypi' or 'debian'")
    package: str
    version: str
    member: str = Field(description="path of the source file inside the wheel or .deb")
    licence: str
    source_sha256: str = Field(default="", description="sha256 of the source file as extracted")
    note: str = ""

    @classmethod
    def of(cls, src: Source, extracted: Path, version: str | None = None) -> Provenance:
        """Provenance of a file extracted from `src` (`version`: what was actually served)."""
        return cls(
            registry=src.registry,
            package=src.package,
            version=src.version if version is None else version,
            member=src.member.removeprefix("./"),
            licence=src.licence,
            source_sha256=sha256_file(extracted),
            note=src.note,
        )


class AssetRecord(BaseModel):
    """One cached asset: its path (relative to the cache dir), files and facts about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    group: str
    path: str = Field(description="path relative to the cache dir")
    files: dict[str, FileRecord] = Field(description="relative file name -> checksum")
    provenance: Provenance
    details: dict[str, Detail] = Field(default_factory=dict, description="probes, parity figures")


class Manifest(BaseModel):
    """The whole cache's manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = MANIFEST_VERSION
    assets: dict[str, AssetRecord] = Field(default_factory=dict)

    def with_records(self, records: list[AssetRecord]) -> Manifest:
        """A copy with these records added or replaced."""
        merged = dict(self.assets)
        merged.update({record.name: record for record in records})
        return Manifest(version=self.version, assets=dict(sorted(merged.items())))


def manifest_path(cache_dir: Path) -> Path:
    return cache_dir / MANIFEST_NAME


def load_manifest(cache_dir: Path) -> Manifest:
    """The cache's manifest, or an empty one when there is none yet."""
    path = manifest_path(cache_dir)
    if not path.is_file():
        return Manifest()
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise AssetCorruptError(
            f"{path} is not a valid manifest ({exc.error_count()} errors); run `vau-models pull`"
        ) from None


def save_manifest(cache_dir: Path, manifest: Manifest) -> None:
    write_text_atomic(manifest_path(cache_dir), manifest.model_dump_json(indent=2) + "\n")


def record_for(
    spec: AssetSpec,
    cache_dir: Path,
    provenance: Provenance,
    details: dict[str, Detail] | None = None,
) -> AssetRecord:
    """Checksum an installed asset and describe it."""
    files = {
        name: FileRecord(size=path.stat().st_size, sha256=sha256_file(path))
        for name, path in files_under(cache_dir / spec.relpath).items()
    }
    return AssetRecord(
        name=spec.name,
        group=spec.group,
        path=spec.relpath,
        files=files,
        provenance=provenance,
        details=details or {},
    )


def problems_with(record: AssetRecord, cache_dir: Path) -> list[str]:
    """Why an installed asset does not match its record (empty when it does)."""
    root = cache_dir / record.path
    if not root.exists():
        return [f"{record.name}: {record.path} is missing"]
    found = files_under(root)
    problems: list[str] = []
    for name, expected in record.files.items():
        path = found.get(name)
        if path is None:
            problems.append(f"{record.name}: {name} is missing")
        elif path.stat().st_size != expected.size:
            problems.append(
                f"{record.name}: {name} has {path.stat().st_size} bytes, expected {expected.size}"
            )
        elif sha256_file(path) != expected.sha256:
            problems.append(f"{record.name}: {name} does not match its sha256")
    return problems
