"""How the columns of a table map onto the library: ids, lab values, sites, depths, scans.

Every column also travels as metadata (or as lab values), so reading the library gives
back the table's columns with their names and dtypes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from specsoil._errors import SpecsoilError
from specsoil.data import DEFAULT_COORDINATE_COLUMNS, ID_COLUMNS, SpectraTable

# Column names (lower case) that fill the spectrum's own fields; the vendor readers write them.
INSTRUMENT_COLUMNS = ("instrument", "instrument_name")
SERIAL_COLUMNS = ("serial", "serial_number", "instrument_serial")
ACQUIRED_COLUMNS = ("acquired", "acquired_at", "acquisition_time", "datetime")
SOURCE_FILE_COLUMNS = ("source_file", "file", "filename")
SITE_COLUMNS = ("site", "site_id", "site_name")
DEPTH_COLUMNS = (
    ("depth_top_cm", "depth_bottom_cm"),
    ("top_cm", "bottom_cm"),
    ("depth_top", "depth_bottom"),
    ("upper_depth", "lower_depth"),
)
# Numeric columns with these words in their name label rows rather than measure soil.
_LABEL_WORDS = {"fold", "split", "train", "test", "set", "group", "block", "cluster", "year"}
_CENSORED = re.compile(r"^\s*(<=|>=|<|>)?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")

ROLE_SAMPLE = "sample"
ROLE_SPECTRUM = "spectrum"
ROLE_LAB = "lab"


@dataclass(frozen=True)
class ColumnPlan:
    """Which column plays which part in an import."""

    id_column: str | None
    lab_columns: tuple[str, ...]
    sample_columns: tuple[str, ...]
    spectrum_columns: tuple[str, ...]
    site_column: str | None
    coordinate_columns: tuple[str, str] | None
    depth_columns: tuple[str, str] | None

    def spec(self, metadata: pd.DataFrame) -> list[dict[str, str]]:
        """The batch's column record: name, dtype and role, in the table's order."""
        roles = {name: ROLE_LAB for name in self.lab_columns}
        roles.update({name: ROLE_SPECTRUM for name in self.spectrum_columns})
        return [
            {
                "name": str(name),
                "dtype": str(metadata[name].dtype),
                "role": roles.get(name, ROLE_SAMPLE),
            }
            for name in metadata.columns
        ]


def _find(columns: Sequence[str], names: Sequence[str]) -> str | None:
    lower = {str(c).lower(): str(c) for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def find_column(metadata: pd.DataFrame, names: Sequence[str]) -> str | None:
    """The first column whose lower-cased name is in ``names``."""
    return _find(list(metadata.columns), names)


def plan_columns(
    table: SpectraTable,
    *,
    lab_columns: Sequence[str] | None,
    site_column: str | None,
    x: str | None,
    y: str | None,
) -> ColumnPlan:
    """Decide the role of each column of ``table``.

    Raises:
        SpecsoilError: If a named column is missing or a lab column holds text that is not a
            number (with an optional ``<``/``>`` qualifier).
    """
    metadata = table.metadata
    columns = [str(c) for c in metadata.columns]
    for name in [*(lab_columns or ()), *(c for c in (site_column, x, y) if c)]:
        if name not in columns:
            raise SpecsoilError(f"{table.source}: no column {name!r}; columns: {columns}")
    if (x is None) != (y is None):
        raise SpecsoilError(f"{table.source}: name both coordinate columns (x and y), or neither")
    id_column = next((c for c in ID_COLUMNS if c in columns), None)
    coordinates: tuple[str, str] | None = None
    if x is not None and y is not None:
        coordinates = (x, y)
    elif all(c in columns for c in DEFAULT_COORDINATE_COLUMNS):
        coordinates = DEFAULT_COORDINATE_COLUMNS
    depth = next(
        (pair for pair in DEPTH_COLUMNS if _find(columns, pair[:1]) and _find(columns, pair[1:])),
        None,
    )
    depth_columns = (
        (str(_find(columns, depth[:1])), str(_find(columns, depth[1:]))) if depth else None
    )
    site = site_column or _find(columns, SITE_COLUMNS)
    if lab_columns is None:
        reserved = {id_column, site, *(coordinates or ()), *(depth_columns or ())}
        lab = tuple(c for c in columns if c not in reserved and _is_lab_column(c, metadata[c]))
    else:
        lab = tuple(lab_columns)
        for name in lab:
            check_lab_column(table, name)
    rest = [c for c in columns if c not in lab]
    codes = sample_codes(table, id_column)
    varying = _varying_columns(metadata[rest], codes) if rest else set()
    return ColumnPlan(
        id_column=id_column,
        lab_columns=lab,
        sample_columns=tuple(c for c in rest if c not in varying),
        spectrum_columns=tuple(c for c in rest if c in varying),
        site_column=site,
        coordinate_columns=coordinates,
        depth_columns=depth_columns,
    )


def _is_lab_column(name: str, values: pd.Series) -> bool:
    words = set(re.split(r"[^a-z]+", name.lower()))
    if words & _LABEL_WORDS:
        return False
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    if pd.api.types.is_datetime64_any_dtype(values):
        return False
    text = values.dropna().astype(str)
    text = text[text.str.strip() != ""]
    if text.empty:
        return False
    matches = text.str.extract(_CENSORED)
    # Text columns count only when every value is a number and some carry a qualifier.
    return bool(matches[1].notna().all() and matches[0].notna().any())


def check_lab_column(table: SpectraTable, name: str) -> None:
    """Raise when a named lab column holds a value that is not a (qualified) number."""
    values = table.metadata[name]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return
    text = values.astype(object).where(values.notna(), None)
    for row, raw in enumerate(text):
        if raw is None or str(raw).strip() == "":
            continue
        if _CENSORED.match(str(raw)) is None:
            raise SpecsoilError(
                f"{table.source}: lab column {name!r}, data row {row + 1}: {raw!r} is not a "
                "number (a detection limit may be written '<0.5' or '>100')"
            )


def sample_codes(table: SpectraTable, id_column: str | None) -> pd.Series:
    """Each row's sample code: its id, or without an id column a hash of the row."""
    if id_column is not None:
        codes = table.metadata[id_column].astype(str)
        missing = table.metadata[id_column].isna() | (codes.str.strip() == "")
        if missing.any():
            row = int(np.flatnonzero(missing.to_numpy())[0])
            raise SpecsoilError(
                f"{table.source}: sample id column {id_column!r}, data row {row + 1} is empty"
            )
        return codes.reset_index(drop=True)
    import hashlib

    return pd.Series(["row-" + hashlib.sha256(row.tobytes()).hexdigest()[:32] for row in table.X])


