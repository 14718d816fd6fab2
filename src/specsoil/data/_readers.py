"""Read spectra tables (CSV, TSV, compressed, Parquet) in row batches, straight into float32.

A LUCAS-sized table (20,000 spectra x 4,200 bands) is 336 MB as float32. Text is cut into
chunks of whole lines that pyarrow's C++ CSV parser turns into float32 columns; this was faster
than pandas' chunked ``read_csv`` in ``bench/bench_read.py`` and, unlike pyarrow's streaming
reader (which read ahead up to the whole file), keeps memory bounded. Each batch is checked and
copied into one float32 matrix that grows in place (``ndarray.resize`` reallocates large blocks
without copying on Linux), so the peak stays near the matrix plus one batch. No float64 frame
of the whole table is ever built.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import logging
import lzma
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from specsoil._atomic import atomic_path
from specsoil._errors import SpecsoilError
from specsoil.data._columns import find_spectral_columns
from specsoil.data._kinds import (
    describe_impossible,
    detect_spectra_kind,
    impossible_values,
    to_absorbance,
)
from specsoil.data._table import (
    CENSORED_POLICIES,
    SPECTRA_KINDS,
    CensoredPolicy,
    SpectraKind,
    SpectraTable,
    parse_lab_values,
)

logger = logging.getLogger(__name__)

__all__ = ["convert_to_parquet", "read_spectra"]

_PARQUET_MAGIC = b"PAR1"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSION_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)
_SEPARATORS = (",", ";", "\t")
# Keys of the Parquet schema metadata written by convert_to_parquet.
_KEY_VALUES = b"specsoil.values"
_KEY_KIND = b"specsoil.spectra_kind"
_KEY_DETECTED = b"specsoil.kind_detected"
_KEY_REASON = b"specsoil.kind_reason"
_KEY_COLUMNS = b"specsoil.spectral_columns"
# After this many spectral columns holding text, parse every spectral column as text at once.
_MAX_TEXT_COLUMNS = 3
# Text parsed per call of pyarrow's read_csv. Parsing holds about three times the chunk, and
# the fixed cost per call (4,000+ columns) is amortised well above a few MB (bench_read.py).
_CHUNK_BYTES = 16 << 20
# pyarrow's threads made parsing slower on the 2-core machine measured (bench_read.py), so they
# are used only where there are more cores to spread the blocks of a chunk over.
_THREADS = (os.cpu_count() or 1) > 2
_DROP_HINT = "fix the value, or drop such rows with --drop-invalid (drop_invalid=True)"
# Rows checked at a time on the whole matrix: bounds the temporaries of the row reductions.
_SCAN_ROWS = 4096
# Signatures of spreadsheets, which are not tables of text.
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"


def _check_kind(spectra_kind: str | None) -> SpectraKind | None:
    if spectra_kind is not None and spectra_kind not in SPECTRA_KINDS:
        raise SpecsoilError(
            f"spectra_kind must be one of {list(SPECTRA_KINDS)}; got {spectra_kind!r}"
        )
    return spectra_kind


def _open_binary(path: Path, compression: str | None) -> IO[bytes]:
    if compression == "gzip":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if compression == "bz2":
        return cast(IO[bytes], bz2.open(path, "rb"))
    if compression == "xz":
        return cast(IO[bytes], lzma.open(path, "rb"))
    return path.open("rb")


def _open_text(path: Path, compression: str | None) -> IO[str]:
    # newline="" keeps "\r\n" intact so lines are counted as the CSV parser counts rows.
    return io.TextIOWrapper(_open_binary(path, compression), encoding="utf-8-sig", newline="")


def _sniff_separator(line: str) -> str:
    """The separator that occurs most often in the header line outside quotes."""
    unquoted = re.sub(r'"[^"]*"', "", line)
    counts = {sep: unquoted.count(sep) for sep in _SEPARATORS}
    return max(counts, key=lambda sep: counts[sep])


@dataclass(slots=True)
class _Batch:
    """One batch of rows: metadata, spectra in ascending wavelength order, raw text columns."""

    metadata: pd.DataFrame
    spectra: NDArray[np.float32]
    # Sorted column position -> the column's raw values, for columns that held text.
    text: dict[int, Any] = field(default_factory=dict)


def _damage(error: BaseException) -> str:
    """Say what a decompression or read error means: usually a file cut short."""
    if isinstance(error, EOFError):
        return f"the compressed file is cut short: {error}"
    if isinstance(error, lzma.LZMAError) or "gzip" in str(error) or "BZ2" in str(error):
        return f"the compressed file is damaged: {error}"
    return str(error)


def _numbers_from_text(values: Any) -> NDArray[np.float32]:
    """Parse an Arrow column of strings as numbers; anything else becomes NaN."""
    parsed = pd.to_numeric(pd.Series(values.to_numpy(zero_copy_only=False)), errors="coerce")
    return parsed.to_numpy(dtype=np.float32, na_value=np.nan)


def _fill_spectra(
    data: Any, positions: list[int], names: list[str], source: str
) -> tuple[NDArray[np.float32], dict[int, Any]]:
    """The spectral columns of an Arrow table or batch as a float32 (rows, bands) block.

    Returns the block and, for columns that held text, their raw values (for messages).
    """
    selected = data.select(positions)
    types = set(selected.schema.types)
    if len(types) == 1 and pa.types.is_floating(next(iter(types))):
        # One C++ call per record batch instead of one Python call per column: with 4,200
        # columns this is about 6x faster.
        batches = selected.to_batches() if isinstance(selected, pa.Table) else [selected]
        parts = [
            np.asarray(b.to_tensor(null_to_nan=True, row_major=True)) for b in batches if b.num_rows
        ]
        if not parts:
            return np.empty((0, len(positions)), dtype=np.float32), {}
        block = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return block.astype(np.float32, copy=False), {}
    block = np.empty((data.num_rows, len(positions)), dtype=np.float32)
    text: dict[int, Any] = {}
    for j in range(len(positions)):
        column = selected.column(j)
        kind = column.type
        if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind):
            block[:, j] = column.to_numpy(zero_copy_only=False)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            block[:, j] = _numbers_from_text(column)
            text[j] = column
        else:
            raise SpecsoilError(
                f"{source}: spectral column {names[j]!r} has type {kind}; expected numbers"
            )
    return block, text


class _CsvSource:
    """A delimited text file, optionally compressed, cut into chunks of whole lines.

    Each chunk is parsed by ``pyarrow.csv.read_csv`` (C++, multi-threaded). Cutting the chunks
    here bounds the memory: pyarrow's own streaming reader reads ahead of the consumer and
    held up to the whole file in the benchmark.
    """

    def __init__(
        self,
        path: Path,
        compression: str | None,
        batch_rows: int,
        *,
        spectral_columns: str | None = None,
    ) -> None:
        self.path = path
        self.compression = compression
        try:
            with _open_text(path, compression) as handle:
                header = handle.readline()
                first_row = handle.readline()
        except UnicodeDecodeError as error:
            raise SpecsoilError(f"{path}: cannot read as UTF-8 text: {error}") from None
        except (OSError, EOFError, lzma.LZMAError) as error:
            raise SpecsoilError(f"{path}: cannot read the file ({_damage(error)})") from None
        header = header.rstrip("\r\n")
        if not header.strip():
            raise SpecsoilError(f"{path}: empty file; expected a header line and data rows")
        self.separator = _sniff_separator(header)
        # The csv module refuses fields over 131,072 characters; the line is already in
        # memory, so the limit only needs to fit it (it is never lowered).
        csv.field_size_limit(max(csv.field_size_limit(), len(header) + 1))
        try:
            fields = next(csv.reader([header], delimiter=self.separator))
        except csv.Error as error:
            raise SpecsoilError(f"{path}: cannot read the header line: {error}") from None
        self.names = [f.strip() or f"Unnamed: {i}" for i, f in enumerate(fields)]
        _check_unique(self.names, path)
        self.spectral, self.wavelengths = _spectral_columns(self.names, path, spectral_columns)
        self.spectral_set = set(self.spectral)
        row_bytes = max(len(first_row.encode()), len(header.encode()), 16)
        self.chunk_bytes = min(row_bytes * batch_rows, _CHUNK_BYTES)
        # pyarrow parses the blocks of a chunk in parallel, one per thread; each block costs
        # a few ms for 4,000 columns, so without threads the chunk is one block. A row must
        # fit in a block.
        blocks = (os.cpu_count() or 1) if _THREADS else 1
        block_size = max(self.chunk_bytes // blocks + 2 * row_bytes, 4 * row_bytes)
        self._read_options = pa_csv.ReadOptions(
            column_names=self.names, block_size=block_size, use_threads=_THREADS
        )
        self._convert: Any = None
        self._convert_for: set[str] = set()

    def _chunks(self) -> Iterator[memoryview]:
        """Whole lines of the data part of the file, about chunk_bytes at a time."""
        with _open_binary(self.path, self.compression) as handle:
            handle.readline()
            pending = b""
            while True:
                data = handle.read(self.chunk_bytes)
                buffer = pending + data
                if not data:
                    if buffer.strip():
                        yield memoryview(buffer)
                    return
                cut = max(buffer.rfind(b"\n"), buffer.rfind(b"\r")) + 1
                if cut == 0:  # a line longer than a chunk: read on
                    pending = buffer
                    continue
                pending = buffer[cut:]
                yield memoryview(buffer)[:cut]

    def batches(self, order: NDArray[np.intp]) -> Iterator[_Batch]:
        """Yield the rows chunk by chunk, spectra in the given column order."""
        names = [self.spectral[i] for i in order]
        position = {name: i for i, name in enumerate(self.names)}
        spectral_positions = [position[name] for name in names]
        metadata_positions = [
            i for i, name in enumerate(self.names) if name not in self.spectral_set
        ]
        text_columns: set[str] = set()
        try:
            for chunk in self._chunks():
                table = self._parse(chunk, text_columns)
                block, text = _fill_spectra(table, spectral_positions, names, str(self.path))
                yield _Batch(_metadata_frame(table, metadata_positions), block, text)
        except (UnicodeDecodeError, EOFError, OSError, lzma.LZMAError) as error:
            raise SpecsoilError(f"{self.path}: cannot read the file ({_damage(error)})") from None

    def _parse(self, chunk: memoryview, text_columns: set[str]) -> Any:
        """Parse one chunk; a spectral column holding text is parsed again as text."""
        ragged: list[Any] = []

        def on_invalid_row(row: Any) -> str:
            ragged.append(row)
            return "error"

        while True:
            if self._convert is None or self._convert_for != text_columns:
                # Built once per set of text columns: 4,000 column types take a while to pass.
                types = {
                    name: pa.string()
                    if (name not in self.spectral_set or name in text_columns)
                    else pa.float32()
                    for name in self.names
                }
                self._convert = pa_csv.ConvertOptions(column_types=types, strings_can_be_null=True)
                self._convert_for = set(text_columns)
            try:
                return pa_csv.read_csv(
                    pa.py_buffer(chunk),
                    read_options=self._read_options,
                    parse_options=pa_csv.ParseOptions(
                        delimiter=self.separator, invalid_row_handler=on_invalid_row
                    ),
                    convert_options=self._convert,
                )
            except pa.ArrowInvalid as error:
                message = str(error)
                match = re.search(r"In CSV column #(\d+).*conversion error to float", message)
                if match:
                    text_columns.add(self.names[int(match[1])])
                    if len(text_columns) > _MAX_TEXT_COLUMNS:
                        # Many text columns: parse them all as text rather than retry each.
                        text_columns.update(self.spectral)
                    continue
                if ragged:
                    raise self._ragged_error(ragged[0]) from None
                if "UTF8" in message or "UTF-8" in message:
                    raise SpecsoilError(f"{self.path}: not UTF-8 text ({message})") from None
                raise SpecsoilError(f"{self.path}: cannot parse as a table: {message}") from None

    def _ragged_error(self, row: Any) -> SpecsoilError:
        # row.number counts from the start of the chunk, so look the line up by its text.
        line = self._find_line(row.text)
        where = f"line {line}" if line is not None else f"the row starting {row.text[:40]!r}"
        return SpecsoilError(
            f"{self.path}: {where} has {row.actual_columns} fields but the header has "
            f"{row.expected_columns} (separator {self.separator!r})"
        )

    def _find_line(self, text: str) -> int | None:
        with _open_text(self.path, self.compression) as handle:
            for number, line in enumerate(handle, start=1):
                if line.rstrip("\r\n") == text:
                    return number
        return None

    def line_of(self, data_row: int) -> int | None:
        """File line of a 1-based data row; blank lines are skipped as the parser skips them."""
        seen = 0
        with _open_text(self.path, self.compression) as handle:
            handle.readline()
            for number, line in enumerate(handle, start=2):
                if line.strip("\r\n"):
                    seen += 1
                    if seen == data_row:
                        return number
        return None


class _ParquetSource:
    """A Parquet file, read in row batches."""

    def __init__(self, path: Path, batch_rows: int, *, spectral_columns: str | None = None) -> None:
        self.path = path
        try:
            # pre_buffer reads whole row groups ahead; off, the peak memory was 40 % lower.
            self.file = pq.ParquetFile(path, pre_buffer=False)
        except (pa.ArrowException, OSError) as error:
            raise SpecsoilError(f"{path}: not a readable Parquet file ({error})") from None
        schema = self.file.schema_arrow
        self.names = [str(name) for name in schema.names]
        _check_unique(self.names, path)
        self.stored = dict(schema.metadata or {})
        candidates = self.names
        if _KEY_COLUMNS in self.stored:
            candidates = json.loads(self.stored[_KEY_COLUMNS])
        self.spectral, self.wavelengths = _spectral_columns(candidates, path, spectral_columns)
        self.spectral_set = set(self.spectral)
        self.batch_rows = _rows_per_chunk(batch_rows, len(self.spectral))

    def batches(self, order: NDArray[np.intp]) -> Iterator[_Batch]:
        """Yield batches of the file's rows."""
        names = [self.spectral[i] for i in order]
        metadata = [name for name in self.names if name not in self.spectral_set]
        columns = metadata + names
        spectral_positions = [len(metadata) + j for j in range(len(names))]
        try:
            for batch in self.file.iter_batches(batch_size=self.batch_rows, columns=columns):
                block, text = _fill_spectra(batch, spectral_positions, names, str(self.path))
                yield _Batch(_metadata_frame(batch, range(len(metadata))), block, text)
        except pa.ArrowException as error:
            raise SpecsoilError(f"{self.path}: cannot read the Parquet data ({error})") from None

    def line_of(self, data_row: int) -> int | None:
        """Parquet has no lines."""
        return None


