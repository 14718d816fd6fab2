"""Reading a library back as a SpectraTable, with filters, and summarising it."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data import SpectraKind, SpectraTable, write_spectra_parquet
from specsoil.library._columns import ROLE_LAB, column_dtypes
from specsoil.library._engine import open_library, safe_url
from specsoil.library._schema import (
    ImportBatch,
    Instrument,
    LabValue,
    Property,
    Sample,
    Spectrum,
    WavelengthAxis,
    table_of,
)
from specsoil.library._where import parse_where, where_mask

logger = logging.getLogger(__name__)

FETCH_IDS = 5000


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def read_library(
    url: str,
    *,
    instrument: str | Sequence[str] | None = None,
    properties: str | Sequence[str] | None = None,
    where: str | Sequence[str] | None = None,
) -> SpectraTable:
    """Read the library's spectra, one row per scan, with metadata and lab values.

    Rows come in import order. Metadata columns come back with the names and dtypes they
    had in the imported tables; lab values come back as columns named by their property.
    Spectra on different wavelength axes are resampled by linear interpolation onto their
    common covered range (the coarsest of their grids there), and a warning says so.

    Args:
        url: ``sqlite:///path.db`` or ``postgresql://user@host/dbname``.
        instrument: Keep only the scans of these instruments.
        properties: Keep only these properties' columns (other lab columns are left out),
            and only the samples with a value of at least one of them.
        where: Conditions on metadata columns (see ``parse_where``), e.g. ``"site=A"``,
            ``"clay_pct>10"``, ``"fold in 1,2"``.

    Returns:
        The table, ``X`` float32 absorbance exactly as imported (or resampled).

    Raises:
        SpecsoilError: If the library cannot be opened, a filter names an unknown
            instrument, property or column, nothing is left, or the axes share no range.
    """
    conditions = parse_where(where)
    instruments = _as_list(instrument)
    wanted_properties = _as_list(properties)
    with open_library(url, write=False) as engine, engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # One snapshot for every query of this read, even while an import commits.
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        source = safe_url(engine.url)
        known_instruments = list(
            connection.execute(sa.select(table_of(Instrument).c.name)).scalars()
        )
        for name in instruments or ():
            if name not in known_instruments:
                raise SpecsoilError(
                    f"{source}: no instrument {name!r}; instruments: {sorted(known_instruments)}"
                )
        known_properties = list(connection.execute(sa.select(table_of(Property).c.name)).scalars())
        for name in wanted_properties or ():
            if name not in known_properties:
                raise SpecsoilError(
                    f"{source}: no property {name!r}; properties: {sorted(known_properties)}"
                )
        scans = _scans(connection, instruments)
        if scans.empty:
            raise SpecsoilError(
                f"{source}: no spectra" + (f" of instrument {instruments}" if instruments else "")
            )
        batches = table_of(ImportBatch)
        specs_by_batch: dict[int, list[dict[str, str]]] = {
            row[0]: row[1]
            for row in connection.execute(
                sa.select(batches.c.id, batches.c.columns).order_by(batches.c.id)
            )
        }
        metadata = _metadata(connection, scans)
        keep = np.ones(len(scans), dtype=bool)
        if wanted_properties is not None:
            lab_names = {
                s["name"]
                for specs in specs_by_batch.values()
                for s in specs
                if s["role"] == ROLE_LAB
            }
            drop = [c for c in metadata.columns if c in lab_names and c not in wanted_properties]
            present = metadata.reindex(columns=wanted_properties)
            keep &= present.notna().any(axis=1).to_numpy()
            metadata = metadata.drop(columns=drop)
        keep &= where_mask(metadata, conditions)
        if not keep.any():
            raise SpecsoilError(f"{source}: no spectra meet the filters")
        scans = scans[keep].reset_index(drop=True)
        # The columns of the batches the kept scans and their samples came from.
        used = set(scans["batch_id"]) | set(scans["sample_batch_id"])
        specs = [
            spec for batch, columns in specs_by_batch.items() if batch in used for spec in columns
        ]
        if wanted_properties is not None:
            specs = [s for s in specs if s["role"] != ROLE_LAB or s["name"] in wanted_properties]
        metadata = _finish(metadata[keep].reset_index(drop=True), specs)
        X, wavelengths = _spectra(connection, scans, source)
    kinds = scans["spectra_kind"].unique()
    kind: SpectraKind = kinds[0] if len(kinds) == 1 else "absorbance"
    return SpectraTable(
        X=X,
        wavelengths=wavelengths,
        metadata=metadata,
        source=source,
        spectra_kind=kind,
        kind_detected=False,
        kind_reason="as stored in the library"
        if len(kinds) == 1
        else f"mixed in the library: {sorted(kinds)}",
    )


def _scans(connection: sa.Connection, instruments: list[str] | None) -> pd.DataFrame:
    spectra, instrument_table = table_of(Spectrum), table_of(Instrument)
    query = (
        sa.select(
            spectra.c.id,
            spectra.c.sample_id,
            spectra.c.axis_id,
            spectra.c.spectra_kind,
            spectra.c.meta,
            spectra.c.batch_id,
            instrument_table.c.name.label("instrument"),
        )
        .join(instrument_table, spectra.c.instrument_id == instrument_table.c.id)
        .order_by(spectra.c.id)
    )
    if instruments is not None:
        query = query.where(instrument_table.c.name.in_(instruments))
    rows = connection.execute(query).all()
    return pd.DataFrame(
        [tuple(r) for r in rows],  # plain tuples: pandas probes Row objects slowly
        columns=["id", "sample_id", "axis_id", "spectra_kind", "meta", "batch_id", "instrument"],
    )


def _metadata(connection: sa.Connection, scans: pd.DataFrame) -> pd.DataFrame:
    """One metadata row per scan: sample columns, scan columns and lab values, as stored."""
    samples = table_of(Sample)
    sample_rows = connection.execute(
        sa.select(samples.c.id, samples.c.meta, samples.c.batch_id)
    ).all()
    sample_meta = {row[0]: row[1] for row in sample_rows}
    sample_batch = {row[0]: row[2] for row in sample_rows}
    scans["sample_batch_id"] = [sample_batch[s] for s in scans["sample_id"]]
    lab, props = table_of(LabValue), table_of(Property)
    lab_rows = connection.execute(
        sa.select(lab.c.sample_id, props.c.name, lab.c.value, lab.c.raw).join(
            props, lab.c.property_id == props.c.id
        )
    ).all()
    records = [
        {**sample_meta[sample], **scan_meta}
        for sample, scan_meta in zip(scans["sample_id"], scans["meta"], strict=True)
    ]
    metadata = pd.DataFrame.from_records(records, index=range(len(records)))
    if lab_rows:
        values = pd.DataFrame(
            [tuple(r) for r in lab_rows], columns=["sample_id", "property", "value", "raw"]
        )
        values["value"] = values["value"].astype(np.float64)
        wide = values.pivot(index="sample_id", columns="property", values="value")
        # Properties imported as text (censored values such as "<0.5") come back as text.
        text = values[values["raw"].notna()]
        if not text.empty:
            raw = text.pivot(index="sample_id", columns="property", values="raw")
            for name in raw.columns:
                wide[name] = raw[name].reindex(wide.index).astype(object)
        lab_frame = wide.reindex(scans["sample_id"].to_numpy()).reset_index(drop=True)
        metadata = pd.concat([metadata, lab_frame], axis=1)
    metadata.columns = pd.Index([str(c) for c in metadata.columns])
    return metadata


def _finish(metadata: pd.DataFrame, specs: list[dict[str, str]]) -> pd.DataFrame:
    """Keep the columns of ``specs`` in their order, in their recorded dtypes."""
    order = list(dict.fromkeys(spec["name"] for spec in specs))
    metadata = metadata.reindex(columns=[c for c in order if c in metadata.columns])
    for name, dtype in column_dtypes(specs).items():
        if name in metadata.columns:
            metadata[name] = _restore(metadata[name], dtype)
    return metadata


def _restore(values: pd.Series, dtype: str) -> pd.Series:
    """The column in its recorded dtype when the values allow it (else as inferred)."""
    try:
        if dtype.startswith("datetime64"):
            return pd.to_datetime(values).astype(dtype)  # type: ignore[call-overload,no-any-return]
        if dtype in ("object",):
            return values.astype(object)
        return values.astype(dtype)  # type: ignore[call-overload,no-any-return]
    except (ValueError, TypeError):
        inferred: pd.Series = values.infer_objects()
        if inferred.dtype == object:
            numbers = pd.to_numeric(inferred, errors="coerce")
            if numbers.notna().sum() == inferred.notna().sum():
                return numbers
        return inferred


def _spectra(
    connection: sa.Connection, scans: pd.DataFrame, source: str
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """The scans' values, resampled onto one grid when their axes differ."""
    axes_table = table_of(WavelengthAxis)
    axis_ids = [int(a) for a in pd.unique(scans["axis_id"])]
    axes = {
        int(i): np.frombuffer(blob, dtype="<f8")
        for i, blob in connection.execute(
            sa.select(axes_table.c.id, axes_table.c.wavelengths).where(
                axes_table.c.id.in_(axis_ids)
            )
        )
    }
    blobs = _blobs(connection, scans["id"].to_numpy())
    if len(axes) == 1:
        wavelengths = axes[axis_ids[0]].astype(np.float64)
        X = np.empty((len(scans), wavelengths.size), dtype=np.float32)
        for row, blob in enumerate(blobs):
            X[row] = np.frombuffer(blob, dtype="<f4")
        return X, wavelengths
    low = max(float(a[0]) for a in axes.values())
    high = min(float(a[-1]) for a in axes.values())
    by_axis = scans.groupby("axis_id")["instrument"].agg(lambda s: sorted(set(s)))
    described = "; ".join(
        f"{', '.join(by_axis[i])}: {axes[i][0]:g}-{axes[i][-1]:g} nm ({axes[i].size} bands)"
        for i in axis_ids
    )
    if low >= high:
        raise SpecsoilError(
            f"{source}: the spectra share no wavelength range, so they cannot be resampled "
            f"onto one grid ({described}); filter with --instrument"
        )
    inside = {i: a[(a >= low) & (a <= high)] for i, a in axes.items()}
    grid_axis = min(axis_ids, key=lambda i: inside[i].size)
    wavelengths = inside[grid_axis].astype(np.float64)
    X = np.empty((len(scans), wavelengths.size), dtype=np.float32)
    rows_by_axis = {i: np.flatnonzero(scans["axis_id"].to_numpy() == i) for i in axis_ids}
    for i, rows in rows_by_axis.items():
        values = np.stack([np.frombuffer(blobs[r], dtype="<f4") for r in rows])
        X[rows] = _interpolate(values, axes[i], wavelengths)
    logger.warning(
        "%s: spectra from %d wavelength axes (%s) resampled by linear interpolation onto "
        "their common range %g-%g nm, %d bands",
        source,
        len(axes),
        described,
        wavelengths[0],
        wavelengths[-1],
        wavelengths.size,
    )
    return X, wavelengths


