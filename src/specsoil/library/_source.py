"""One entry point for ``--data``: a table file, a bundled dataset's file or a library URL."""

from __future__ import annotations

import os
from collections.abc import Sequence

from specsoil.data import CensoredPolicy, SpectraKind, SpectraTable, read_spectra
from specsoil.library._urls import is_library_url


def load_data_source(
    source: str | os.PathLike[str],
    *,
    spectra_kind: SpectraKind | None = None,
    drop_invalid: bool = False,
    spectral_columns: str | None = None,
    censored: CensoredPolicy = "missing",
    instrument: str | Sequence[str] | None = None,
    properties: str | Sequence[str] | None = None,
    where: str | Sequence[str] | None = None,
) -> SpectraTable:
    """Read spectra from a library URL (``sqlite://``, ``postgresql://``) or a table file.

    Args:
        source: A library URL, or anything ``read_spectra`` reads.
        spectra_kind: For files, as ``read_spectra``; a library's spectra are absorbance.
        drop_invalid: For files, as ``read_spectra``.
        spectral_columns: For files, as ``read_spectra``.
        censored: For files, as ``read_spectra``.
        instrument: For a library, keep these instruments' scans.
        properties: For a library, keep these properties.
        where: For a library, conditions on metadata (see ``read_library``).

    Raises:
        SpecsoilError: If the source cannot be read, or library filters are given for a file.
    """
    if is_library_url(source):
        # Imported here: SQLAlchemy (the library extra) is needed only for library URLs.
        from specsoil.library._read import read_library

        return read_library(str(source), instrument=instrument, properties=properties, where=where)
    if instrument or properties or where:
        from specsoil._errors import SpecsoilError

        raise SpecsoilError(
            f"{source}: --instrument, --property and --where filter a spectral library; "
            "--data is a file here (give a sqlite:/// or postgresql:// URL)"
        )
    return read_spectra(
        source,
        spectra_kind=spectra_kind,
        drop_invalid=drop_invalid,
        spectral_columns=spectral_columns,
        censored=censored,
    )
