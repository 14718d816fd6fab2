"""One entry point for every data source: ``read_data``.

The CLI's ``--data``, the operations layer and the web service all call :func:`read_data`,
which decides what a source is, in this order:

1. ``None``: the default bundled dataset;
2. a URL whose scheme a module registered with :func:`register_data_source` (the spectral
   library database adds ``sqlite://`` and ``postgresql://`` this way);
3. the name of a bundled dataset, when no file of that name exists;
4. with ``format``, the reader it names: a scan format reads the source as scan files, a
   table format as a table;
5. a folder, a glob, a ``.zip`` or an instrument file: :func:`read_scans`, with the lab sheet
   and replicate options of :class:`ScanOptions`;
6. anything else: a table, :func:`read_spectra`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from specsoil._errors import SpecsoilError
from specsoil.data._datasets import DEFAULT_DATASET, DatasetInfo, list_datasets, load_dataset
from specsoil.data._readers import is_scan_format, read_spectra
from specsoil.data._registry import get_reader, reader_role
from specsoil.data._scan_folder import (
    ReplicateRule,
    ScanReport,
    is_scan_source,
    read_scans,
)
from specsoil.data._table import CensoredPolicy, SpectraKind, SpectraTable

# "scheme://...": a letter first, as RFC 3986 has it (a Windows drive "C:\" is not one).
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class ScanOptions:
    """How scan files become a sample table (see :func:`read_scans`).

    Attributes:
        lab: A CSV or ``.xlsx`` lab sheet to join by sample id.
        id_column: The lab sheet's sample id column.
        id_from_filename: A regex with one group picking the sample id from a file name stem.
        replicates: ``"mean"``, ``"median"`` or ``"none"``.
    """

    lab: str | None = None
    id_column: str | None = None
    id_from_filename: str | None = None
    replicates: ReplicateRule = "mean"

    def is_default(self) -> bool:
        """True when no option differs from the defaults."""
        return self == ScanOptions()


@dataclass(frozen=True)
class DataOptions:
    """Everything :func:`read_data` was asked, as a data-source hook receives it.

    Attributes:
        spectra_kind: For tables: what the values are; None detects it.
        drop_invalid: For tables: drop rows with unusable spectral values.
        spectral_columns: For tables: a regex naming the spectral columns.
        censored: For tables: how ``<x``/``>x`` lab values are read.
        format: A registered reader name that replaces recognition by content.
        scans: For scan files: lab sheet and replicate options.
        instrument: For a library URL: keep these instruments' scans.
        properties: For a library URL: keep these properties' lab values.
        where: For a library URL: conditions on sample metadata.
    """

    spectra_kind: SpectraKind | None = None
    drop_invalid: bool = False
    spectral_columns: str | None = None
    censored: CensoredPolicy = "missing"
    format: str | None = None
    scans: ScanOptions = field(default_factory=ScanOptions)
    instrument: tuple[str, ...] | None = None
    properties: tuple[str, ...] | None = None
    where: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DataRead:
    """A table and what its source says about it.

    Attributes:
        table: The spectra (float32 absorbance) and metadata.
        scan_report: For scan files: what was read, skipped, averaged and left unmatched.
        dataset: For a bundled dataset: its description, default targets and split column.
        notes: Lines the source wants shown to the user (a scan report's, a database's).
    """

    table: SpectraTable
    scan_report: ScanReport | None = None
    dataset: DatasetInfo | None = None
    notes: tuple[str, ...] = ()


DataSourceOpener = Callable[[str, DataOptions], DataRead]
_SOURCES: dict[str, DataSourceOpener] = {}


def register_data_source(scheme: str, opener: DataSourceOpener) -> None:
    """Let :func:`read_data` read URLs ``scheme://...`` with ``opener(url, options)``.

    Raises:
        ValueError: If the scheme is already registered.
    """
    key = scheme.lower()
    if key in _SOURCES:
        raise ValueError(f"data source scheme {scheme!r} is already registered")
    _SOURCES[key] = opener


def read_data(
    source: str | os.PathLike[str] | None,
    *,
    spectra_kind: SpectraKind | None = None,
    drop_invalid: bool = False,
    spectral_columns: str | None = None,
    censored: CensoredPolicy = "missing",
    format: str | None = None,
    scans: ScanOptions | None = None,
    instrument: Sequence[str] | None = None,
    properties: Sequence[str] | None = None,
    where: Sequence[str] | None = None,
) -> DataRead:
    """Read any data source into a table (see the module doc for how the source is told).

    Args:
        source: A table file, a scan file, folder, glob or ``.zip``, a bundled dataset name,
            a registered URL, or None for the default bundled dataset.
        spectra_kind: For tables, as :func:`read_spectra`.
        drop_invalid: For tables, as :func:`read_spectra`.
        spectral_columns: For tables, as :func:`read_spectra`.
        censored: For tables, as :func:`read_spectra`.
        format: A registered reader name (``specsoil formats``) to use instead of telling
            the format from the content.
        scans: For scan files: the lab sheet and replicate options.
        instrument: For a registered URL (a spectral library): keep these instruments.
        properties: For a registered URL: keep these properties' lab values.
        where: For a registered URL: conditions on metadata (``site=A``, ``clay>10``).

    Returns:
        The table, with the scan report or bundled dataset's description where there is one.

    Raises:
        SpecsoilError: If the source cannot be read (as the reader says), a URL scheme is
            unknown, ``format`` is unknown or reads image cubes, scan options are given for
            a table, or ``spectra_kind`` for scan files.
    """
    options = DataOptions(
        spectra_kind=spectra_kind,
        drop_invalid=drop_invalid,
        spectral_columns=spectral_columns,
        censored=censored,
        format=format,
        scans=scans or ScanOptions(),
        instrument=tuple(instrument) if instrument else None,
        properties=tuple(properties) if properties else None,
        where=tuple(where) if where else None,
    )
    if format is not None and reader_role(get_reader(format)) == "image":
        raise SpecsoilError(
            f"format {format!r} reads image cubes, which 'specsoil map-image' maps; --data "
            "takes tables and scan files"
        )
    if source is None:
        if options.instrument or options.properties or options.where:
            raise SpecsoilError(
                f"--data {DEFAULT_DATASET}: --instrument, --property and --where filter a "
                "spectral library (give a sqlite:/// or postgresql:// URL)"
            )
        return _bundled(DEFAULT_DATASET, options)
    text = os.fspath(source)
    url = _URL.match(text)
    if url is not None and not Path(text).exists():
        scheme = url["scheme"].lower()
        if scheme not in _SOURCES:  # "postgresql+psycopg": a driver named after the database
            scheme = scheme.split("+", 1)[0]
        if scheme not in _SOURCES:
            known = ", ".join(f"{s}://" for s in sorted(_SOURCES)) or "none registered"
            raise SpecsoilError(f"{text}: no data source reads {scheme}:// URLs; known: {known}")
        return _SOURCES[scheme](text, options)
    if options.instrument or options.properties or options.where:
        raise SpecsoilError(
            f"{text}: --instrument, --property and --where filter a spectral library; "
            "give a sqlite:/// or postgresql:// URL as the data"
        )
    if text in {info.name for info in list_datasets()} and not Path(text).exists():
        return _bundled(text, options)
    if is_scan_format(format) or (format is None and is_scan_source(text)):
        return _scan_files(text, options)
    if not options.scans.is_default():
        raise SpecsoilError(
            f"{text}: --lab, --id-column, --id-from-filename and --replicates apply to scan "
            "files (a folder, glob, .zip or instrument file); this is a table"
        )
    table = read_spectra(
        text,
        spectra_kind=spectra_kind,
        drop_invalid=drop_invalid,
        spectral_columns=spectral_columns,
        censored=censored,
        format=format,
    )
    return DataRead(table)


def _bundled(name: str, options: DataOptions) -> DataRead:
    if options.format is not None or not options.scans.is_default():
        raise SpecsoilError(
            f"{name}: is a bundled dataset; --format and the scan-file options do not apply"
        )
    info = next(info for info in list_datasets() if info.name == name)
    return DataRead(load_dataset(name), dataset=info)


def _scan_files(source: str, options: DataOptions) -> DataRead:
    if options.spectra_kind is not None:
        raise SpecsoilError(
            f"{source}: --spectra-kind applies to tables; scan files record what they hold"
        )
    scans = options.scans
    result = read_scans(
        source,
        lab=scans.lab,
        id_column=scans.id_column,
        id_from_filename=scans.id_from_filename,
        replicates=scans.replicates,
        format=options.format,
    )
    return DataRead(result.table, scan_report=result.report, notes=tuple(result.report.lines()))
