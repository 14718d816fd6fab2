"""Synthetic soil spectra tables in the LUCAS 2009 topsoil layout, for tests and benchmarks.

The tables are made up: every row is labelled synthetic (a ``source`` column, and in Parquet
the schema metadata), and nothing here should be taken for real soil data. They are built
so that models have something real to find:

* The twelve properties are correlated as in soils: clay, silt and sand come from an
  additive log-ratio (so they sum to 100); organic carbon is log-normal and slightly higher
  in clayey soils; N follows OC with a C:N ratio near 10; carbonate appears only in
  alkaline soils and buffers their pH near 8; pH in CaCl2 is about 0.5 below pH in water;
  CEC comes from clay and organic matter; P and K are skewed, K rising with clay.
* Absorbance spectra carry the bands soil spectroscopists read: Al-OH of clay minerals at
  2205 nm (shoulder at 2160 nm), carbonate at 2335 nm, O-H / water at 1415 and 1915 nm,
  organic matter as a darker and steeper visible region plus bands near 1730 and 2310 nm,
  and iron oxides near 530 and 900 nm. Band depths vary from sample to sample beyond the
  properties (mineralogy, moisture, scatter, noise), so predictions are good but not exact.

Rows are generated in blocks of ``_BLOCK_ROWS`` with a seed per block, so a seed gives the
same table whatever the row-group size, and memory stays bounded by a row group.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from specsoil._atomic import atomic_directory, atomic_path
from specsoil._errors import SpecsoilError
from specsoil.data._tables import (
    KEY_COLUMNS,
    KEY_DETECTED,
    KEY_KIND,
    KEY_REASON,
    KEY_VALUES,
)

__all__ = [
    "LUCAS_PROPERTIES",
    "SYNTHETIC_LABEL",
    "is_synthetic",
    "lucas_wavelengths",
    "make_synthetic",
    "write_synthetic",
]

# The lab properties of the LUCAS 2009 topsoil table, in its column order. Units: % for
# coarse, clay, silt, sand; g/kg for OC, CaCO3, N; mg/kg for P, K; cmol(+)/kg for CEC.
LUCAS_PROPERTIES = (
    "coarse",
    "clay",
    "silt",
    "sand",
    "pH.in.CaCl2",
    "pH.in.H2O",
    "OC",
    "CaCO3",
    "N",
    "P",
    "K",
    "CEC",
)
# What every synthetic row says in its `source` column.
SYNTHETIC_LABEL = "specsoil synth (synthetic)"
# Parquet schema metadata keys marking a synthetic table.
KEY_SYNTHETIC = b"specsoil.synthetic"
KEY_DESCRIPTION = b"specsoil.description"
DESCRIPTION = (
    "SYNTHETIC soil spectra in the LUCAS 2009 topsoil layout, written by specsoil synth for "
    "tests and benchmarks; not real soil data"
)
# Read back as the table's kind_reason, so `describe_table` says the data are synthetic.
KIND_REASON = "synthetic absorbance written by specsoil synth (not real soil data)"

_N_BANDS = 4200
_BLOCK_ROWS = 500
_ID_PREFIX = "SYN"
# Europe's extent as sampled by LUCAS (degrees).
_LAT_RANGE = (35.0, 70.0)
_LONG_RANGE = (-10.0, 30.0)


def lucas_wavelengths() -> NDArray[np.float64]:
    """The LUCAS grid: 400 to 2499.5 nm every 0.5 nm (4,200 bands)."""
    return 400.0 + 0.5 * np.arange(_N_BANDS, dtype=np.float64)


def _spectral_names(wavelengths: NDArray[np.float64]) -> list[str]:
    return [f"spc.{w:g}" for w in wavelengths]


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-x))
    return result


def _properties(rng: np.random.Generator, n: int) -> dict[str, NDArray[np.float64]]:
    """Draw correlated lab values for ``n`` soils from a few latent factors."""
    fine, silty, organic, alkaline, nutrient = rng.standard_normal((5, n))
    # Texture as an additive log-ratio against sand, so the three fractions sum to 100 %.
    log_clay = -0.8 + 0.85 * fine
    log_silt = -0.1 + 0.45 * fine + 0.6 * silty
    parts = np.exp(np.stack([log_clay, log_silt, np.zeros(n)]))
    clay, silt, _ = 100.0 * parts / parts.sum(axis=0)
    clay, silt = np.round(clay), np.round(silt)
    sand = 100.0 - clay - silt
    coarse = np.where(
        rng.random(n) < 0.3, 0.0, np.round(np.exp(1.8 + 0.9 * rng.standard_normal(n)))
    )
    coarse = np.minimum(coarse, 80.0)

    # Carbonate only in alkaline soils, and where present it buffers the pH near 8.
    ph_water = np.clip(6.2 + 1.1 * alkaline, 3.5, 9.5)
    calcareous = rng.random(n) < _sigmoid(3.0 * (ph_water - 7.4))
    caco3 = np.where(
        calcareous,
        np.exp(3.6 + 0.6 * (ph_water - 7.4) + 0.9 * rng.standard_normal(n)),
        0.0,
    )
    caco3 = np.round(np.minimum(caco3, 900.0))
    buffered = 8.1 + 0.2 * rng.standard_normal(n)
    ph_water = np.round(np.where(calcareous, 0.4 * ph_water + 0.6 * buffered, ph_water), 2)
    ph_cacl2 = np.round(ph_water - (0.5 + 0.15 * rng.standard_normal(n)), 2)

    # Organic carbon: log-normal, a little higher in clayey and in acid soils.
    oc = np.exp(np.log(18.0) + 0.75 * organic + 0.15 * fine - 0.25 * alkaline)
    oc = np.round(np.clip(oc, 0.5, 500.0), 1)
    n_total = np.round(oc / np.exp(np.log(10.0) + 0.15 * rng.standard_normal(n)), 2)
    p = np.round(np.exp(np.log(20.0) + 0.8 * nutrient + 0.2 * organic), 1)
    k = np.round(np.exp(np.log(150.0) + 0.5 * fine + 0.4 * nutrient), 1)
    # Clay contributes ~0.5 cmol(+)/kg per %, organic matter (1.72 x OC) ~2 cmol(+)/g.
    cec = (0.5 * clay + 0.34 * oc) * np.exp(0.2 * rng.standard_normal(n))
    cec = np.round(np.clip(cec, 0.5, None), 1)
    return {
        "coarse": coarse,
        "clay": clay,
        "silt": silt,
        "sand": sand,
        "pH.in.CaCl2": ph_cacl2,
        "pH.in.H2O": ph_water,
        "OC": oc,
        "CaCO3": caco3,
        "N": n_total,
        "P": p,
        "K": k,
        "CEC": cec,
    }


def _band(wavelengths: NDArray[np.float64], centre: float, width: float) -> NDArray[np.float64]:
    """A Gaussian absorption band of unit depth; ``width`` is its standard deviation in nm."""
    shape: NDArray[np.float64] = np.exp(-0.5 * ((wavelengths - centre) / width) ** 2)
    return shape


def _spectra(
    rng: np.random.Generator, props: dict[str, NDArray[np.float64]], grid: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Absorbance log10(1/R) whose features follow the properties, plus nuisance variation."""
    n = props["clay"].size
    clay, oc, caco3 = props["clay"], props["OC"], props["CaCO3"]
    # Per-sample factors the properties do not explain: clay mineralogy (kaolinite vs.
    # smectite changes the Al-OH depth per % clay), moisture, iron oxides, scatter.
    mineralogy = np.exp(0.25 * rng.standard_normal(n))
    moisture = rng.gamma(2.0, 0.02, n)
    iron = rng.gamma(2.0, 0.5, n)
    organic = np.log1p(oc / 10.0)  # darkening saturates at high OC

    shapes = np.stack(
        [
            np.ones_like(grid),  # albedo level
            np.exp(-(grid - 400.0) / 300.0),  # visible slope (organic matter, iron)
            (grid - 400.0) / 2100.0,  # scatter tilt
            _band(grid, 2205.0, 18.0) + 0.35 * _band(grid, 2160.0, 15.0),  # Al-OH (clay)
            _band(grid, 2335.0, 22.0),  # carbonate
            _band(grid, 1415.0, 14.0),  # O-H overtone
            _band(grid, 1915.0, 25.0),  # water combination band
            _band(grid, 1730.0, 30.0) + 1.2 * _band(grid, 2310.0, 25.0),  # organic C-H
            _band(grid, 530.0, 45.0) + 0.7 * _band(grid, 900.0, 90.0),  # iron oxides
        ]
    )
    depths = np.column_stack(
        [
            0.25 + 0.12 * organic + 0.05 * rng.standard_normal(n),
            0.15 + 0.25 * organic + 0.05 * iron,
            0.05 * rng.standard_normal(n),
            0.0022 * clay * mineralogy,
            0.0004 * caco3 * np.exp(0.3 * rng.standard_normal(n)),  # grain size
            0.01 + 0.0006 * clay + 0.4 * moisture,
            0.015 + 0.0012 * clay + 1.2 * moisture,
            0.0008 * oc * np.exp(0.15 * rng.standard_normal(n)),
            0.03 * iron,
        ]
    )
    absorbance = depths @ shapes  # (n, bands)
    # Multiplicative scatter (particle size, packing), then detector noise.
    absorbance *= np.exp(0.05 * rng.standard_normal((n, 1)))
    absorbance += rng.normal(0.0, 0.002, absorbance.shape)
    result: NDArray[np.float32] = absorbance.astype(np.float32)
    return result


