"""The in-memory form of a spectra table: spectra, wavelengths and metadata."""

from __future__ import annotations

from collections.abc import Sequence
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
        dropped_rows: 1-based data-row numbers dropped because of invalid spectra.
    """

    X: NDArray[np.float32]
    wavelengths: NDArray[np.float64]
    metadata: pd.DataFrame
    source: str
    spectra_kind: SpectraKind = "absorbance"
    kind_detected: bool = False
    kind_reason: str = "declared"
    dropped_rows: tuple[int, ...] = field(default=())

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
        """Metadata columns that hold numbers (candidate targets)."""
        return [c for c in self.metadata.columns if pd.api.types.is_numeric_dtype(self.metadata[c])]

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
                f"{self.source}: no target given; numeric columns: {self.numeric_columns()}"
            )
        out = np.empty((self.n_samples, len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            if name not in self.metadata.columns:
                raise SpecsoilError(
                    f"{self.source}: unknown target {name!r}; available: {self.numeric_columns()}"
                )
            raw = self.metadata[name]
            values = pd.to_numeric(raw, errors="coerce")
            bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise SpecsoilError(
                    f"{self.source}: target column {name!r}, data row {row + 1}: "
                    f"{raw.iloc[row]!r} is not a number"
                )
            out[:, j] = values.to_numpy(dtype=np.float64, na_value=np.nan)
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
        )
