"""A real PostgreSQL server for tests, from Debian's packages (`apt-get install postgresql`):
initdb + postgres in a temporary directory on a free loopback port, trust authentication for the
user `vau`. As root (initdb refuses root) it runs as the `postgres` user the package creates
(subprocess's user=/group=), in a directory that user owns. `create_database()` gives each test
a fresh database."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ROOT = Path("/usr/lib/postgresql")
SKIP_REASON = (
    "PostgreSQL server binaries (initdb, postgres) are not installed; CI installs them: "
    "apt-get install postgresql"
)


def pg_bin() -> Path | None:
    """The newest installed /usr/lib/postgresql/<ver>/bin holding initdb and postgres."""
    found = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: _version(p.parent.parent.name))
    for initdb in reversed(found):
        if (initdb.parent / "postgres").is_file():
            return initdb.parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("postgres") else None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One server; `url(db)` names a database on it, `create_database()` makes a fresh one."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="vau-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.uid: int | None = None  # as root: the postgres user's ids
        self.gid: int | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no `postgres` user to run PostgreSQL")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.uid, self.gid = owner.pw_uid, owner.pw_gid
        self._names = itertools.count(1)

    def start(self, timeout: float = 30.0) -> PostgresServer:
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "vau"]
        subprocess.run(
            [*initdb, "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.dir,
            user=self.uid,
            group=self.gid,
            extra_groups=None if self.uid is None else [],
        )
        options = ["-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1", "-k"]
        options += [str(self.dir), "-c", "fsync=off", "-c", "max_connections=200"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), *options],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                user=self.uid,
                group=self.gid,
                extra_groups=None if self.uid is None else [],
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log.read_text()[-2000:]}")
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not start: {self.log.read_text()[-2000:]}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://vau@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: smart shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_postgres() -> Iterator[PostgresServer]:
    """The body of a session fixture: skips (with the reason) only when the binaries are absent."""
    bindir = pg_bin()
    if bindir is None:
        pytest.skip(SKIP_REASON)
    server = PostgresServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()
