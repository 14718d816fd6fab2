"""Alembic environment: runs the library migrations on the connection specsoil passes in."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from specsoil.library._schema import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, sa.Connection):
    raise RuntimeError(
        "the specsoil library migrations run through specsoil.library (init_library), "
        "which passes the connection; there is no alembic.ini"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: later revisions rebuild tables in batch mode.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