def _interpolate(
    values: NDArray[np.float32], source: NDArray[np.float64], target: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Linear interpolation of every row from ``source`` onto ``target`` (inside its range)."""
    upper = np.clip(np.searchsorted(source, target, side="left"), 1, source.size - 1)
    lower = upper - 1
    span = source[upper] - source[lower]
    weight = (target - source[lower]) / span
    exact = source[upper] == target  # keep values at shared wavelengths bit-exact
    result = values[:, lower] * (1.0 - weight) + values[:, upper] * weight
    result[:, exact] = values[:, upper[exact]]
    return result.astype(np.float32)


def _blobs(connection: sa.Connection, ids: NDArray[Any]) -> list[bytes]:
    """The absorbance blobs of spectra ``ids``, in that order."""
    spectra = table_of(Spectrum)
    total = int(connection.execute(sa.select(sa.func.count()).select_from(spectra)).scalar_one())
    if total == len(ids):  # everything: one ordered scan, no IN lists
        rows = connection.execute(sa.select(spectra.c.absorbance).order_by(spectra.c.id)).scalars()
        return list(rows)
    found: dict[int, bytes] = {}
    id_list = [int(i) for i in ids]
    for start in range(0, len(id_list), FETCH_IDS):
        chunk = id_list[start : start + FETCH_IDS]
        query = sa.select(spectra.c.id, spectra.c.absorbance).where(spectra.c.id.in_(chunk))
        found.update({int(i): blob for i, blob in connection.execute(query)})
    return [found[i] for i in id_list]


@dataclass(frozen=True, slots=True)
class LibrarySummary:
    """Counts of what a library holds.

    Attributes:
        url: The library, password masked.
        schema: The schema revision.
        n_spectra: Scans.
        n_samples: Samples.
        n_sites: Sites.
        instruments: ``(name, serial, spectra, axes as "first-last nm (bands)")`` rows.
        properties: ``(name, unit, method, lab values, censored values)`` rows.
        batches: ``(id, imported_at, user@host, source, spectra, lab values)`` rows.
    """

    url: str
    schema: str
    n_spectra: int
    n_samples: int
    n_sites: int
    instruments: list[tuple[str, str | None, int, str]]
    properties: list[tuple[str, str | None, str | None, int, int]]
    batches: list[tuple[int, datetime, str, str, int, int]]


def list_library(url: str) -> LibrarySummary:
    """Count the library's spectra by instrument, lab values by property, rows by batch.

    Raises:
        SpecsoilError: If the library cannot be opened.
    """
    from specsoil.library._engine import schema_revision
    from specsoil.library._schema import Site

    with open_library(url, write=False) as engine, engine.connect() as connection:
        spectra, instruments, axes = (
            table_of(Spectrum),
            table_of(Instrument),
            table_of(WavelengthAxis),
        )
        rows = connection.execute(
            sa.select(
                instruments.c.name,
                instruments.c.serial,
                axes.c.first_nm,
                axes.c.last_nm,
                axes.c.n_bands,
                sa.func.count(spectra.c.id),
            )
            .join(spectra, spectra.c.instrument_id == instruments.c.id)
            .join(axes, spectra.c.axis_id == axes.c.id)
            .group_by(
                instruments.c.name,
                instruments.c.serial,
                axes.c.first_nm,
                axes.c.last_nm,
                axes.c.n_bands,
            )
            .order_by(instruments.c.name)
        ).all()
        by_instrument: dict[tuple[str, str | None], tuple[int, list[str]]] = {}
        for name, serial, first, last, bands, count in rows:
            total, grids = by_instrument.get((name, serial), (0, []))
            by_instrument[(name, serial)] = (
                total + int(count),
                [*grids, f"{first:g}-{last:g} nm ({bands})"],
            )
        lab, props = table_of(LabValue), table_of(Property)
        properties = [
            (str(n), u, m, int(c), int(k or 0))
            for n, u, m, c, k in connection.execute(
                sa.select(
                    props.c.name,
                    props.c.unit,
                    props.c.method,
                    sa.func.count(lab.c.id),
                    sa.func.sum(sa.case((lab.c.censored, 1), else_=0)),
                )
                .join(lab, lab.c.property_id == props.c.id, isouter=True)
                .group_by(props.c.name, props.c.unit, props.c.method)
                .order_by(props.c.name)
            )
        ]
        batches_table = table_of(ImportBatch)
        batches = [
            (int(i), t, f"{u}@{h}", str(s), int(n), int(m))
            for i, t, u, h, s, n, m in connection.execute(
                sa.select(
                    batches_table.c.id,
                    batches_table.c.imported_at,
                    batches_table.c.user,
                    batches_table.c.host,
                    batches_table.c.source,
                    batches_table.c.n_spectra,
                    batches_table.c.n_lab_values,
                ).order_by(batches_table.c.id)
            )
        ]

        def count(table: sa.Table) -> int:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )

        return LibrarySummary(
            url=safe_url(engine.url),
            schema=str(schema_revision(engine)),
            n_spectra=count(spectra),
            n_samples=count(table_of(Sample)),
            n_sites=count(table_of(Site)),
            instruments=[(n, s, c, ", ".join(g)) for (n, s), (c, g) in by_instrument.items()],
            properties=properties,
            batches=batches,
        )


def export_library(
    url: str,
    out: str | os.PathLike[str],
    *,
    instrument: str | Sequence[str] | None = None,
    properties: str | Sequence[str] | None = None,
    where: str | Sequence[str] | None = None,
    overwrite: bool = False,
) -> SpectraTable:
    """Write the library (or the filtered part) as a Parquet spectra table, atomically.

    Raises:
        SpecsoilError: If ``out`` exists and ``overwrite`` is False, or as :func:`read_library`.
    """
    path = Path(out)
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise SpecsoilError(f"{path}: the output must end in .parquet")
    if path.exists() and not overwrite:
        raise SpecsoilError(f"{path} exists; pass --overwrite to replace it")
    table = read_library(url, instrument=instrument, properties=properties, where=where)
    write_spectra_parquet(table, path)
    return table
