"""The in-memory form of a spectra table: spectra, wavelengths and metadata."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError

SpectraKind = Literal["reflectance", "reflectance-percent", "absorbance"]
SPECTRA_KINDS: tuple[SpectraKind, ...] = ("reflectance", "reflectance-percent", "absorbance")

# Columns recognised as a sample identifier, in order of preference.
ID_COLUMNS = ("sample_id", "SampleID", "ID", "id", "POINT_ID", "Point_ID")
# Other identifier names (`lab_id`, `Sample ID`, `point.id`): never offered as targets.
_ID_NAME = re.compile(r"(?:.*[_ .-])?id", re.IGNORECASE)

CensoredPolicy = Literal["missing", "half", "limit"]
CENSORED_POLICIES: tuple[CensoredPolicy, ...] = ("missing", "half", "limit")
# How labs write "no value" (compared lower-cased, spaces trimmed). pyarrow already turns "",
# NA, N/A, NaN and null into missing cells; these are the rest.
MISSING_LAB_VALUES = frozenset(
    {
        *("na", "n.a.", "n/a", "nan", "null", "none", "#n/a", "missing", "?"),
        *("nd", "n.d.", "n.d", "not detected", "not determined", "nr", "n.r."),
        *("-", "--", "---", "lod", "<lod", "loq", "<loq", "<dl", "bdl", "b.d.l.", "<bdl"),
    }
)
# "<0.1", "< 0.1", ">=250", "<1e-3": a value censored at a detection or reporting limit.
_CENSORED = re.compile(r"^([<>])=?\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)$")
# Listed in messages: more names than this are cut short.
_LISTED_COLUMNS = 30


@dataclass(frozen=True)
class LabValues:
    """A text lab column read as numbers.

    Attributes:
        values: The numbers, float64; missing and (by policy) censored cells are NaN.
        missing: Cells that were empty or written as missing (``n.d.``, ``NA``, ``-``, ...).
        below: Cells censored from above, written ``<x``.
        above: Cells censored from below, written ``>x``.
        first_other: 0-based position of the first cell that is none of these, or None.
    """

    values: NDArray[np.float64]
    missing: int
    below: int
    above: int
    first_other: int | None

    def counts(self) -> dict[str, int]:
        """The non-zero counts, for reports: ``{"missing": 3, "below": 2}``."""
        named = {"missing": self.missing, "below": self.below, "above": self.above}
        return {key: count for key, count in named.items() if count}


def parse_lab_values(raw: pd.Series, censored: CensoredPolicy = "missing") -> LabValues:
    """Read a column of lab values written as text.

    Numbers are kept; empty cells and the usual ways of writing "no value" (``n.d.``, ``NA``,
    ``-``, ``<LOD``, ...) become NaN; ``<x`` and ``>x`` are censored values, made NaN
    (``censored="missing"``), x/2 for ``<x`` and x for ``>x`` (``"half"``), or x (``"limit"``).

    Args:
        raw: The column, as text (None for empty cells) or already numeric.
        censored: What to do with ``<x`` and ``>x``.

    Returns:
        The numbers, the counts of each kind of cell and the first cell that is not a value.
    """
    if censored not in CENSORED_POLICIES:
        raise SpecsoilError(f"censored must be one of {list(CENSORED_POLICIES)}; got {censored!r}")
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = pd.to_numeric(raw).to_numpy(dtype=np.float64, na_value=np.nan)
        return LabValues(values, int(np.isnan(values).sum()), 0, 0, None)
    text = (
        raw.astype(object)
        .where(raw.notna(), None)
        .map(lambda cell: None if cell is None else str(cell).strip())
    )
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    missing = text.isna().to_numpy() | text.str.lower().isin(MISSING_LAB_VALUES).to_numpy()
    parts = text.str.extract(_CENSORED)
    limit = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    below = (parts[0] == "<").to_numpy() & ~np.isnan(limit)
    above = (parts[0] == ">").to_numpy() & ~np.isnan(limit)
    number = ~np.isnan(numbers) & ~missing
    values = np.where(number, numbers, np.nan)
    if censored == "half":
        values = np.where(below, limit / 2, np.where(above, limit, values))
    elif censored == "limit":
        values = np.where(below | above, limit, values)
    other = np.flatnonzero(~(number | missing | below | above))
    return LabValues(
        values=values,
        missing=int(missing.sum()),
        below=int(below.sum()),
        above=int(above.sum()),
        first_other=int(other[0]) if other.size else None,
    )


@dataclass(frozen=True)
class SpectraTable:
    """Spectra read from one source, converted to absorbance, with their metadata.

    Attributes:
        X: Absorbance log10(1/R), shape (n_samples, n_wavelengths), float32.
        wavelengths: Band centres in nm, shape (n_wavelengths,), strictly ascending.
        metadata: Every non-spectral column (ids, coordinates, lab values), one row per
            spectrum, with a 0..n-1 index.
        source: Where the table came from (a file path or ``dataset:<name>``).
        spectra_kind: The kind of the values in the source, before conversion.
        kind_detected: True when ``spectra_kind`` was inferred from the values.
        kind_reason: A short sentence saying how the kind was decided.
        dropped_rows: 1-based data-row numbers dropped because of invalid spectra (or a
            repeated header line).
        lab_value_counts: Per metadata column read as numbers, how many cells were missing
            (``{"missing": n}``) or censored (``"below"``: ``<x``, ``"above"``: ``>x``); only
            columns with such cells are listed.
        censored: What was done with censored lab values (see :func:`parse_lab_values`).
    """

    X: NDArray[np.float32]
    wavelengths: NDArray[np.float64]
    metadata: pd.DataFrame
    source: str
    spectra_kind: SpectraKind = "absorbance"
    kind_detected: bool = False
    kind_reason: str = "declared"
    dropped_rows: tuple[int, ...] = field(default=())
    lab_value_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    censored: CensoredPolicy = "missing"

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.X.shape[1] != self.wavelengths.shape[0]:
            raise ValueError(
                f"X must be (n_samples, {self.wavelengths.shape[0]}); got shape {self.X.shape}"
            )
        if len(self.metadata) != self.X.shape[0]:
            raise ValueError(
                f"metadata has {len(self.metadata)} rows but X has {self.X.shape[0]} spectra"
            )

    @property
    def n_samples(self) -> int:
        """Number of spectra."""
        return int(self.X.shape[0])

    @property
    def sample_ids(self) -> pd.Series:
        """The sample identifier column if there is one, else 1-based row numbers."""
        for name in ID_COLUMNS:
            if name in self.metadata.columns:
                return self.metadata[name].astype(str).rename("sample_id")
        return pd.Series(np.arange(1, self.n_samples + 1).astype(str), name="sample_id")

    def numeric_columns(self) -> list[str]:
        """Metadata columns that hold numbers and are not identifiers (candidate targets)."""
        return [
            c
            for c in self.metadata.columns
            if pd.api.types.is_numeric_dtype(self.metadata[c])
            and not pd.api.types.is_bool_dtype(self.metadata[c])
            and c not in ID_COLUMNS
            and not _ID_NAME.fullmatch(str(c))
        ]

    def target_choices(self) -> str:
        """The candidate targets for a message: a list, cut short after 30 names."""
        names = self.numeric_columns()
        shown = names[:_LISTED_COLUMNS]
        more = f" and {len(names) - _LISTED_COLUMNS} more" if len(names) > _LISTED_COLUMNS else ""
        return f"{shown}{more}"

    def data_row(self, position: int) -> int:
        """The 1-based data row in the source of the 0-based ``position``, past dropped rows."""
        row = position + 1
        for dropped in sorted(self.dropped_rows):
            if dropped > row:
                break
            row += 1
        return row

    def column(self, name: str) -> pd.Series:
        """Return a metadata column, or a clear error listing those available."""
        if name not in self.metadata.columns:
            raise SpecsoilError(
                f"{self.source}: no column {name!r}; available: {list(self.metadata.columns)}"
            )
        return self.metadata[name]

    def targets(self, names: Sequence[str]) -> NDArray[np.float64]:
        """Lab values for ``names`` as float64 (n_samples, n_targets); missing values are NaN.

        Raises:
            SpecsoilError: If a column is unknown or holds a value that is not a number.
        """
        if not names:
            raise SpecsoilError(
                f"{self.source}: no target given; numeric columns: {self.target_choices()}"
            )
        out = np.empty((self.n_samples, len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            if name not in self.metadata.columns:
                raise SpecsoilError(
                    f"{self.source}: unknown target {name!r}; available: {self.target_choices()}"
                )
            raw = self.metadata[name]
            parsed = parse_lab_values(raw, self.censored)
            if parsed.first_other is not None:
                row = parsed.first_other
                raise SpecsoilError(
                    f"{self.source}: target column {name!r}, data row {self.data_row(row)}: "
                    f"{raw.iloc[row]!r} is not a number (write missing values as empty, NA or "
                    "n.d., and censored ones as <x or >x)"
                )
            out[:, j] = parsed.values
        return out

    def subset(self, rows: NDArray[np.intp] | Sequence[int]) -> SpectraTable:
        """Return the table restricted to ``rows`` (0-based positions)."""
        index = np.asarray(rows, dtype=np.intp)
        return SpectraTable(
            X=self.X[index],
            wavelengths=self.wavelengths,
            metadata=self.metadata.iloc[index].reset_index(drop=True),
            source=self.source,
            spectra_kind=self.spectra_kind,
            kind_detected=self.kind_detected,
            kind_reason=self.kind_reason,
            dropped_rows=self.dropped_rows,
            lab_value_counts=self.lab_value_counts,
            censored=self.censored,
        )