def _metadata_frame(batch: Any, positions: Sequence[int]) -> pd.DataFrame:
    if not positions:
        # A frame without columns still needs one row per spectrum.
        return pd.DataFrame(index=pd.RangeIndex(batch.num_rows))
    frame: pd.DataFrame = batch.select(list(positions)).to_pandas()
    return frame


def _rows_per_chunk(batch_rows: int, n_bands: int) -> int:
    """batch_rows, capped so that a batch of float32 spectra stays near _CHUNK_BYTES."""
    return max(1, min(batch_rows, _CHUNK_BYTES // (4 * n_bands)))


def _spectral_columns(
    names: list[str], path: Path, pattern: str | None
) -> tuple[list[str], NDArray[np.float64]]:
    try:
        return find_spectral_columns(names, pattern=pattern)
    except SpecsoilError as error:
        raise SpecsoilError(f"{path}: {error}") from None


def _check_unique(names: list[str], path: Path) -> None:
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            raise SpecsoilError(
                f"{path}: column {name!r} appears twice in the header (columns {first[name] + 1} "
                f"and {i + 1}); rename one"
            )
        first[name] = i


def _describe_invalid(value: float, raw: Any, kind: SpectraKind | None) -> str:
    """Say why one spectral value cannot be used."""
    if raw is not None and np.isnan(value):
        text = str(raw)
        hint = " (decimal commas are not supported)" if re.fullmatch(r"-?\d+,\d+", text) else ""
        return f"{text!r} is not a number{hint}"
    return describe_impossible(value, kind or "absorbance")


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
    batch: _Batch, names: list[str], header_numbers: NDArray[np.float32]
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
        source: _CsvSource | _ParquetSource,
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

    def add(self, batch: _Batch) -> None:
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
                    _describe_invalid(float(block[row, column]), raw, self.kind),
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
    source: _CsvSource | _ParquetSource, data_row: int, column: str, what: str
) -> SpecsoilError:
    """The error for one unusable spectral value, naming the file, row, line and column."""
    line = source.line_of(data_row)
    where = f"data row {data_row}" + (f" (line {line})" if line is not None else "")
    return SpecsoilError(f"{source.path}: {where}, column {column!r}: {what}; {_DROP_HINT}")


def _header_error(source: _CsvSource | _ParquetSource, data_row: int) -> SpecsoilError:
    """The error for a data row that repeats the header line."""
    line = source.line_of(data_row)
    where = f"line {line}" if line is not None else f"data row {data_row}"
    return SpecsoilError(
        f"{source.path}: {where} repeats the header; two files concatenated? (data row "
        f"{data_row}) Remove the line, or drop such rows with --drop-invalid (drop_invalid=True)"
    )


def _spreadsheet_error(path: Path, magic: bytes) -> SpecsoilError | None:
    """A clear error for a spreadsheet or zip archive given as a table, else None."""
    save = "save the sheet as CSV (UTF-8) and read that file"
    if magic.startswith(_OLE2_MAGIC):
        return SpecsoilError(f"{path}: is an Excel 97-2003 workbook (.xls), not a table; {save}")
    if not magic.startswith(_ZIP_MAGIC):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
            kind = (
                archive.read("mimetype").decode("ascii", "replace") if "mimetype" in members else ""
            )
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, ValueError):
        members, kind = [], ""
    suffix = path.suffix.lower()
    if any(m.startswith("xl/") for m in members) or (not members and suffix in (".xlsx", ".xlsm")):
        return SpecsoilError(f"{path}: is an Excel workbook, not a CSV table; {save}")
    if "spreadsheet" in kind or (not members and suffix == ".ods"):
        return SpecsoilError(f"{path}: is an OpenDocument spreadsheet, not a CSV table; {save}")
    return SpecsoilError(f"{path}: is a zip archive; unzip it, or compress it with gzip")


