"""The install ships every package: setup.py finds them (no hand list to go stale), and building
the wheel gives no setuptools warning about folders left out of `packages`."""

from __future__ import annotations

import runpy
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUP = runpy.run_path(str(REPO / "setup.py"), run_name="vau_setup_check")
ROOTS: tuple[str, ...] = SETUP["ROOTS"]


def package_folders() -> set[str]:
    """vau.* names of every folder with an __init__.py under the mapped roots."""
    return {
        ".".join(("vau", *init.parent.relative_to(REPO).parts))
        for root in ROOTS
        for init in (REPO / root).rglob("__init__.py")
        if "node_modules" not in init.parts
    }


def test_every_folder_with_init_py_and_the_default_head_are_packages() -> None:
    packages = set(SETUP["vau_packages"]())
    assert package_folders() <= packages
    assert {"vau.edge.normality", "vau.edge.scoring", "vau.edge.heads.default"} <= packages


def test_wheel_builds_without_package_warnings_and_holds_the_code_and_data(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for root in ROOTS:
        shutil.copytree(REPO / root, src / root, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*pip, "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "absent from the `packages`" not in done.stdout + done.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [
        "vau/edge/normality/store.py",
        "vau/edge/scoring/base.py",
        "vau/protos/v1/uplink_pb2.py",
    ]
    assert set(shipped) | {"vau/edge/heads/default/head.safetensors"} <= names
