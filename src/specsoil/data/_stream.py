"""Read a Parquet spectra table one row group at a time, for files larger than memory.

``read_spectra`` builds one float32 matrix of the whole table. Training a CNN does not need
that: it needs batches. ``ParquetSpectraSource`` reads the file's schema once, then hands out
whole row groups as small ``SpectraTable``s (absorbance, float32), so what is held at a time
is one row group, however many rows the file has. Write such files with
``convert_to_parquet`` or ``write_synthetic``, whose row groups are about 16 MB.

One thing does grow with a single file: pyarrow holds its whole footer, about 1 kB per
column per row group (3.7 MB per row group of the 4,216 LUCAS columns, so 370 MB for
100,000 rows in 1,000-row groups). A directory of Parquet parts read as one table bounds
that too: only one part's footer is held at a time (bench/bench_stream.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._kinds import detect_spectra_kind, to_absorbance
from specsoil.data._synthetic import KEY_SYNTHETIC
from specsoil.data._table import SpectraKind, SpectraTable
from specsoil.data._tables import (
    PARQUET_MAGIC,
    ParquetSource,
    check_kind,
    describe_invalid,
    fill_spectra,
    metadata_frame,
    stored_kind,
)

logger = logging.getLogger(__name__)

__all__ = ["ParquetSpectraSource"]


class ParquetSpectraSource:
    """A Parquet spectra table read row group by row group.

    The schema, spectral columns (named as :func:`find_spectral_columns` accepts) and, unless
    given or recorded in the file, the kind of the values (detected from the first row
    group) are settled when the source is opened; spectra are read only when asked for.

    A directory of Parquet parts with the same columns (``write_synthetic`` with
    ``row_groups_per_file``, or any ``part-*.parquet`` set) is read as one table, parts in
    name order. Parts keep memory flat for very large tables: pyarrow holds the whole footer
    of an open file, about 1 kB per column per row group, which for 4,216 LUCAS columns is
    3.7 MB per row group; only one part's footer is held at a time.

    Args:
        path: The Parquet file, or a directory of Parquet parts.
        targets: Lab-value columns that will be modelled; checked to exist and be numeric.
        spectra_kind: What the values are (``"reflectance"``, ``"reflectance-percent"`` or
            ``"absorbance"``); ``None`` uses the kind recorded by ``convert_to_parquet`` or
            ``write_synthetic``, else detects it from the first row group.

    Attributes:
        path: The file or directory.
        parts: The Parquet files read (``[path]`` for a single file).
        targets: The target column names.
        n_rows: Rows in the table.
        n_row_groups: Row groups in the table (over all parts), the unit of reading.
        row_group_sizes: Rows of each row group.
        row_group_offsets: 0-based index of each row group's first row in the table.
        wavelengths: Band centres in nm, ascending.
        spectra_kind: The kind of the values in the file (before conversion to absorbance).
        kind_detected: True when the kind was inferred from the values.
        kind_reason: How the kind was decided.
        synthetic: True when the file is marked synthetic (``specsoil synth``).

    Raises:
        SpecsoilError: If the file is missing, not Parquet, has no row, no spectral columns,
            a part whose columns differ from the first's, or a target column that is
            missing or not numeric.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        targets: Sequence[str],
        spectra_kind: str | None = None,
    ) -> None:
        declared = check_kind(spectra_kind)
        self.path = Path(path)
        self.parts = _part_files(self.path)
        # batch_rows is unused here: whole row groups are read.
        self._source = ParquetSource(self.parts[0], batch_rows=1)
        self._open: tuple[int, pq.ParquetFile] = (0, self._source.file)
        sizes: list[int] = []
        locations: list[tuple[int, int]] = []
        for index in range(len(self.parts)):
            metadata = self._part(index).metadata
            if index and self._part(index).schema_arrow.names != self._source.names:
                raise SpecsoilError(
                    f"{self.parts[index]}: its columns differ from those of "
                    f"{self.parts[0]}; every part must have the same columns"
                )
            for group in range(metadata.num_row_groups):
                sizes.append(metadata.row_group(group).num_rows)
                locations.append((index, group))
        self._open = (0, self._source.file)  # let go of the last part's footer
        self._locations = locations
        self.n_row_groups = len(sizes)
        self.row_group_sizes: NDArray[np.int64] = np.asarray(sizes, dtype=np.int64)
        self.n_rows = int(self.row_group_sizes.sum())
        if self.n_rows == 0:
            raise SpecsoilError(f"{self.path}: no data rows")
        # 0-based index of each row group's first row, for error messages.
        self.row_group_offsets: NDArray[np.int64] = np.concatenate(
            [[0], np.cumsum(self.row_group_sizes)[:-1]]
        ).astype(np.int64)

        order = np.argsort(self._source.wavelengths, kind="stable")
        self._spectral = [self._source.spectral[i] for i in order]
        self.wavelengths: NDArray[np.float64] = np.ascontiguousarray(
            self._source.wavelengths[order], dtype=np.float64
        )
        spectral_set = set(self._spectral)
        self._metadata_columns = [n for n in self._source.names if n not in spectral_set]
        self.synthetic = self._source.stored.get(KEY_SYNTHETIC) == b"true"
        self.targets = list(targets)
        self._check_targets()

        stored = stored_kind(self._source, declared)
        # The kind of the values as stored: convert_to_parquet writes absorbance.
        self._values_kind: SpectraKind
        if stored is not None:
            self.spectra_kind, self.kind_detected, self.kind_reason = stored
            self._values_kind = "absorbance"
        elif declared is not None:
            self.spectra_kind, self.kind_detected, self.kind_reason = declared, False, "declared"
            self._values_kind = declared
        else:
            first = self._read_block(self._first_nonempty_group())
            kind, reason = detect_spectra_kind(first, self.wavelengths)
            self.spectra_kind, self.kind_detected = kind, True
            self.kind_reason = f"{reason} (first row group)"
            self._values_kind = kind
        if self.synthetic and "synthetic" not in self.kind_reason:
            self.kind_reason += "; SYNTHETIC data (specsoil synth)"

    def __repr__(self) -> str:
        return (
            f"ParquetSpectraSource({str(self.path)!r}, {self.n_rows} rows in "
            f"{self.n_row_groups} row groups, {self.wavelengths.size} bands"
            f"{', synthetic' if self.synthetic else ''})"
        )

    # ------------------------------------------------------------------ checks
    def _check_targets(self) -> None:
        if not self.targets:
            raise SpecsoilError(f"{self.path}: no target given; numeric columns: {self._numeric()}")
        schema = self._source.file.schema_arrow
        for name in self.targets:
            if name not in self._metadata_columns:
                raise SpecsoilError(
                    f"{self.path}: unknown target {name!r}; numeric columns: {self._numeric()}"
                )
            kind = schema.field(name).type
            if not (_is_number(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)):
                raise SpecsoilError(
                    f"{self.path}: target column {name!r} has type {kind}; expected numbers"
                )

    def _numeric(self) -> list[str]:
        schema = self._source.file.schema_arrow
        return [n for n in self._metadata_columns if _is_number(schema.field(n).type)]

    def _first_nonempty_group(self) -> int:
        return int(np.flatnonzero(self.row_group_sizes > 0)[0])

    # ------------------------------------------------------------------ reading
    def _part(self, index: int) -> pq.ParquetFile:
        """Part ``index``, opened; only one part (and its footer) is held at a time."""
        if self._open[0] != index:
            try:
                # pre_buffer reads whole row groups ahead; off, the peak memory was lower.
                opened = pq.ParquetFile(self.parts[index], pre_buffer=False)
            except (pa.ArrowException, OSError) as error:
                raise SpecsoilError(
                    f"{self.parts[index]}: not a readable Parquet file ({error})"
                ) from None
            self._open = (index, opened)
        return self._open[1]

    def _read_group(self, group: int) -> pa.Table:
        if not 0 <= group < self.n_row_groups:
            raise SpecsoilError(
                f"{self.path}: row group {group} does not exist; the file has "
                f"{self.n_row_groups} (0 to {self.n_row_groups - 1})"
            )
        part, local = self._locations[group]
        try:
            table: pa.Table = self._part(part).read_row_group(
                local, columns=[*self._metadata_columns, *self._spectral]
            )
        except (pa.ArrowException, OSError) as error:
            raise SpecsoilError(
                f"{self.parts[part]}: cannot read row group {local} ({error})"
            ) from None
        return table

    def _read_block(self, group: int) -> NDArray[np.float32]:
        """The raw spectral values of one row group, ascending wavelength."""
        table = self._read_group(group)
        positions = list(range(len(self._metadata_columns), table.num_columns))
        block, _ = fill_spectra(table, positions, self._spectral, str(self.path))
        return block

    def read_targets(self) -> NDArray[np.float64]:
        """Read only the target columns of every row: float64 (n_rows, n_targets), NaN = missing.

        Raises:
            SpecsoilError: If a target value is text that is not a number (naming the row).
        """
        try:
            parts = [self._part(i).read(columns=self.targets) for i in range(len(self.parts))]
        except (pa.ArrowException, OSError) as error:
            raise SpecsoilError(f"{self.path}: cannot read the target columns ({error})") from None
        columns = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        out = np.empty((self.n_rows, len(self.targets)), dtype=np.float64)
        for j, name in enumerate(self.targets):
            raw = columns.column(name).to_pandas()
            values = pd.to_numeric(raw, errors="coerce")
            bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise SpecsoilError(
                    f"{self.path}: target column {name!r}, data row {row + 1}: "
                    f"{raw.iloc[row]!r} is not a number"
                )
            out[:, j] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def iter_tables(self, row_groups: Sequence[int]) -> Iterator[SpectraTable]:
        """Yield one table per row group, in the order given (absorbance, float32).

        Only one row group is read at a time. Each table's metadata index is 0..m-1; its
        first row is data row ``row_group_offsets[g] + 1`` of the file.

        Args:
            row_groups: Row-group numbers (0-based), e.g. ``range(source.n_row_groups)``.

        Yields:
            The row group as a ``SpectraTable``.

        Raises:
            SpecsoilError: If a row group does not exist or holds a missing, non-numeric or
                infinite spectral value (or reflectance <= 0), naming the data row (1-based,
                counted over the whole file) and the column.
        """
        for group in row_groups:
            group = int(group)
            table = self._read_group(group)
            positions = list(range(len(self._metadata_columns), table.num_columns))
            block, text = fill_spectra(table, positions, self._spectral, str(self.path))
            self._check_values(block, text, group)
            to_absorbance(block, self._values_kind, out=block)
            metadata = metadata_frame(table, range(len(self._metadata_columns)))
            del table  # the Arrow copy is not needed once the block is filled
            yield SpectraTable(
                X=block,
                wavelengths=self.wavelengths,
                metadata=metadata.reset_index(drop=True),
                source=str(self.path),
                spectra_kind=self.spectra_kind,
                kind_detected=self.kind_detected,
                kind_reason=self.kind_reason,
            )

    def _check_values(self, block: NDArray[np.float32], text: dict[int, Any], group: int) -> None:
        positive = self._values_kind != "absorbance"
        # Reductions first: the common all-valid case needs no mask of the block's size.
        low, high = (float(block.min()), float(block.max())) if block.size else (1.0, 1.0)
        if np.isfinite(low) and np.isfinite(high) and not (positive and low <= 0):
            return
        valid = np.isfinite(block)
        if positive:
            valid &= block > 0
        row = int(np.flatnonzero(~valid.all(axis=1))[0])
        column = int(np.flatnonzero(~valid[row])[0])
        raw = text.get(column)
        raw_value = raw[row].as_py() if raw is not None else None
        what = describe_invalid(
            float(block[row, column]), raw_value, self._values_kind if positive else None
        )
        data_row = int(self.row_group_offsets[group]) + row + 1
        raise SpecsoilError(
            f"{self.path}: data row {data_row} (row group {group}), column "
            f"{self._spectral[column]!r}: {what}; fix or remove the row (streamed reading "
            "cannot drop rows)"
        )

    def sample(self, n: int, seed: int = 0) -> SpectraTable:
        """Read randomly chosen whole row groups until about ``n`` rows are in hand.

        Used to fit preprocessing on a sample of a file too large to read whole. Row groups
        are drawn without replacement and kept in file order; at least one is read.

        Args:
            n: Rows wanted (the result has at least ``n`` rows, or all of the file).
            seed: Seed of the draw.

        Returns:
            The rows of the chosen row groups as one table.

        Raises:
            SpecsoilError: If ``n`` is not a positive integer, or as :meth:`iter_tables`.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise SpecsoilError(f"sample size must be a positive integer; got {n!r}")
        order = np.random.default_rng(seed).permutation(self.n_row_groups)
        reached = np.cumsum(self.row_group_sizes[order])
        count = int(np.searchsorted(reached, n)) + 1
        chosen = np.sort(order[:count])
        # Filled group by group: never the sample twice over.
        X = np.empty((int(self.row_group_sizes[chosen].sum()), self.wavelengths.size), np.float32)
        frames, start = [], 0
        for table in self.iter_tables(chosen.tolist()):
            X[start : start + table.n_samples] = table.X
            start += table.n_samples
            frames.append(table.metadata)
        metadata = pd.concat(frames, ignore_index=True)
        return SpectraTable(
            X=X,
            wavelengths=self.wavelengths,
            metadata=metadata,
            source=str(self.path),
            spectra_kind=self.spectra_kind,
            kind_detected=self.kind_detected,
            kind_reason=self.kind_reason,
        )


def _part_files(path: Path) -> list[Path]:
    """The Parquet file itself, or the ``*.parquet`` parts of a directory in name order."""
    if path.is_dir():
        parts = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() in (".parquet", ".pq") and not p.name.startswith((".", "_"))
        )
        if not parts:
            raise SpecsoilError(f"{path}: a directory without .parquet files")
    elif path.is_file():
        parts = [path]
    else:
        raise SpecsoilError(f"{path}: no such file or directory")
    for part in parts:
        with part.open("rb") as handle:
            if handle.read(4) != PARQUET_MAGIC:
                raise SpecsoilError(
                    f"{part}: not a Parquet file; convert it with `specsoil convert`"
                )
    return parts


def _is_number(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind)
    )
