"""Damaged caches are detected by `verify` and rebuilt by `pull`."""

from __future__ import annotations

from pathlib import Path

from vau.assets import load_manifest, pull, verify
from vau.assets.fsutil import sha256_file
from vau.assets.manifest import manifest_path


def _truncate(path: Path, keep: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_verify_passes_on_an_intact_copy(footage_cache: Path) -> None:
    assert verify(footage_cache) == []


def test_verify_reports_a_truncated_file(footage_cache: Path) -> None:
    _truncate(footage_cache / "footage" / "bikes.mp4", 1000)

    problems = verify(footage_cache)

    assert len(problems) == 1
    assert "bikes.mp4" in problems[0]
    assert "bytes" in problems[0]


def test_verify_reports_same_size_corruption(footage_cache: Path) -> None:
    path = footage_cache / "footage" / "bikes.mp4"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    assert verify(footage_cache) == ["bikes.mp4: bikes.mp4 does not match its sha256"]


def test_verify_reports_a_deleted_file(footage_cache: Path) -> None:
    (footage_cache / "footage" / "vtest.avi").unlink()

    problems = verify(footage_cache)

    assert problems == ["vtest.avi: footage/vtest.avi is missing"]


def test_verify_reports_an_unreadable_manifest(footage_cache: Path) -> None:
    manifest_path(footage_cache).write_text("{not json", encoding="utf-8")

    problems = verify(footage_cache)

    assert len(problems) == 1
    assert "not a valid manifest" in problems[0]


def test_verify_of_an_empty_cache_says_to_pull(tmp_path: Path) -> None:
    assert verify(tmp_path) == [f"nothing has been pulled into {tmp_path}; run `vau-models pull`"]


def test_pull_rebuilds_a_truncated_asset(footage_cache: Path) -> None:
    bikes = footage_cache / "footage" / "bikes.mp4"
    expected = sha256_file(bikes)
    _truncate(bikes, 1000)

    pull(["footage"], footage_cache)

    assert sha256_file(bikes) == expected
    assert verify(footage_cache) == []
    assert load_manifest(footage_cache).assets["bikes.mp4"].files["bikes.mp4"].sha256 == expected


def test_pull_removes_leftovers_of_an_interrupted_pull(footage_cache: Path) -> None:
    leftover_dir = footage_cache / ".tmp-dinov2-abc"
    leftover_dir.mkdir()
    (leftover_dir / "model.safetensors").write_bytes(b"half")
    leftover_file = footage_cache / "footage" / ".tmp-manifest.json-xyz"
    leftover_file.write_text("{", encoding="utf-8")

    pull(["footage"], footage_cache)

    assert not leftover_dir.exists()
    assert not leftover_file.exists()
