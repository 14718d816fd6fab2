"""A spectral library database: scans, samples, sites, instruments and lab values.

The library lives in SQLite (one machine) or PostgreSQL (a team) and is reached by URL:
``sqlite:///library.db`` or ``postgresql://user@host/dbname``. Its schema is managed by
the Alembic migrations in ``migrations/``, so a newer specsoil upgrades a library in place;
further tables (model registry, jobs) come as new revisions.

Importing this package does not import SQLAlchemy: the names that need it (the ``library``
extra) load on first use. Importing it registers the library URL schemes as data sources
of :func:`specsoil.data.read_data`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specsoil.library._source import open_library_source, register_library_sources
from specsoil.library._urls import is_library_url

if TYPE_CHECKING:
    from specsoil.library._engine import (
        head_revision,
        init_library,
        open_library,
        parse_url,
        safe_url,
    )
    from specsoil.library._import import ImportReport, file_sha256, import_table
    from specsoil.library._read import LibrarySummary, export_library, list_library, read_library
    from specsoil.library._schema import Base
    from specsoil.library._where import parse_where, where_mask

__all__ = [
    "Base",
    "ImportReport",
    "LibrarySummary",
    "export_library",
    "file_sha256",
    "head_revision",
    "import_table",
    "init_library",
    "is_library_url",
    "list_library",
    "open_library",
    "open_library_source",
    "parse_url",
    "parse_where",
    "read_library",
    "safe_url",
    "where_mask",
]

# Names that need SQLAlchemy are loaded on first access (PEP 562).
_LAZY = {
    "head_revision": "specsoil.library._engine",
    "open_library": "specsoil.library._engine",
    "parse_url": "specsoil.library._engine",
    "safe_url": "specsoil.library._engine",
    "ImportReport": "specsoil.library._import",
    "file_sha256": "specsoil.library._import",
    "import_table": "specsoil.library._import",
    "LibrarySummary": "specsoil.library._read",
    "export_library": "specsoil.library._read",
    "list_library": "specsoil.library._read",
    "read_library": "specsoil.library._read",
    "Base": "specsoil.library._schema",
    "parse_where": "specsoil.library._where",
    "where_mask": "specsoil.library._where",
    "init_library": "specsoil.library._engine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        try:
            module = importlib.import_module(_LAZY[name])
        except ModuleNotFoundError as exc:
            from specsoil._errors import SpecsoilError

            raise SpecsoilError(
                f"the spectral library needs {exc.name}: pip install 'specsoil[library]'"
            ) from None
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register_library_sources()