def _block(seed: int, index: int, rows: int, grid: NDArray[np.float64]) -> pa.Table:
    """Rows ``index * _BLOCK_ROWS`` onwards: ids, coordinates, properties, label, spectra."""
    rng = np.random.default_rng([seed, index])
    props = _properties(rng, rows)
    first = index * _BLOCK_ROWS + 1
    columns: dict[str, Any] = {
        "POINT_ID": pa.array([f"{_ID_PREFIX}{i:06d}" for i in range(first, first + rows)]),
        "GPS_LAT": np.round(rng.uniform(*_LAT_RANGE, rows), 6),
        "GPS_LONG": np.round(rng.uniform(*_LONG_RANGE, rows), 6),
        **props,
        "source": pa.array([SYNTHETIC_LABEL] * rows),
    }
    # Column by column from the transposed block: no 4,200-column DataFrame on the way.
    bands = np.ascontiguousarray(_spectra(rng, props, grid).T)  # (n_bands, rows)
    for name, values in zip(_spectral_names(grid), bands, strict=True):
        columns[name] = values
    return pa.table(columns)


def _check_rows(n: object, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise SpecsoilError(f"{name} must be a positive integer; got {n!r}")
    return int(n)


def _chunks(n: int, seed: int, chunk_rows: int) -> Iterator[pa.Table]:
    """The table in chunks of ``chunk_rows`` rows, cut from blocks of fixed seeds."""
    grid = lucas_wavelengths()
    pending: list[pa.Table] = []
    held = 0
    for index in range(-(-n // _BLOCK_ROWS)):
        rows = min(_BLOCK_ROWS, n - index * _BLOCK_ROWS)
        # Always a whole block, then cut: the draws, and so the rows, do not depend on n.
        pending.append(_block(seed, index, _BLOCK_ROWS, grid).slice(0, rows))
        held += rows
        while held >= chunk_rows:
            joined = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
            yield joined.slice(0, chunk_rows)
            rest = joined.slice(chunk_rows)
            pending, held = ([rest] if rest.num_rows else []), rest.num_rows
    if held:
        yield pa.concat_tables(pending)


def make_synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """Build a synthetic LUCAS-layout table in memory (``n`` rows; mind 17 kB per row).

    Args:
        n: Number of rows.
        seed: Random seed; the same seed gives the same rows as :func:`write_synthetic`.

    Returns:
        ``POINT_ID``, ``GPS_LAT``, ``GPS_LONG``, the twelve ``LUCAS_PROPERTIES``,
        ``source`` (always ``"specsoil synth (synthetic)"``) and 4,200 absorbance columns
        ``spc.400`` ... ``spc.2499.5`` (float32).

    Raises:
        SpecsoilError: If ``n`` is not a positive integer.
    """
    n = _check_rows(n, "n")
    frame: pd.DataFrame = pa.concat_tables(list(_chunks(n, seed, _BLOCK_ROWS))).to_pandas()
    return frame


def _with_labels(schema: pa.Schema) -> pa.Schema:
    """The schema with metadata saying the table is synthetic and holds absorbance."""
    spectral = _spectral_names(lucas_wavelengths())
    return schema.with_metadata(
        {
            KEY_SYNTHETIC: b"true",
            KEY_DESCRIPTION: DESCRIPTION.encode(),
            # The keys convert_to_parquet writes: read_spectra then takes the values as
            # absorbance without detecting, and reports KIND_REASON.
            KEY_VALUES: b"absorbance log10(1/R)",
            KEY_KIND: b"absorbance",
            KEY_DETECTED: b"false",
            KEY_REASON: KIND_REASON.encode(),
            KEY_COLUMNS: json.dumps(spectral).encode(),
        }
    )


def write_synthetic(
    path: str | os.PathLike[str],
    n: int,
    *,
    seed: int = 0,
    row_group_size: int = 1000,
    row_groups_per_file: int | None = None,
) -> Path:
    """Write a synthetic LUCAS-layout table, chunk by chunk, atomically.

    Parquet (``.parquet``/``.pq``) gets one row group per ``row_group_size`` rows and schema
    metadata saying the table is synthetic (``specsoil.synthetic = true``) and that the
    values are absorbance; CSV (``.csv``, or gzip-compressed ``.csv.gz``) has only the
    per-row ``source`` label. Memory stays near one row group whatever ``n`` is.

    With ``row_groups_per_file``, ``path`` is a directory of Parquet parts
    (``part-00000.parquet``, ...) of that many row groups each, which
    ``ParquetSpectraSource`` streams. Parts keep memory flat for very large tables: pyarrow
    holds the whole footer of an open file, about 1 kB per column per row group (3.7 MB per
    row group of the 4,216 LUCAS columns), so one 100,000-row file of 1,000-row groups
    costs some 370 MB before a spectrum is read.

    Args:
        path: File (or, with ``row_groups_per_file``, directory) to write; a file's suffix
            picks the format.
        n: Number of rows.
        seed: Random seed; the rows do not depend on ``row_group_size`` or the parts.
        row_group_size: Rows per Parquet row group (and per CSV write).
        row_groups_per_file: Row groups per part file; ``None`` writes one file.

    Returns:
        The path written.

    Raises:
        SpecsoilError: If ``n``, ``row_group_size`` or ``row_groups_per_file`` is not a
            positive integer or the suffix is not one of those above.
    """
    n = _check_rows(n, "n")
    row_group_size = _check_rows(row_group_size, "row_group_size")
    out = Path(path)
    name = out.name.lower()
    if row_groups_per_file is not None:
        per_file = _check_rows(row_groups_per_file, "row_groups_per_file")
        if name.endswith((".csv", ".csv.gz")):
            raise SpecsoilError(f"{out}: parts are written as Parquet; drop the CSV suffix")
        chunks = _chunks(n, seed, row_group_size)
        with atomic_directory(out, kind="parquet-parts") as tmp:
            for part in itertools.count():
                group = list(itertools.islice(chunks, per_file))
                if not group:
                    break
                _write_parquet(tmp / f"part-{part:05d}.parquet", iter(group))
        return out
    if name.endswith((".parquet", ".pq")):
        with atomic_path(out) as tmp:
            _write_parquet(tmp, _chunks(n, seed, row_group_size))
        return out
    if name.endswith((".csv", ".csv.gz")):
        with atomic_path(out) as tmp:
            # Level 1: most of the size gain of gzip for a fraction of its time.
            opened = gzip.open(tmp, "wb", compresslevel=1) if name.endswith(".gz") else None
            with opened or tmp.open("wb") as handle:
                _write_csv(handle, _chunks(n, seed, row_group_size))
        return out
    raise SpecsoilError(
        f"{out}: unknown output format; use a name ending in .parquet, .csv or .csv.gz"
    )


def _write_parquet(path: Path, chunks: Iterator[pa.Table]) -> None:
    """Write the chunks to one Parquet file, one row group each, labelled synthetic."""
    first = next(chunks)
    schema = _with_labels(first.schema)
    # Spectral values are nearly all distinct: dictionary pages would only add bytes.
    with pq.ParquetWriter(path, schema, use_dictionary=["source"]) as writer:
        for chunk in itertools.chain([first], chunks):
            writer.write_table(chunk.replace_schema_metadata(schema.metadata))


def _write_csv(
    handle: IO[bytes] | gzip.GzipFile | io.BufferedWriter, chunks: Iterator[pa.Table]
) -> None:
    """Write the chunks to one CSV stream (one header) with pyarrow's writer."""
    writer: Any = None
    try:
        for chunk in chunks:
            if writer is None:
                writer = pa_csv.CSVWriter(handle, chunk.schema)
            writer.write_table(chunk)
    finally:
        if writer is not None:
            writer.close()


def is_synthetic(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a Parquet file that :func:`write_synthetic` marked synthetic."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError):
        return False
    return metadata.get(KEY_SYNTHETIC) == b"true"
