"""Which packages to install, found at build time so that no hand-kept list goes stale.

pyproject.toml maps the repository's top folders into one namespace (edge/ -> vau.edge, ...).
Every folder with an __init__.py below them is a package, and so is every folder holding files
that pyproject's package-data ships (edge/heads/default, the review page's web/): setuptools
wants those listed as packages too, and warns otherwise. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
ROOTS = ("common", "edge", "cloud", "export", "protos", "assets")  # <root>/ is vau.<root>


def code_packages() -> dict[str, Path]:
    """vau.<root>[.<sub>] -> its folder, for every folder with an __init__.py under the roots."""
    found = {f"vau.{root}": HERE / root for root in ROOTS}
    for root in ROOTS:
        for sub in find_packages(str(HERE / root)):
            found[f"vau.{root}.{sub}"] = HERE / root / sub.replace(".", "/")
    return found


def data_packages(code: dict[str, Path]) -> set[str]:
    """Dotted names of the folders below a package that hold files its package-data ships."""
    pyproject = tomllib.loads((HERE / "pyproject.toml").read_text("utf-8"))
    globs: dict[str, list[str]] = pyproject["tool"]["setuptools"].get("package-data", {})
    names = set()
    for name, folder in code.items():
        for pattern in [*globs.get("*", []), *globs.get(name, [])]:
            for file in folder.glob(pattern):
                inside = file.parent.relative_to(folder).parts
                if file.is_file() and inside:
                    names.add(".".join((name, *inside)))
    return names - set(code)


def vau_packages() -> list[str]:
    code = code_packages()
    return sorted({*code, *data_packages(code)})


if __name__ == "__main__":
    setup(packages=vau_packages(), package_dir={f"vau.{root}": root for root in ROOTS})