def _open_source(
    path: Path, batch_rows: int, spectral_columns: str | None = None
) -> _CsvSource | _ParquetSource:
    if not path.exists():
        raise SpecsoilError(f"{path}: no such file")
    if path.is_dir():
        raise SpecsoilError(f"{path}: is a directory; expected a CSV or Parquet file")
    with path.open("rb") as handle:
        magic = handle.read(8)
    if not magic:
        raise SpecsoilError(f"{path}: empty file; expected a header line and data rows")
    spreadsheet = _spreadsheet_error(path, magic)
    if spreadsheet is not None:
        raise spreadsheet
    if magic.startswith(_PARQUET_MAGIC) or path.suffix.lower() in _PARQUET_SUFFIXES:
        return _ParquetSource(path, batch_rows, spectral_columns=spectral_columns)
    compression = next(
        (name for prefix, name in _COMPRESSION_MAGIC if magic.startswith(prefix)), None
    )
    return _CsvSource(path, compression, batch_rows, spectral_columns=spectral_columns)


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


def _stored_kind(
    source: _CsvSource | _ParquetSource, spectra_kind: SpectraKind | None
) -> tuple[SpectraKind, bool, str] | None:
    """Kind recorded by convert_to_parquet, checked against a declared one."""
    if not isinstance(source, _ParquetSource) or _KEY_VALUES not in source.stored:
        return None
    stored = source.stored[_KEY_KIND].decode()
    if stored not in SPECTRA_KINDS:
        raise SpecsoilError(f"{source.path}: unknown spectra kind {stored!r} in the file")
    if spectra_kind is not None and spectra_kind not in (stored, "absorbance"):
        raise SpecsoilError(
            f"{source.path}: was converted from {stored} and holds absorbance; "
            f"spectra_kind={spectra_kind!r} does not fit (leave it out)"
        )
    if spectra_kind is not None:
        return spectra_kind, False, "declared"
    detected = source.stored.get(_KEY_DETECTED, b"false") == b"true"
    reason = source.stored.get(_KEY_REASON, b"recorded in the file").decode()
    return stored, detected, reason


