"""Read spectra tables (CSV, TSV, compressed, Parquet) in row batches, straight into float32.

The table formats are the registry's table readers (``_tables.py``); a folder, glob, ``.zip``
or instrument file goes to ``read_scans`` instead. A LUCAS-sized table (20,000 spectra x
4,200 bands) is 336 MB as float32. Each batch is checked and copied into one float32 matrix
that grows in place (``ndarray.resize`` reallocates large blocks without copying on Linux),
so the peak stays near the matrix plus one batch. No float64 frame of the whole table is
ever built.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from specsoil._atomic import atomic_path
from specsoil._errors import SpecsoilError
from specsoil.data._kinds import (
    describe_impossible,
    detect_spectra_kind,
    impossible_values,
    to_absorbance,
)
from specsoil.data._registry import get_reader, reader_role
from specsoil.data._scan_folder import is_scan_source, log_scan_report, read_scans
from specsoil.data._table import (
    CENSORED_POLICIES,
    CensoredPolicy,
    SpectraKind,
    SpectraTable,
    parse_lab_values,
)
from specsoil.data._tables import (
    KEY_COLUMNS,
    KEY_DETECTED,
    KEY_KIND,
    KEY_REASON,
    KEY_VALUES,
    TableBatch,
    TableSource,
    check_kind,
    describe_invalid,
    open_table,
    rows_per_chunk,
    stored_kind,
)

logger = logging.getLogger(__name__)

__all__ = ["convert_to_parquet", "read_spectra", "write_spectra_parquet"]

_DROP_HINT = "fix the value, or drop such rows with --drop-invalid (drop_invalid=True)"
# Rows checked at a time on the whole matrix: bounds the temporaries of the row reductions.
_SCAN_ROWS = 4096


def _cells_invalid(values: NDArray[np.float32], kind: SpectraKind | None) -> NDArray[np.bool_]:
    """Which of ``values`` (one row) are not finite or, with a kind, impossible for it."""
    if kind is None:
        return ~np.isfinite(values)
    return impossible_values(values[:, None], kind)


def _rows_invalid(block: NDArray[np.float32], kind: SpectraKind | None) -> NDArray[np.bool_]:
    """Rows of ``block`` holding a non-finite value or, with a kind, a value impossible for it."""
    if kind is not None:
        return impossible_values(block, kind)
    if block.shape[1] == 0:
        return np.zeros(block.shape[0], dtype=bool)
    # Row reductions instead of an isfinite mask of every cell: NaN and inf survive them.
    finite: NDArray[np.bool_] = np.isfinite(block.min(axis=1)) & np.isfinite(block.max(axis=1))
    return ~finite


def _text_cells(values: Any, rows: Any) -> NDArray[np.object_]:
    """Cells of an Arrow or pandas column at ``rows`` as stripped strings (None when empty)."""
    if hasattr(values, "to_numpy") and not isinstance(values, pd.Series):
        values = values.to_numpy(zero_copy_only=False)
    cells = np.asarray(values, dtype=object)[rows]
    return np.array([None if c is None else str(c).strip() for c in cells], dtype=object)


def _repeated_header(
    batch: TableBatch, names: list[str], header_numbers: NDArray[np.float32]
) -> NDArray[np.bool_]:
    """Rows of the batch that repeat the header line (two files concatenated).

    A row repeats the header when each spectral cell equals its column's name (as text, or
    as the number a bare name such as ``400`` is) and each metadata cell is its column's name
    or empty.
    """
    block = batch.spectra
    found = np.zeros(block.shape[0], dtype=bool)
    if block.shape[0] == 0 or block.shape[1] == 0:
        return found
    # Narrow to the rows whose first spectral cell fits, so the full check runs on few rows.
    first = block[:, 0] == header_numbers[0]
    if 0 in batch.text:
        first |= _text_cells(batch.text[0], slice(None)) == names[0]
    rows = np.flatnonzero(first)
    if not rows.size:
        return found
    equal = block[rows] == header_numbers
    for j, column in batch.text.items():
        equal[:, j] |= _text_cells(column, rows) == names[j]
    same = equal.all(axis=1)
    for name in batch.metadata.columns:
        cells = _text_cells(batch.metadata[name].to_numpy(dtype=object), rows)
        same &= (cells == str(name)) | (cells == None) | (cells == "")  # noqa: E711
    found[rows[same]] = True
    return found


class _Collector:
    """Checks each batch and appends its valid rows to one growing float32 matrix."""

    def __init__(
        self,
        source: TableSource,
        names: list[str],
        kind: SpectraKind | None,
        drop_invalid: bool,
    ) -> None:
        self.source = source
        self.names = names
        # The kind whose value limits are checked batch by batch (None: finiteness only).
        self.kind = kind
        self.drop_invalid = drop_invalid
        # What each spectral cell of a repeated header line parses to (NaN: a name with text).
        self.header_numbers = pd.to_numeric(pd.Series(names), errors="coerce").to_numpy(
            dtype=np.float32, na_value=np.nan
        )
        self.X = np.empty((0, len(names)), dtype=np.float32)
        self.n = 0
        self.rows_seen = 0
        self.frames: list[pd.DataFrame] = []
        self.row_numbers: list[NDArray[np.int64]] = []
        self.dropped: list[int] = []
        self.headers: list[int] = []

    def add(self, batch: TableBatch) -> None:
        block = batch.spectra
        m = block.shape[0]
        numbers = np.arange(self.rows_seen + 1, self.rows_seen + m + 1, dtype=np.int64)
        self.rows_seen += m
        header = _repeated_header(batch, self.names, self.header_numbers)
        invalid = header | _rows_invalid(block, self.kind)
        bad = np.flatnonzero(invalid)
        metadata = batch.metadata
        if bad.size:
            if not self.drop_invalid:
                row = int(bad[0])
                if header[row]:
                    raise _header_error(self.source, int(numbers[row]))
                column = int(np.flatnonzero(_cells_invalid(block[row], self.kind))[0])
                raw = batch.text[column][row].as_py() if column in batch.text else None
                raise _invalid_value_error(
                    self.source,
                    int(numbers[row]),
                    self.names[column],
                    describe_invalid(float(block[row, column]), raw, self.kind),
                )
            self.headers.extend(int(r) for r in numbers[header])
            keep = np.ones(m, dtype=bool)
            keep[bad] = False
            self.dropped.extend(int(r) for r in numbers[bad])
            block, numbers = block[keep], numbers[keep]
            metadata = metadata.iloc[np.flatnonzero(keep)]
            m = block.shape[0]
        if m:
            # In-place growth: glibc moves large blocks with mremap instead of copying them.
            self.X.resize((self.n + m, block.shape[1]), refcheck=False)
            self.X[self.n : self.n + m] = block
            self.n += m
            self.frames.append(metadata)
            self.row_numbers.append(numbers)


def _invalid_value_error(
    source: TableSource, data_row: int, column: str, what: str
) -> SpecsoilError:
    """The error for one unusable spectral value, naming the file, row, line and column."""
    line = source.line_of(data_row)
    where = f"data row {data_row}" + (f" (line {line})" if line is not None else "")
    return SpecsoilError(f"{source.path}: {where}, column {column!r}: {what}; {_DROP_HINT}")


def _header_error(source: TableSource, data_row: int) -> SpecsoilError:
    """The error for a data row that repeats the header line."""
    line = source.line_of(data_row)
    where = f"line {line}" if line is not None else f"data row {data_row}"
    return SpecsoilError(
        f"{source.path}: {where} repeats the header; two files concatenated? (data row "
        f"{data_row}) Remove the line, or drop such rows with --drop-invalid (drop_invalid=True)"
    )


def _infer_metadata(
    frame: pd.DataFrame, censored: CensoredPolicy
) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
    """Turn text columns that hold lab values into numeric columns, counting the notes.

    A column is numeric when every cell is a number, missing (empty, ``NA``, ``n.d.``, ``-``,
    ``<LOD``, ...) or censored (``<x``, ``>x``; see :func:`parse_lab_values`). Done once on
    the whole column, so a column is not numeric in one batch and text in the next. Codes with
    leading zeros (``007``) stay text: they are identifiers, not amounts. A column with any
    other text stays text; asking for it as a target names the row and the value.

    Returns:
        The frame and, per converted column with missing or censored cells, their counts.
    """
    counts: dict[str, dict[str, int]] = {}
    for name in frame.columns:
        column = frame[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        if column.str.match(r"\s*0\d").any():
            continue
        try:  # the common case, all numbers or empty, without the slower text parsing
            numbers = pd.to_numeric(column)
        except (ValueError, TypeError):
            pass
        else:
            frame[name] = numbers  # keeps integer columns integer
            if missing := int(numbers.isna().sum()):
                counts[str(name)] = {"missing": missing}
            continue
        parsed = parse_lab_values(column, censored)
        if parsed.first_other is not None:
            continue
        counts[str(name)] = parsed.counts()
        frame[name] = parsed.values
    return frame, counts


def _compact(X: NDArray[np.float32], keep: NDArray[np.bool_]) -> NDArray[np.float32]:
    """Remove rows in place, chunk by chunk, without a second copy of X."""
    rows = np.flatnonzero(keep)
    step = 1024
    for start in range(0, rows.size, step):
        # Source rows are never before their destination, so copying forward is safe.
        source = rows[start : start + step]
        X[start : start + source.size] = X[source]
    X.resize((rows.size, X.shape[1]), refcheck=False)
    return X


def read_spectra(
    path: str | os.PathLike[str],
    *,
    spectra_kind: SpectraKind | None = None,
    drop_invalid: bool = False,
    batch_rows: int = 2000,
    spectral_columns: str | None = None,
    censored: CensoredPolicy = "missing",
    format: str | None = None,
) -> SpectraTable:
    """Read a spectra table, or scan files, and convert the spectra to absorbance, float32.

    A folder, a glob, a ``.zip`` or an instrument file (anything a scan reader of the
    registry recognises, see ``specsoil formats``) is read by :func:`read_scans` with its
    defaults (no lab sheet, replicates averaged); its report is logged. Use
    :func:`read_scans` or :func:`read_data` to join a lab sheet.

    The file is CSV with ``,``, ``;`` or tab separators (sniffed from the header; decimal
    points only), optionally gzip/bz2/xz compressed (recognised by content), or Parquet
    (``.parquet``/``.pq`` or the ``PAR1`` signature). One column per wavelength, named as
    :func:`find_spectral_columns` accepts; all other columns are metadata. Columns are put in
    ascending wavelength order; irregular grids are kept as they are.

    The kind of the values is detected from the median spectrum, never from single cells (see
    ``detect_spectra_kind``). Then every cell must fit the kind: reflectance in (0, 1], %
    reflectance in (0, 100], absorbance in [-2, 10]. A cell that does not, a missing or text
    value, or a line that repeats the header (two files concatenated) is an error naming the
    row, line and column, or with ``drop_invalid`` drops its row. Lab values in text columns
    of a CSV are read as numbers when every cell is a number, missing (``n.d.``, ``NA``, ``-``,
    ``<LOD``, ...) or censored (``<x``, ``>x``); the counts are in ``lab_value_counts``.

    Args:
        path: The file to read.
        spectra_kind: What the values are: ``"reflectance"`` (0-1), ``"reflectance-percent"``
            (0-100) or ``"absorbance"``. ``None`` uses the kind recorded by
            :func:`convert_to_parquet`, else detects it (see ``detect_spectra_kind``).
        drop_invalid: Drop rows with a missing, non-numeric or infinite spectral value, a
            value impossible for the kind, or a repeated header line, instead of raising;
            their 1-based data-row numbers are kept in ``dropped_rows``.
        batch_rows: Most rows parsed at a time (batches are also capped near 16 MB); bounds
            the memory used on top of the spectra matrix.
        spectral_columns: A regular expression naming the spectral columns, when the
            automatic choice (see :func:`find_spectral_columns`) is ambiguous or wrong.
        censored: Lab values written ``<x`` or ``>x``: ``"missing"`` (NaN), ``"half"`` (x/2
            for ``<x``, x for ``>x``) or ``"limit"`` (x).
        format: A registered reader name (``"csv"``, ``"parquet"``, ``"asd"``, ...) to use
            instead of recognising the format from the content.

    Returns:
        The table, with ``X`` as float32 absorbance of shape (n_samples, n_wavelengths).

    Raises:
        SpecsoilError: If the file is missing, empty, not a table, has no or ambiguous spectral
            columns, has a ragged row, or holds an invalid spectral value or repeated header
            (naming the row, line and column) while ``drop_invalid`` is False; for scan
            files, as :func:`read_scans`, or when ``spectra_kind`` is given (scan files
            record what they hold).
    """
    if is_scan_format(format) or (format is None and is_scan_source(path)):
        if spectra_kind is not None:
            raise SpecsoilError(
                f"{os.fspath(path)}: spectra_kind (--spectra-kind) applies to tables; scan "
                "files record what they hold"
            )
        scans = read_scans(path, format=format)
        log_scan_report(scans.report)
        return scans.table
    declared = check_kind(spectra_kind)
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise SpecsoilError(f"batch_rows must be a positive integer; got {batch_rows!r}")
    if censored not in CENSORED_POLICIES:
        raise SpecsoilError(f"censored must be one of {list(CENSORED_POLICIES)}; got {censored!r}")
    file = Path(path)
    source = open_table(file, batch_rows, spectral_columns, format)
    stored = stored_kind(source, declared)
    order = np.argsort(source.wavelengths, kind="stable")
    names = [source.spectral[i] for i in order]
    wavelengths = source.wavelengths[order]

    # A declared kind is checked batch by batch; stored absorbance was checked when converted.
    collector = _Collector(source, names, None if stored is not None else declared, drop_invalid)
    for batch in source.batches(order):
        collector.add(batch)

    if collector.n == 0:
        if collector.rows_seen == 0:
            raise SpecsoilError(f"{file}: no data rows, only a header")
        raise SpecsoilError(
            f"{file}: all {collector.rows_seen} data rows have invalid spectral values"
        )
    X = collector.X
    metadata = pd.concat(collector.frames, ignore_index=True)
    lab_counts: dict[str, dict[str, int]] = {}
    if source.text_metadata:
        metadata, lab_counts = _infer_metadata(metadata, censored)
    row_numbers = np.concatenate(collector.row_numbers)
    dropped = collector.dropped

    if stored is not None:
        kind, detected, reason = stored
        values_kind: SpectraKind = "absorbance"
    elif declared is not None:
        kind, detected, reason = declared, False, "declared"
        values_kind = declared
    else:
        kind, reason = detect_spectra_kind(X, wavelengths)
        detected, values_kind = True, kind
        X, metadata, row_numbers = _drop_impossible(
            source, X, metadata, row_numbers, names, kind, drop_invalid, dropped
        )

    if dropped:
        shown = ", ".join(str(r) for r in sorted(dropped)[:10])
        more = ", ..." if len(dropped) > 10 else ""
        headers = (
            f", {len(collector.headers)} of them repeated headers" if collector.headers else ""
        )
        logger.warning(
            "%s: dropped %d rows with invalid spectral values%s (data rows %s%s)",
            file,
            len(dropped),
            headers,
            shown,
            more,
        )
    to_absorbance(X, values_kind, out=X)
    return SpectraTable(
        X=X,
        wavelengths=np.ascontiguousarray(wavelengths, dtype=np.float64),
        metadata=metadata.reset_index(drop=True),
        source=str(file),
        spectra_kind=kind,
        kind_detected=detected,
        kind_reason=reason,
        dropped_rows=tuple(sorted(dropped)),
        lab_value_counts=lab_counts,
        censored=censored,
    )


def is_scan_format(format: str | None) -> bool:
    """True when ``format`` names a registered scan-file reader (not a table or image one)."""
    return format is not None and reader_role(get_reader(format)) == "scan"


def _drop_impossible(
    source: TableSource,
    X: NDArray[np.float32],
    metadata: pd.DataFrame,
    row_numbers: NDArray[np.int64],
    names: list[str],
    kind: SpectraKind,
    drop_invalid: bool,
    dropped: list[int],
) -> tuple[NDArray[np.float32], pd.DataFrame, NDArray[np.int64]]:
    """Handle values impossible for the kind, found only once it was detected from all rows."""
    bad = np.concatenate(
        [
            impossible_values(X[start : start + _SCAN_ROWS], kind)
            for start in range(0, X.shape[0], _SCAN_ROWS)
        ]
    )
    if not bad.any():
        return X, metadata, row_numbers
    first = int(np.flatnonzero(bad)[0])
    if not drop_invalid:
        column = int(np.flatnonzero(_cells_invalid(X[first], kind))[0])
        raise _invalid_value_error(
            source,
            int(row_numbers[first]),
            names[column],
            describe_impossible(float(X[first, column]), kind) + f" (kind detected: {kind})",
        )
    if bad.all():
        raise SpecsoilError(
            f"{source.path}: all {bad.size} remaining data rows have values impossible for "
            f"{kind} (kind detected from the median spectrum)"
        )
    dropped.extend(int(r) for r in row_numbers[bad])
    keep = ~bad
    return (
        _compact(X, keep),
        metadata.iloc[np.flatnonzero(keep)].reset_index(drop=True),
        row_numbers[keep],
    )


def _wavelength_name(wavelength: float) -> str:
    return np.format_float_positional(wavelength, trim="-")


def convert_to_parquet(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    spectra_kind: SpectraKind | None = None,
    drop_invalid: bool = False,
    batch_rows: int = 2000,
    spectral_columns: str | None = None,
    censored: CensoredPolicy = "missing",
    format: str | None = None,
) -> SpectraTable:
    """Read a spectra table (or scan files) and write it as Parquet, which reads back fast.

    See :func:`write_spectra_parquet` for what the file holds. Reading it back gives the same
    table (``dropped_rows`` aside: those rows are not in the file).

    Args:
        src: What to convert (anything :func:`read_spectra` reads).
        dst: The Parquet file to write.
        spectra_kind: As for :func:`read_spectra`.
        drop_invalid: As for :func:`read_spectra`.
        batch_rows: Most rows per batch when reading and per row group when writing.
        spectral_columns: As for :func:`read_spectra`.
        censored: As for :func:`read_spectra`.
        format: As for :func:`read_spectra`.

    Returns:
        The table as read from ``src``.

    Raises:
        SpecsoilError: As :func:`read_spectra`, or if a metadata column is named like a
            wavelength column of the output.
    """
    table = read_spectra(
        src,
        spectra_kind=spectra_kind,
        drop_invalid=drop_invalid,
        batch_rows=batch_rows,
        spectral_columns=spectral_columns,
        censored=censored,
        format=format,
    )
    write_spectra_parquet(table, dst, batch_rows=batch_rows)
    return table


def write_spectra_parquet(
    table: SpectraTable, dst: str | os.PathLike[str], *, batch_rows: int = 2000
) -> SpectraTable:
    """Write a table as the Parquet file :func:`read_spectra` reads back as it is.

    The file holds the metadata columns, then one float32 column of absorbance per wavelength
    (named ``"400"``, ``"400.5"``, ...), and in its schema metadata the kind of the source
    spectra (``table.spectra_kind``: reflectance for a table of reflectance scans, say) and
    how it was decided. It is written in row groups of at most ``batch_rows`` rows (and about
    16 MB) and renamed into place only when complete.

    Args:
        table: The table to write (from :func:`read_spectra` or :func:`read_scans`).
        dst: The Parquet file.
        batch_rows: Most rows per row group.

    Returns:
        The table written.

    Raises:
        SpecsoilError: If a metadata column is named like a wavelength column of the output.
    """
    spectral_names = [_wavelength_name(float(w)) for w in table.wavelengths]
    clash = sorted(set(spectral_names) & {str(c) for c in table.metadata.columns})
    if clash:
        raise SpecsoilError(
            f"{table.source}: metadata column {clash[0]!r} has the name of a wavelength column; "
            "rename it"
        )
    metadata = pa.Table.from_pandas(table.metadata, preserve_index=False)
    schema = pa.schema(
        [*metadata.schema, *(pa.field(name, pa.float32()) for name in spectral_names)],
        metadata={
            **(metadata.schema.metadata or {}),
            KEY_VALUES: b"absorbance log10(1/R)",
            KEY_KIND: table.spectra_kind.encode(),
            KEY_DETECTED: b"true" if table.kind_detected else b"false",
            KEY_REASON: table.kind_reason.encode(),
            KEY_COLUMNS: json.dumps(spectral_names).encode(),
        },
    )
    # Spectral values are nearly all distinct: dictionary encoding would only add pages.
    dictionary = [str(c) for c in table.metadata.columns]
    with (
        atomic_path(dst) as tmp,
        pq.ParquetWriter(tmp, schema, use_dictionary=dictionary) as writer,
    ):
        # Row groups of about 16 MB: larger ones raised the reader's peak memory (bench_read.py).
        group_rows = rows_per_chunk(batch_rows, table.wavelengths.size)
        for start in range(0, table.n_samples, group_rows):
            rows = min(group_rows, table.n_samples - start)
            bands = np.ascontiguousarray(table.X[start : start + rows].T)  # (n_wavelengths, rows)
            columns = [metadata.column(i).slice(start, rows) for i in range(metadata.num_columns)]
            columns += [pa.array(bands[j]) for j in range(bands.shape[0])]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    return table