def _varying_columns(metadata: pd.DataFrame, codes: pd.Series) -> set[str]:
    """Columns whose value differs between rows of one sample (they belong to the scan)."""
    if not codes.duplicated().any():
        return set()
    counts = metadata.astype(str).groupby(codes.to_numpy()).nunique()
    return {str(c) for c in counts.columns[(counts > 1).any(axis=0)]}


def json_values(values: pd.Series) -> list[Any]:
    """A column as JSON-ready Python values: NaN/NA become None, times ISO text."""
    if pd.api.types.is_datetime64_any_dtype(values):
        text = values.map(lambda t: t.isoformat() if pd.notna(t) else None)
        return list(text)
    objects = values.astype(object).where(values.notna(), None).tolist()
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return objects
    return [
        None if v is None else v if isinstance(v, (str, int, float, bool)) else str(v)
        for v in objects
    ]


def json_records(metadata: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """One JSON object per row holding ``columns``."""
    if not columns:
        return [{} for _ in range(len(metadata))]
    lists = [json_values(metadata[name]) for name in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*lists, strict=True)]


def parse_lab_values(
    values: pd.Series,
) -> tuple[list[float | None], list[str | None], list[str | None]]:
    """Lab values as (number, qualifier, raw text); raw text only for non-numeric columns."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return (
            [float(v) if np.isfinite(v) else None for v in numbers],
            [None] * len(numbers),
            [None] * len(numbers),
        )
    raw: list[str | None] = [
        None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
        for v in values.astype(object).tolist()
    ]
    numbers_out: list[float | None] = []
    qualifiers: list[str | None] = []
    for text in raw:
        match = _CENSORED.match(text) if text is not None else None
        numbers_out.append(float(match.group(2)) if match else None)
        qualifiers.append(match.group(1) if match else None)
    return numbers_out, qualifiers, raw


def column_dtypes(specs: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """One dtype per column name across batches; columns whose batches disagree get 'object'."""
    dtypes: dict[str, str] = {}
    for spec in specs:
        name, dtype = spec["name"], spec["dtype"]
        if dtypes.get(name, dtype) != dtype:
            dtype = "object"
        dtypes[name] = dtype
    return dtypes


def to_json_text(value: object) -> str:
    """Canonical JSON text (sorted keys) for hashing."""
    return json.dumps(value, sort_keys=True, default=str)
