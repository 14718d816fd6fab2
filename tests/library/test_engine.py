"""Opening libraries: URLs, migrations, schema versions and unreachable servers."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from specsoil._errors import SpecsoilError
from specsoil.library import (
    Base,
    head_revision,
    import_table,
    init_library,
    is_library_url,
    list_library,
    parse_url,
    read_library,
)
from specsoil.library._engine import create_library_engine


def test_init_creates_the_schema_and_is_idempotent(library_url):
    assert init_library(library_url) == head_revision() == "0001"
    assert init_library(library_url) == "0001"
    summary = list_library(library_url)
    assert (summary.n_spectra, summary.schema) == (0, "0001")


def test_migrations_build_exactly_the_orm_tables(library_url):
    init_library(library_url)
    engine = create_library_engine(library_url, must_exist=True)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_sqlite_library_is_in_wal_mode(tmp_path):
    url = f"sqlite:///{tmp_path / 'lib.db'}"
    init_library(url)
    engine = create_library_engine(url, must_exist=True)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 60000
    engine.dispose()


def _stamp(url: str, revision: str) -> None:
    engine = create_library_engine(url, must_exist=True)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    engine.dispose()


def test_newer_schema_is_refused(library_url, geeves_small):
    import_table(library_url, geeves_small)
    _stamp(library_url, "0099")
    message = r"written by a newer specsoil \(schema 0099; .*\); upgrade specsoil"
    for action in (
        lambda: read_library(library_url),
        lambda: import_table(library_url, geeves_small),
        lambda: init_library(library_url),
        lambda: list_library(library_url),
    ):
        with pytest.raises(SpecsoilError, match=message):
            action()


def test_reading_a_missing_sqlite_file_creates_nothing(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(SpecsoilError, match="no such library file"):
        read_library(f"sqlite:///{path}")
    assert not path.exists()


def test_reading_a_database_without_a_library(postgres_server):
    url = postgres_server.new_database()
    with pytest.raises(SpecsoilError, match="holds no specsoil library; create one with"):
        list_library(url)


def test_unreachable_server_names_no_password():
    with socket_closed_port() as port:
        url = f"postgresql://user:s3cret@127.0.0.1:{port}/lib"
        with pytest.raises(SpecsoilError, match="cannot open the library") as info:
            list_library(url)
    assert "s3cret" not in str(info.value)
    assert "***" in str(info.value)


class socket_closed_port:
    """A loopback port that nothing listens on."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("mysql://u@h/db", "lives in SQLite or PostgreSQL"),
        ("sqlite://", "needs a file"),
        ("sqlite:///:memory:", "needs a file"),
        ("postgresql://u@h:notaport/db", "is not a database URL"),
    ],
)
def test_bad_urls(url, match):
    with pytest.raises(SpecsoilError, match=match):
        parse_url(url)


def test_postgresql_urls_use_psycopg():
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sqlite:///lib.db", True),
        ("postgresql://u@h/db", True),
        ("postgresql+psycopg://u@h/db", True),
        ("POSTGRES://u@h/db", True),
        ("lib.db", False),
        ("geeves", False),
        ("s3://bucket/table.parquet", False),
    ],
)
def test_is_library_url(source, expected):
    assert is_library_url(source) is expected


def test_cli_and_plain_files_need_no_sqlalchemy():
    """Importing the CLI (and reading files through it) must work without the library extra."""
    code = (
        "import sys, specsoil.cli, specsoil.library; "
        "assert 'sqlalchemy' not in sys.modules and 'alembic' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
