"""A throwaway PostgreSQL server: Debian's `initdb` and `postgres` (`apt-get install postgresql`)
in a temporary directory on a free loopback port, trust authentication for the user `vau`. As root
(initdb refuses root) it runs as the `postgres` user the package creates, in a directory that user
owns. `vau-cloud bench-load --store temp` starts one, and so do the tests
(`tests/support/postgres.py`); `create_database()` gives each test a fresh database.

`durable=True` (the bench) keeps the server's durable defaults (fsync and synchronous_commit on, as
a production database) except `max_wal_size` (4 GB, as a write-heavy site would set it: at the
~40 MB/s of WAL that 400 token records/s make, the 1 GB default forces a checkpoint every ~25 s).
`durable=False` (the tests) turns fsync off: faster, and a test's data need not survive a crash
of the machine.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

PG_ROOT = Path("/usr/lib/postgresql")
DURABLE = ("max_wal_size=4GB",)
NOT_DURABLE = ("fsync=off",)


class TempPostgresError(Exception):
    """No server could be started; the message says what to install or pass instead."""


def find_pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<ver>/bin with initdb and postgres, else the PATH's."""
    found = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: _version(p.parent.parent.name))
    for initdb in reversed(found):
        if (initdb.parent / "postgres").is_file():
            return initdb.parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("postgres") else None


def pg_bin() -> Path:
    """`find_pg_bin`, or TempPostgresError saying what to install."""
    found = find_pg_bin()
    if found is None:
        raise TempPostgresError(
            "no PostgreSQL server binaries (initdb, postgres): apt-get install postgresql, or "
            "pass --store postgresql://USER@HOST/DB of a running server"
        )
    return found


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """`with TempPostgres() as pg:` (or `start()` / `stop()`): `pg.url()`, `pg.pid` (the
    postmaster), `pg.create_database()`; the directory is removed at the end."""

    def __init__(self, *, durable: bool = True) -> None:
        self.bindir = pg_bin()
        self.durable = durable
        self.dir = Path(tempfile.mkdtemp(prefix="vau-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}  # as root: run as the postgres user
        self._names = itertools.count(1)
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise TempPostgresError(
                    "running as root and there is no `postgres` user to run PostgreSQL"
                ) from None
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://vau@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> TempPostgres:
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "vau", "--auth=trust"]
        initdb += ["-E", "UTF8", *(() if self.durable else ("--no-sync",))]
        subprocess.run(
            initdb, check=True, capture_output=True, timeout=120, cwd=self.dir, **self._as
        )
        settings = ["max_connections=200", *(DURABLE if self.durable else NOT_DURABLE)]
        options = ["-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1"]
        options += ["-k", str(self.dir), *(a for s in settings for a in ("-c", s))]
        with self.log.open("ab") as out:
            postgres = [str(self.bindir / "postgres"), *options]
            self.proc = subprocess.Popen(
                postgres, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir, **self._as
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        ready = [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise TempPostgresError(f"postgres exited: {self.log.read_text()[-2000:]}")
            if subprocess.run(ready, capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise TempPostgresError(f"postgres did not accept connections within {timeout:.0f} s")

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        return self.url(name)

    def stop(self) -> None:
        """SIGTERM (a smart shutdown), SIGKILL after 30 s; then remove the directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


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
