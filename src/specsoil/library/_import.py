"""Importing a spectra table into a library: one transaction, idempotent, bulk inserts."""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from specsoil import __version__
from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable
from specsoil.library._columns import (
    ACQUIRED_COLUMNS,
    INSTRUMENT_COLUMNS,
    SERIAL_COLUMNS,
    SOURCE_FILE_COLUMNS,
    ColumnPlan,
    find_column,
    json_records,
    parse_lab_values,
    plan_columns,
    sample_codes,
)
from specsoil.library._engine import open_library, write_transaction
from specsoil.library._schema import (
    ImportBatch,
    ImportFile,
    Instrument,
    LabValue,
    Property,
    Sample,
    Site,
    Spectrum,
    WavelengthAxis,
    table_of,
)

logger = logging.getLogger(__name__)

# Rows per executemany call, and ids per IN (...) lookup (below SQLite's variable limit).
INSERT_ROWS = 5000
LOOKUP_IDS = 5000
DEFAULT_INSTRUMENT = "unspecified"


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import added and what it found already in the library.

    Attributes:
        batch_id: The new import batch, or None when nothing was new.
        spectra_added: Spectra written.
        spectra_skipped: Spectra already in the library (same instrument, sample and values).
        samples_added: Samples that were new.
        lab_values_added: Lab values written.
        lab_values_skipped: Lab values the library already held.
        lab_columns: The columns imported as lab values (properties).
    """

    batch_id: int | None
    spectra_added: int
    spectra_skipped: int
    samples_added: int
    lab_values_added: int
    lab_values_skipped: int
    lab_columns: tuple[str, ...]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def axis_sha256(wavelengths: np.ndarray[Any, Any]) -> str:
    """The hash that identifies a wavelength axis (float64 little-endian bytes)."""
    return hashlib.sha256(np.ascontiguousarray(wavelengths, dtype="<f8").tobytes()).hexdigest()


def parse_epsg(crs: str | int | None) -> int | None:
    """``"EPSG:32755"``, ``"32755"`` or ``32755`` as the integer code; None stays None."""
    if crs is None:
        return None
    match = re.fullmatch(r"\s*(?:epsg:)?\s*(\d+)\s*", str(crs), flags=re.IGNORECASE)
    if match is None:
        raise SpecsoilError(f"crs must be an EPSG code such as EPSG:4326; got {crs!r}")
    return int(match.group(1))


def import_table(
    url: str,
    table: SpectraTable,
    *,
    source_files: Sequence[str | os.PathLike[str]] = (),
    instrument: str | None = None,
    instrument_serial: str | None = None,
    instrument_kind: str | None = None,
    lab_columns: Sequence[str] | None = None,
    units: Mapping[str, str] | None = None,
    methods: Mapping[str, str] | None = None,
    site_column: str | None = None,
    x: str | None = None,
    y: str | None = None,
    crs: str | int | None = None,
    description: str | None = None,
    id_prefix: str = "",
) -> ImportReport:
    """Import ``table`` into the library at ``url`` in one transaction.

    Each row becomes a spectrum (float32 absorbance on a shared wavelength axis) of a sample
    (keyed by the table's id column, else by the row's values). Lab columns become lab values
    of properties; every other column is kept as sample metadata (or scan metadata, where
    the scans of one sample differ) and comes back when the library is read. A spectrum
    already in the library (same instrument, sample, axis and values) is skipped, so
    importing a file twice adds nothing. The library is created when the URL holds none.

    Args:
        url: ``sqlite:///path.db`` or ``postgresql://user@host/dbname``.
        table: The spectra to import.
        source_files: The files ``table`` was read from; their SHA-256 is recorded.
        instrument: Name of the spectrometer; default: an ``instrument`` column, else
            ``"unspecified"``.
        instrument_serial: Its serial number (default: a ``serial_number`` column).
        instrument_kind: Its make or kind, e.g. ``"ASD FieldSpec 4"``.
        lab_columns: Columns holding lab values; default: numeric columns other than ids,
            coordinates, depths and fold/split labels, plus text columns of censored
            numbers such as ``"<0.5"``.
        units: Unit of each lab column, e.g. ``{"clay": "%"}``.
        methods: Lab method of each lab column.
        site_column: Column naming the site; default a ``site`` column when there is one.
        x: Column of site eastings/longitudes (default ``GPS_LONG``).
        y: Column of site northings/latitudes (default ``GPS_LAT``).
        crs: EPSG code of ``x``/``y`` (default 4326 when coordinates are found).
        description: What was imported (default: the table's source).
        id_prefix: Put before every sample id to make the codes unique in the library, e.g.
            ``"nirsoil:"`` when two tables number their samples 1, 2, ... alike. Rows whose
            code (prefix + id) is already in the library add scans to that sample.

    Returns:
        The counts of what was added and skipped.

    Raises:
        SpecsoilError: If a named column is missing, a lab value is not a number, the
            library already holds a different value for a sample's property, or the
            database cannot be reached or is from a newer specsoil.
    """
    plan = plan_columns(table, lab_columns=lab_columns, site_column=site_column, x=x, y=y)
    epsg = parse_epsg(crs) if crs is not None else (4326 if plan.coordinate_columns else None)
    prepared = _prepare(table, plan, instrument, id_prefix)
    for path in source_files:
        if not Path(path).is_file():
            raise SpecsoilError(f"{path}: no such source file to record")
    files = [(str(Path(f)), file_sha256(f), Path(f).stat().st_size) for f in source_files]
    with open_library(url, write=True) as engine:
        try:
            with write_transaction(engine) as connection:
                report = _write(
                    connection,
                    table,
                    plan,
                    prepared,
                    files=files,
                    serial=instrument_serial,
                    kind=instrument_kind,
                    units=units or {},
                    methods=methods or {},
                    epsg=epsg,
                    description=description or table.source,
                )
                if report.batch_id is None:
                    raise _NothingNew(report)  # roll back: leave no empty batch behind
        except _NothingNew as nothing:
            report = nothing.report
    logger.info(
        "imported %d spectra (%d already there), %d samples, %d lab values (%d already there)",
        report.spectra_added,
        report.spectra_skipped,
        report.samples_added,
        report.lab_values_added,
        report.lab_values_skipped,
    )
    return report


class _NothingNew(Exception):
    """Raised inside the import transaction to roll it back when nothing was new."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("nothing new")
        self.report = report


@dataclass(frozen=True)
class _Prepared:
    """Per-row values computed before the transaction, to keep the write lock short."""

    codes: list[str]
    instruments: list[str]
    row_hashes: list[str]
    axis_hash: str


def _prepare(
    table: SpectraTable, plan: ColumnPlan, instrument: str | None, id_prefix: str
) -> _Prepared:
    metadata = table.metadata
    codes = [id_prefix + code for code in sample_codes(table, plan.id_column)]
    if instrument is not None:
        names = [instrument] * table.n_samples
    else:
        column = find_column(metadata, INSTRUMENT_COLUMNS)
        if column is None:
            names = [DEFAULT_INSTRUMENT] * table.n_samples
        else:
            values = metadata[column].astype(object).where(metadata[column].notna(), None)
            names = [DEFAULT_INSTRUMENT if v is None else str(v) for v in values]
    axis_hash = axis_sha256(table.wavelengths)
    X = np.ascontiguousarray(table.X, dtype="<f4")
    row_hashes = [
        hashlib.sha256(f"{name}\0{code}\0{axis_hash}\0".encode() + row.tobytes()).hexdigest()
        for name, code, row in zip(names, codes, X, strict=True)
    ]
    return _Prepared(codes, names, row_hashes, axis_hash)


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _lookup(
    connection: sa.Connection, key: sa.Column[Any], keys: Sequence[Any], *columns: sa.Column[Any]
) -> dict[Any, Any]:
    """``{key: row}`` for the rows whose ``key`` is in ``keys`` (chunked IN lookups)."""
    found: dict[Any, Any] = {}
    unique = list(dict.fromkeys(keys))
    for chunk in _chunks(unique, LOOKUP_IDS):
        for row in connection.execute(sa.select(key, *columns).where(key.in_(chunk))):
            found[row[0]] = row[1] if len(columns) == 1 else row[1:]
    return found


def _insert(connection: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in bulk, straight through the driver.

    SQLAlchemy's per-row parameter handling cost more than SQLite's own work at 20,000
    spectra, and psycopg's executemany sends one statement per row: so SQLite gets the
    driver's executemany on tuples (values passed through the column types' own bind
    processors), PostgreSQL gets COPY. Column names come from the schema, never from input.
    """
    if not rows:
        return
    columns = list(rows[0])
    if connection.dialect.name == "postgresql":
        _copy(connection, table, columns, rows)
        return
    processors = [table.c[name].type.bind_processor(connection.dialect) for name in columns]
    names = ", ".join(f'"{name}"' for name in columns)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" for _ in columns)})'
    for chunk in _chunks(rows, INSERT_ROWS):
        values = [
            tuple(
                row[name] if process is None or row[name] is None else process(row[name])
                for name, process in zip(columns, processors, strict=True)
            )
            for row in chunk
        ]
        connection.exec_driver_sql(sql, values)


# PostgreSQL type names for binary COPY, by SQLAlchemy type (most specific first).
_PG_TYPES: tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...] = (
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.Float, "float8"),
    (sa.Boolean, "bool"),
    (sa.LargeBinary, "bytea"),
    (sa.JSON, "json"),
    (sa.DateTime, "timestamptz"),
    (sa.String, "text"),
)


def _pg_type(column: sa.Column[Any]) -> str:
    return next(name for kind, name in _PG_TYPES if isinstance(column.type, kind))


def _copy(
    connection: sa.Connection, table: sa.Table, columns: list[str], rows: Sequence[dict[str, Any]]
) -> None:
    """PostgreSQL's binary COPY FROM STDIN, on the connection's own transaction.

    Binary, because text COPY would send every float32 blob hex-encoded, twice its size.
    """
    from psycopg.types.json import Json

    types = [_pg_type(table.c[name]) for name in columns]
    wrap = [kind == "json" for kind in types]
    names = ", ".join(f'"{name}"' for name in columns)
    driver = connection.connection.driver_connection
    assert driver is not None
    statement = f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT BINARY)'
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(
                [
                    Json(row[name]) if json and row[name] is not None else row[name]
                    for name, json in zip(columns, wrap, strict=True)
                ]
            )


def _ids_by_name(
    connection: sa.Connection, orm: Any, names: Iterable[str], make: Any
) -> dict[str, int]:
    """Ids of named rows (instruments, properties, sites), inserting the missing ones."""
    table = table_of(orm)
    wanted = list(dict.fromkeys(names))
    ids: dict[str, int] = _lookup(connection, table.c.name, wanted, table.c.id)
    missing = [name for name in wanted if name not in ids]
    if missing:
        _insert(connection, table, [make(name) for name in missing])
        ids.update(_lookup(connection, table.c.name, missing, table.c.id))
    return ids


def _write(
    connection: sa.Connection,
    table: SpectraTable,
    plan: ColumnPlan,
    prepared: _Prepared,
    *,
    files: list[tuple[str, str, int]],
    serial: str | None,
    kind: str | None,
    units: Mapping[str, str],
    methods: Mapping[str, str],
    epsg: int | None,
    description: str,
) -> ImportReport:
    metadata = table.metadata
    spectra = table_of(Spectrum)
    existing = _lookup(connection, spectra.c.content_sha256, prepared.row_hashes, spectra.c.id)
    new_rows = [i for i, h in enumerate(prepared.row_hashes) if h not in existing]
    # Duplicate rows inside the table count once.
    first_of_hash: dict[str, int] = {}
    for row in new_rows:
        first_of_hash.setdefault(prepared.row_hashes[row], row)
    new_rows = sorted(first_of_hash.values())

    batch_id = int(
        connection.execute(
            sa.insert(table_of(ImportBatch)).returning(table_of(ImportBatch).c.id),
            {
                "imported_at": datetime.now(UTC),
                "user": _user(),
                "host": socket.gethostname()[:200],
                "specsoil_version": __version__,
                "source": description,
                "columns": plan.spec(metadata),
                "n_spectra": 0,
                "n_lab_values": 0,
            },
        ).scalar_one()
    )
    sample_ids, samples_added = _write_samples(connection, table, plan, prepared, batch_id, epsg)
    spectra_added = _write_spectra(
        connection, table, plan, prepared, new_rows, sample_ids, batch_id, serial, kind
    )
    lab_added, lab_skipped = _write_lab_values(
        connection, table, plan, prepared, sample_ids, batch_id, units, methods
    )
    if spectra_added == 0 and lab_added == 0 and samples_added == 0:
        return ImportReport(None, 0, table.n_samples, 0, 0, lab_skipped, plan.lab_columns)
    _insert(
        connection,
        table_of(ImportFile),
        [{"batch_id": batch_id, "path": p, "sha256": h, "size_bytes": n} for p, h, n in files],
    )
    connection.execute(
        sa.update(table_of(ImportBatch))
        .where(table_of(ImportBatch).c.id == batch_id)
        .values(n_spectra=spectra_added, n_lab_values=lab_added)
    )
    return ImportReport(
        batch_id=batch_id,
        spectra_added=spectra_added,
        spectra_skipped=table.n_samples - spectra_added,
        samples_added=samples_added,
        lab_values_added=lab_added,
        lab_values_skipped=lab_skipped,
        lab_columns=plan.lab_columns,
    )


def _user() -> str:
    try:
        return getpass.getuser()[:200]
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return f"uid {os.getuid()}"


def _write_samples(
    connection: sa.Connection,
    table: SpectraTable,
    plan: ColumnPlan,
    prepared: _Prepared,
    batch_id: int,
    epsg: int | None,
) -> tuple[dict[str, int], int]:
    """Insert the samples the library lacks; return every row's code -> sample id."""
    samples = table_of(Sample)
    codes = prepared.codes
    ids: dict[str, int] = _lookup(connection, samples.c.code, codes, samples.c.id)
    first_rows: dict[str, int] = {}
    for row, code in enumerate(codes):
        if code not in ids:
            first_rows.setdefault(code, row)
    if not first_rows:
        return ids, 0
    rows = list(first_rows.values())
    subset = table.metadata.iloc[rows].reset_index(drop=True)
    site_ids = _site_ids(connection, table, plan, rows, epsg)
    records = json_records(subset, plan.sample_columns)
    depth_top: list[Any] = [None] * len(rows)
    depth_bottom: list[Any] = [None] * len(rows)
    if plan.depth_columns is not None:
        top, bottom = (pd.to_numeric(subset[c], errors="coerce") for c in plan.depth_columns)
        depth_top = [None if pd.isna(v) else float(v) for v in top]
        depth_bottom = [None if pd.isna(v) else float(v) for v in bottom]
    _insert(
        connection,
        samples,
        [
            {
                "code": code,
                "site_id": site,
                "depth_top_cm": top_cm,
                "depth_bottom_cm": bottom_cm,
                "batch_id": batch_id,
                "meta": meta,
            }
            for code, site, top_cm, bottom_cm, meta in zip(
                first_rows, site_ids, depth_top, depth_bottom, records, strict=True
            )
        ],
    )
    ids.update(_lookup(connection, samples.c.code, list(first_rows), samples.c.id))
    return ids, len(first_rows)


def _site_ids(
    connection: sa.Connection,
    table: SpectraTable,
    plan: ColumnPlan,
    rows: list[int],
    epsg: int | None,
) -> list[int | None]:
    """The site of each of ``rows``: named by the site column, else by the coordinates."""
    metadata = table.metadata.iloc[rows].reset_index(drop=True)
    xs: list[float | None] = [None] * len(rows)
    ys: list[float | None] = [None] * len(rows)
    if plan.coordinate_columns is not None:
        x_col, y_col = plan.coordinate_columns
        x_values = pd.to_numeric(metadata[x_col], errors="coerce").to_numpy(dtype=np.float64)
        y_values = pd.to_numeric(metadata[y_col], errors="coerce").to_numpy(dtype=np.float64)
        xs = [float(v) if np.isfinite(v) else None for v in x_values]
        ys = [float(v) if np.isfinite(v) else None for v in y_values]
    names: list[str | None]
    if plan.site_column is not None:
        raw = (
            metadata[plan.site_column]
            .astype(object)
            .where(metadata[plan.site_column].notna(), None)
        )
        names = [None if v is None else str(v) for v in raw]
    else:
        names = [
            None if xv is None or yv is None else f"{xv!r},{yv!r} EPSG:{epsg}"
            for xv, yv in zip(xs, ys, strict=True)
        ]
    places: dict[str, tuple[float | None, float | None]] = {}
    for name, xv, yv in zip(names, xs, ys, strict=True):
        if name is None:
            continue
        # A site keeps coordinates only when all its samples agree on them.
        if name in places and places[name] != (xv, yv):
            places[name] = (None, None)
        else:
            places.setdefault(name, (xv, yv))

    def make(name: str) -> dict[str, Any]:
        xv, yv = places[name]
        return {"name": name, "x": xv, "y": yv, "crs_epsg": epsg if xv is not None else None}

    ids = _ids_by_name(connection, Site, places, make)
    return [None if name is None else ids[name] for name in names]


def _write_spectra(
    connection: sa.Connection,
    table: SpectraTable,
    plan: ColumnPlan,
    prepared: _Prepared,
    new_rows: list[int],
    sample_ids: dict[str, int],
    batch_id: int,
    serial: str | None,
    kind: str | None,
) -> int:
    if not new_rows:
        return 0
    metadata = table.metadata
    axis_table = table_of(WavelengthAxis)
    axis_id = _lookup(connection, axis_table.c.sha256, [prepared.axis_hash], axis_table.c.id).get(
        prepared.axis_hash
    )
    if axis_id is None:
        w = np.ascontiguousarray(table.wavelengths, dtype="<f8")
        connection.execute(
            sa.insert(axis_table),
            {
                "sha256": prepared.axis_hash,
                "n_bands": int(w.size),
                "first_nm": float(w[0]),
                "last_nm": float(w[-1]),
                "wavelengths": w.tobytes(),
            },
        )
        axis_id = _lookup(connection, axis_table.c.sha256, [prepared.axis_hash], axis_table.c.id)[
            prepared.axis_hash
        ]
    serial_column = find_column(metadata, SERIAL_COLUMNS)
    serials = _texts(metadata, serial_column)
    instrument_serials: dict[str, str | None] = {}
    for row in new_rows:
        instrument_serials.setdefault(prepared.instruments[row], serial or serials[row])
    instrument_ids = _ids_by_name(
        connection,
        Instrument,
        instrument_serials,
        lambda name: {"name": name, "serial": instrument_serials[name], "kind": kind},
    )
    replicates = _next_replicates(connection, [sample_ids[prepared.codes[r]] for r in new_rows])
    acquired = _times(metadata, find_column(metadata, ACQUIRED_COLUMNS))
    source_files = _texts(metadata, find_column(metadata, SOURCE_FILE_COLUMNS))
    subset = metadata.iloc[new_rows].reset_index(drop=True)
    records = json_records(subset, plan.spectrum_columns)
    X = np.ascontiguousarray(table.X, dtype="<f4")
    rows = [
        {
            "sample_id": sample_ids[prepared.codes[row]],
            "instrument_id": instrument_ids[prepared.instruments[row]],
            "axis_id": axis_id,
            "batch_id": batch_id,
            "absorbance": X[row].tobytes(),
            "spectra_kind": table.spectra_kind,
            "replicate": replicate,
            "acquired_at": acquired[row],
            "source_file": source_files[row],
            "content_sha256": prepared.row_hashes[row],
            "meta": meta,
        }
        for row, replicate, meta in zip(new_rows, replicates, records, strict=True)
    ]
    _insert(connection, table_of(Spectrum), rows)
    return len(rows)


def _texts(metadata: pd.DataFrame, column: str | None) -> list[str | None]:
    if column is None:
        return [None] * len(metadata)
    values = metadata[column].astype(object).where(metadata[column].notna(), None)
    return [None if v is None else str(v) for v in values]


def _times(metadata: pd.DataFrame, column: str | None) -> list[datetime | None]:
    if column is None:
        return [None] * len(metadata)
    times = pd.to_datetime(metadata[column], errors="coerce", utc=True)
    return [None if pd.isna(t) else t.to_pydatetime() for t in times]


def _next_replicates(connection: sa.Connection, sample_ids: list[int]) -> list[int]:
    """Replicate numbers 1, 2, ... per sample, after the scans the library already holds."""
    spectra = table_of(Spectrum)
    counts: dict[int, int] = {}
    for chunk in _chunks(list(dict.fromkeys(sample_ids)), LOOKUP_IDS):
        query = (
            sa.select(spectra.c.sample_id, sa.func.max(spectra.c.replicate))
            .where(spectra.c.sample_id.in_(chunk))
            .group_by(spectra.c.sample_id)
        )
        counts.update({int(s): int(n) for s, n in connection.execute(query)})
    numbers = []
    for sample in sample_ids:
        counts[sample] = counts.get(sample, 0) + 1
        numbers.append(counts[sample])
    return numbers


def _write_lab_values(
    connection: sa.Connection,
    table: SpectraTable,
    plan: ColumnPlan,
    prepared: _Prepared,
    sample_ids: dict[str, int],
    batch_id: int,
    units: Mapping[str, str],
    methods: Mapping[str, str],
) -> tuple[int, int]:
    """Insert the lab values the library lacks; returns (added, already there)."""
    if not plan.lab_columns:
        return 0, 0
    property_ids = _ids_by_name(
        connection,
        Property,
        plan.lab_columns,
        lambda name: {"name": name, "unit": units.get(name), "method": methods.get(name)},
    )
    wanted: dict[tuple[int, int], tuple[float | None, str | None, str | None, int]] = {}
    for name in plan.lab_columns:
        numbers, qualifiers, raws = parse_lab_values(table.metadata[name])
        prop = property_ids[name]
        for row, (value, qualifier, raw) in enumerate(zip(numbers, qualifiers, raws, strict=True)):
            if value is None and raw is None:
                continue
            key = (sample_ids[prepared.codes[row]], prop)
            if key in wanted and wanted[key][:3] != (value, qualifier, raw):
                first = wanted[key][3]
                raise SpecsoilError(
                    f"{table.source}: sample {prepared.codes[row]!r} has two values of "
                    f"{name!r}: {_shown(wanted[key][:3])} in data row {first + 1} and "
                    f"{_shown((value, qualifier, raw))} in data row {row + 1}"
                )
            wanted.setdefault(key, (value, qualifier, raw, row))
    lab = table_of(LabValue)
    stored: dict[tuple[int, int], tuple[Any, ...]] = {}
    samples = sorted({key[0] for key in wanted})
    for chunk in _chunks(samples, LOOKUP_IDS):
        query = sa.select(
            lab.c.sample_id, lab.c.property_id, lab.c.value, lab.c.qualifier, lab.c.raw
        ).where(lab.c.sample_id.in_(chunk))
        stored.update({(r[0], r[1]): tuple(r[2:]) for r in connection.execute(query)})
    names = {prop: name for name, prop in property_ids.items()}
    rows = []
    skipped = 0
    for key, (value, qualifier, raw, row) in wanted.items():
        if key in stored:
            if stored[key] != (value, qualifier, raw):
                raise SpecsoilError(
                    f"{table.source}: data row {row + 1}: the library already holds "
                    f"{names[key[1]]}={_shown(stored[key])} for sample "
                    f"{prepared.codes[row]!r}, not {_shown((value, qualifier, raw))}; "
                    "a library never overwrites a lab value"
                )
            skipped += 1
            continue
        rows.append(
            {
                "sample_id": key[0],
                "property_id": key[1],
                "batch_id": batch_id,
                "value": value,
                "qualifier": qualifier,
                "censored": qualifier is not None,
                "raw": raw,
            }
        )
    _insert(connection, lab, rows)
    return len(rows), skipped


def _shown(stored: tuple[Any, ...]) -> str:
    value, _qualifier, raw = stored
    return repr(raw) if raw is not None else repr(value)
