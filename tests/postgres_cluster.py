"""A throwaway PostgreSQL server for the tests: one cluster per pytest process (xdist worker).

The cluster lives in a temp folder (data, log and unix socket) and listens on a free
loopback port. PostgreSQL refuses to run as root, so under root the server runs as the
unprivileged ``nobody``. The tests that need it are skipped only when no server binary
exists.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SEARCHED = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"))]
USER = "specsoil"


def server_binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None."""
    override = os.environ.get("SPECSOIL_PG_BIN")
    found = shutil.which("pg_ctl")
    folders = [Path(override)] if override else []
    folders += [*SEARCHED, *([Path(found).parent] if found else [])]
    for folder in folders:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running cluster; each test gets its own database from :meth:`new_database`."""

    port: int
    names: Iterator[int]

    def url(self, database: str, *, driver: str = "postgresql") -> str:
        return f"{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database and return its ``postgresql://`` URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self.names)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _run(command: list[str], as_user: list[str], cwd: Path) -> None:
    result = subprocess.run(
        [*as_user, *command], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()}")


@contextlib.contextmanager
def running_postgres(binaries: Path) -> Iterator[PostgresServer]:
    """Start a cluster from ``binaries`` in a temp folder; stop and delete it on exit."""
    root = Path(tempfile.mkdtemp(prefix="specsoil-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    data = root / "data"
    started = False
    try:
        _run(
            [str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            as_user, root,
        )  # fmt: skip
        for attempt in range(5):
            port = _free_port()
            options = (
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
            )
            try:
                _run(
                    [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                     "-w", "-t", "60", "-o", options, "start"],
                    as_user, root,
                )  # fmt: skip
                started = True
                break
            except RuntimeError:  # another process took the port meanwhile
                if attempt == 4:
                    raise
        yield PostgresServer(port=port, names=itertools.count())
    finally:
        if started:
            subprocess.run(
                [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                cwd=root, capture_output=True, check=False,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for this test process (each xdist worker starts its own)."""
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres) in "
            f"{[str(f) for f in SEARCHED]} or on PATH; set SPECSOIL_PG_BIN to their folder"
        )
    with running_postgres(binaries) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def library_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'library.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()
