"""Opening a library: URLs, engines, schema migrations and the schema-version check."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from specsoil._errors import SpecsoilError

logger = logging.getLogger(__name__)
# Alembic narrates every step at INFO; specsoil reports what matters itself.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# How long a writer waits for another one to finish, in seconds (SQLite busy timeout).
BUSY_TIMEOUT_S = 120.0
# The advisory lock every writer of a PostgreSQL library takes ("specsoil" in ASCII).
LOCK_KEY = 0x73706563736F696C


def parse_url(url: str) -> sa.URL:
    """Parse a library URL; ``postgresql://`` uses the psycopg (3) driver.

    Raises:
        SpecsoilError: If the URL is malformed or names an unsupported database.
    """
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        masked = re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)
        raise SpecsoilError(
            f"{masked!r} is not a database URL; expected sqlite:///path.db or "
            "postgresql://user@host/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
        parsed = parsed.set(drivername="postgresql")
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend not in ("sqlite", "postgresql"):
        raise SpecsoilError(
            f"{safe_url(parsed)}: a library lives in SQLite or PostgreSQL; "
            "expected sqlite:///path.db or postgresql://user@host/dbname"
        )
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise SpecsoilError(
            f"{safe_url(parsed)}: a SQLite library needs a file, e.g. sqlite:///library.db"
        )
    return parsed


def safe_url(url: sa.URL | str) -> str:
    """The URL as text with any password masked, for messages."""
    if isinstance(url, str):
        try:
            url = sa.make_url(url)
        except (sa.exc.ArgumentError, ValueError):
            return "<malformed URL>"
    return url.render_as_string(hide_password=True)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is off, so "begin" below decides the lock.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one writer writes; the busy timeout makes a second
    # writer wait its turn instead of failing.
    cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _on_sqlite_begin(connection: sa.Connection) -> None:
    # A writer takes the write lock up front (IMMEDIATE): two importers queue on the busy
    # timeout rather than both reading and then deadlocking on the upgrade to a write lock.
    # Readers begin deferred and never block writers (WAL).
    immediate = connection.get_execution_options().get(_WRITER, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_WRITER = "specsoil_library_writer"


@contextlib.contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """Yield a connection in a transaction that holds the library's write lock.

    SQLite: ``BEGIN IMMEDIATE`` (one writer at a time, others wait up to the busy timeout).
    PostgreSQL: a transaction-scoped advisory lock, so concurrent imports queue instead of
    racing on the unique keys or deadlocking. Commits on success, rolls back on any error.
    """
    with engine.connect() as connection:
        connection = connection.execution_options(**{_WRITER: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
            yield connection


def create_library_engine(url: str, *, must_exist: bool) -> sa.Engine:
    """An engine for the library at ``url``.

    Args:
        url: ``sqlite:///path.db`` or ``postgresql://user@host/dbname``.
        must_exist: For SQLite, refuse a file that does not exist instead of creating it.

    Raises:
        SpecsoilError: If the URL is bad or a SQLite file is missing and must exist.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(str(parsed.database))
        if must_exist and not path.is_file():
            raise SpecsoilError(
                f"{safe_url(parsed)}: no such library file {path}; "
                "create it with specsoil library init"
            )
        engine = sa.create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S})
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        sa.event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


@contextlib.contextmanager
def open_library(url: str, *, write: bool) -> Iterator[sa.Engine]:
    """Yield an engine on an up-to-date library; writing creates or upgrades the schema.

    Args:
        url: The library URL.
        write: True for init and import: create the tables or upgrade an older schema.
            False for reading: the library must exist at this specsoil's schema.

    Raises:
        SpecsoilError: If the database cannot be reached, holds no library (reading), or was
            written by a newer specsoil.
    """
    engine = create_library_engine(url, must_exist=not write)
    try:
        with _reachable(engine):
            current = schema_revision(engine)
        head = head_revision()
        if current is not None and current not in known_revisions():
            raise SpecsoilError(
                f"{safe_url(engine.url)}: this library was written by a newer specsoil "
                f"(schema {current}; this specsoil knows up to {head}); upgrade specsoil"
            )
        if current != head:
            if not write:
                if current is None:
                    raise SpecsoilError(
                        f"{safe_url(engine.url)}: holds no specsoil library; "
                        "create one with specsoil library init"
                    )
                raise SpecsoilError(
                    f"{safe_url(engine.url)}: the library has schema {current}, older than "
                    f"this specsoil's {head}; upgrade it with specsoil library init"
                )
            with _reachable(engine):
                upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def _reachable(engine: sa.Engine) -> Iterator[None]:
    """Turn a failure to connect into a SpecsoilError that shows no password."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        password = engine.url.password
        if password:
            reason = reason.replace(str(password), "***")
        raise SpecsoilError(f"{safe_url(engine.url)}: cannot open the library: {reason}") from None


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config built in code: no alembic.ini is needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this specsoil knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None  # the package ships at least one revision
    return head


def known_revisions() -> set[str]:
    """Every schema revision this specsoil knows."""
    script = ScriptDirectory.from_config(_alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def schema_revision(engine: sa.Engine) -> str | None:
    """The library's schema revision, or None for a database without a library."""
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        connection.rollback()
    return revision


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` in one locked transaction (DDL is transactional)."""
    with write_transaction(engine) as connection:
        command.upgrade(_alembic_config(connection), revision)


def init_library(url: str) -> str:
    """Create the library at ``url``, or upgrade an older one in place.

    Returns:
        The schema revision the library now has.

    Raises:
        SpecsoilError: If the database cannot be reached or was written by a newer specsoil.
    """
    with open_library(url, write=True) as engine:
        revision = schema_revision(engine)
    return str(revision)
