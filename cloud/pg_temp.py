"""A throwaway PostgreSQL server for `vau-cloud bench-load --store temp`: Debian's `initdb` and
`postgres` (`apt-get install postgresql`) in a temporary directory on a free loopback port, trust
authentication for the user `vau`, the server's durable defaults (fsync and synchronous_commit on,
as a production database) except `max_wal_size` (4 GB, as a write-heavy site would set it: at the
~40 MB/s of WAL that 400 token records/s make, the 1 GB default forces a checkpoint every ~25 s).
As root it runs as the `postgres` user the package creates."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

PG_ROOT = Path("/usr/lib/postgresql")


class TempPostgresError(Exception):
    """No server could be started; the message says what to install or pass instead."""


def pg_bin() -> Path:
    """The newest /usr/lib/postgresql/<ver>/bin with initdb and postgres, else the PATH's."""
    found = sorted(
        PG_ROOT.glob("*/bin/initdb"),
        key=lambda p: tuple(int(x) for x in p.parent.parent.name.split(".") if x.isdigit()),
    )
    for initdb in reversed(found):
        if (initdb.parent / "postgres").is_file():
            return initdb.parent
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).parent
    raise TempPostgresError(
        "no PostgreSQL server binaries (initdb, postgres): apt-get install postgresql, or pass "
        "--store postgresql://USER@HOST/DB of a running server"
    )


class TempPostgres:
    """`with TempPostgres() as pg:` pg.url, pg.pid (the postmaster); removed on exit."""

    def __init__(self) -> None:
        self.bindir = pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="vau-bench-pg-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.user: dict[str, object] = {}
        if os.geteuid() == 0:  # initdb refuses root
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise TempPostgresError("running as root without a `postgres` user") from None
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://vau@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> TempPostgres:
        data = self.dir / "data"
        subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(data), "-U", "vau", "--auth=trust", "-E",
             "UTF8"], check=True, capture_output=True, timeout=120, cwd=self.dir, **self.user,
        )  # type: ignore[call-overload]  # fmt: skip
        log = (self.dir / "postgres.log").open("ab")
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-h",
             "127.0.0.1", "-k", str(self.dir), "-c", "max_connections=200", "-c",
             "max_wal_size=4GB"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, **self.user,
        )  # type: ignore[call-overload]  # fmt: skip
        ready = [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TempPostgresError(f"postgres exited; see {self.dir / 'postgres.log'}")
            if subprocess.run(ready, capture_output=True).returncode == 0:
                return self
            time.sleep(0.1)
        raise TempPostgresError("postgres did not accept connections within 30 s")

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its live children (a postmaster and its backends)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
