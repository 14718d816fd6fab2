"""Library URLs as data sources: ``read_data("sqlite:///lib.db", where=[...])`` reads a library.

Importing :mod:`specsoil.library` registers :func:`open_library_source` for every library
scheme with :func:`specsoil.data.register_data_source`, so the CLI's ``--data``, the
operations and the web service all read a library the way they read a file.
"""

from __future__ import annotations

from specsoil.data import DataOptions, DataRead, register_data_source
from specsoil.library._urls import LIBRARY_SCHEMES


def open_library_source(url: str, options: DataOptions) -> DataRead:
    """Read the library at ``url`` with the filters in ``options``.

    A library stores absorbance, so the table options (``spectra_kind`` and the like) do
    not apply and are not used.

    Raises:
        SpecsoilError: If the database cannot be reached or read.
    """
    # Imported here: SQLAlchemy (the library extra) is needed only for library URLs.
    from specsoil.library._read import read_library

    table = read_library(
        url, instrument=options.instrument, properties=options.properties, where=options.where
    )
    return DataRead(table)


def register_library_sources() -> None:
    """Register the library schemes once (importing the package calls this)."""
    for scheme in LIBRARY_SCHEMES:
        register_data_source(scheme, open_library_source)
