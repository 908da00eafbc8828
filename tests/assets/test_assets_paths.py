"""`default_cache_dir`, `asset_path` and `resolve_model`."""

from __future__ import annotations

from pathlib import Path

import pytest

from vau.assets import (
    AssetError,
    AssetMissingError,
    asset_path,
    default_cache_dir,
    resolve_model,
)


def test_default_cache_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VAU_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path


def test_default_cache_dir_is_under_home_without_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VAU_CACHE_DIR", raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "vau"


def test_asset_path_when_missing_says_which_pull_to_run(tmp_path: Path) -> None:
    with pytest.raises(AssetMissingError) as caught:
        asset_path("dinov2-s14-onnx", tmp_path)

    message = str(caught.value)
    assert f"vau-models pull --only dinov2 --cache-dir {tmp_path}" in message


def test_asset_path_when_missing_from_default_cache_omits_cache_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VAU_CACHE_DIR", str(tmp_path))
    with pytest.raises(AssetMissingError, match=r"run `vau-models pull --only footage`"):
        asset_path("bikes.mp4")


def test_asset_path_when_file_exists_but_manifest_lacks_it_is_missing(tmp_path: Path) -> None:
    stray = tmp_path / "footage" / "bikes.mp4"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left by an interrupted pull")

    with pytest.raises(AssetMissingError):
        asset_path("bikes.mp4", tmp_path)


def test_asset_errors_share_one_base_class() -> None:
    assert issubclass(AssetMissingError, AssetError)
    assert issubclass(AssetError, Exception)


def test_asset_path_of_an_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match=r"known assets: .*dinov2-s14"):
        asset_path("dinov3", tmp_path)


def test_asset_path_returns_the_pulled_folder_and_files(pulled_cache: Path) -> None:
    assert asset_path("dinov2-s14") == pulled_cache / "dinov2-s14"
    assert asset_path("dinov2-s14-onnx") == pulled_cache / "dinov2-s14-224.onnx"
    assert asset_path("smollm2-135m-instruct").joinpath("config.json").is_file()
    assert asset_path("vtest.avi").name == "vtest.avi"
    assert asset_path("bikes.mp4", pulled_cache).is_file()


def test_resolve_model_returns_an_existing_local_path(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert resolve_model(str(folder)) == folder


def test_resolve_model_prefers_a_local_path_over_an_asset_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dinov2-s14").mkdir()
    assert resolve_model("dinov2-s14") == Path("dinov2-s14")


def test_resolve_model_returns_the_cached_asset_for_an_asset_name(pulled_cache: Path) -> None:
    assert resolve_model("dinov2-s14") == pulled_cache / "dinov2-s14"
    assert resolve_model("smollm2-135m-instruct", pulled_cache) == (
        pulled_cache / "smollm2-135m-instruct"
    )


def test_resolve_model_returns_a_hub_id_unchanged(tmp_path: Path) -> None:
    assert resolve_model("facebook/dinov2-small", tmp_path) == "facebook/dinov2-small"


def test_resolve_model_of_an_unpulled_asset_raises_missing(tmp_path: Path) -> None:
    with pytest.raises(AssetMissingError, match="vau-models pull --only smollm2"):
        resolve_model("smollm2-135m-instruct", tmp_path)