def read_spectra(
    path: str | os.PathLike[str],
    *,
    spectra_kind: SpectraKind | None = None,
    drop_invalid: bool = False,
    batch_rows: int = 2000,
    spectral_columns: str | None = None,
    censored: CensoredPolicy = "missing",
) -> SpectraTable:
    """Read a spectra table and convert its spectra to absorbance log10(1/R), float32.

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

    Returns:
        The table, with ``X`` as float32 absorbance of shape (n_samples, n_wavelengths).

    Raises:
        SpecsoilError: If the file is missing, empty, not a table, has no or ambiguous spectral
            columns, has a ragged row, or holds an invalid spectral value or repeated header
            (naming the row, line and column) while ``drop_invalid`` is False.
    """
    declared = _check_kind(spectra_kind)
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise SpecsoilError(f"batch_rows must be a positive integer; got {batch_rows!r}")
    if censored not in CENSORED_POLICIES:
        raise SpecsoilError(f"censored must be one of {list(CENSORED_POLICIES)}; got {censored!r}")
    file = Path(path)
    source = _open_source(file, batch_rows, spectral_columns)
    stored = _stored_kind(source, declared)
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
    if isinstance(source, _CsvSource):
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


def _drop_impossible(
    source: _CsvSource | _ParquetSource,
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
) -> SpectraTable:
    """Read a spectra table and write it as Parquet, which :func:`read_spectra` reads fast.

    The file holds the metadata columns, then one float32 column of absorbance per wavelength
    (named ``"400"``, ``"400.5"``, ...), and in its schema metadata the kind of the source
    spectra and how it was decided. Reading it back gives the same table (``dropped_rows``
    aside: those rows are not in the file). The file is written in row groups of at most
    ``batch_rows`` rows (and about 16 MB) and renamed into place only when complete.

    Args:
        src: The table to convert (anything :func:`read_spectra` reads).
        dst: The Parquet file to write.
        spectra_kind: As for :func:`read_spectra`.
        drop_invalid: As for :func:`read_spectra`.
        batch_rows: Most rows per batch when reading and per row group when writing.
        spectral_columns: As for :func:`read_spectra`.
        censored: As for :func:`read_spectra`.

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
    )
    spectral_names = [_wavelength_name(float(w)) for w in table.wavelengths]
    clash = sorted(set(spectral_names) & {str(c) for c in table.metadata.columns})
    if clash:
        raise SpecsoilError(
            f"{src}: metadata column {clash[0]!r} has the name of a wavelength column; rename it"
        )
    metadata = pa.Table.from_pandas(table.metadata, preserve_index=False)
    schema = pa.schema(
        [*metadata.schema, *(pa.field(name, pa.float32()) for name in spectral_names)],
        metadata={
            **(metadata.schema.metadata or {}),
            _KEY_VALUES: b"absorbance log10(1/R)",
            _KEY_KIND: table.spectra_kind.encode(),
            _KEY_DETECTED: b"true" if table.kind_detected else b"false",
            _KEY_REASON: table.kind_reason.encode(),
            _KEY_COLUMNS: json.dumps(spectral_names).encode(),
        },
    )
    # Spectral values are nearly all distinct: dictionary encoding would only add pages.
    dictionary = [str(c) for c in table.metadata.columns]
    with (
        atomic_path(dst) as tmp,
        pq.ParquetWriter(tmp, schema, use_dictionary=dictionary) as writer,
    ):
        # Row groups of about 16 MB: larger ones raised the reader's peak memory (bench_read.py).
        group_rows = _rows_per_chunk(batch_rows, table.wavelengths.size)
        for start in range(0, table.n_samples, group_rows):
            rows = min(group_rows, table.n_samples - start)
            bands = np.ascontiguousarray(table.X[start : start + rows].T)  # (n_wavelengths, rows)
            columns = [metadata.column(i).slice(start, rows) for i in range(metadata.num_columns)]
            columns += [pa.array(bands[j]) for j in range(bands.shape[0])]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    return table
