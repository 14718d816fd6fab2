"""Spectra tables as the registry's table readers: CSV (optionally compressed) and Parquet.

A table reader opens a file into a :class:`TableSource`: its header read, its spectral columns
and wavelengths found, its rows handed out in batches of float32 spectra plus metadata.
``read_spectra`` (``_readers.py``) checks and collects the batches; ``ParquetSpectraSource``
(``_stream.py``) reads Parquet row groups through the same pieces.

Text is cut into chunks of whole lines that pyarrow's C++ CSV parser turns into float32
columns; this was faster than pandas' chunked ``read_csv`` in ``bench/bench_read.py`` and,
unlike pyarrow's streaming reader (which read ahead up to the whole file), keeps memory
bounded.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._columns import find_spectral_columns
from specsoil.data._kinds import describe_impossible
from specsoil.data._registry import get_table_reader, register_reader, table_reader_for
from specsoil.data._table import SPECTRA_KINDS, SpectraKind

PARQUET_MAGIC = b"PAR1"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSION_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)
_SEPARATORS = (",", ";", "\t")
# Keys of the Parquet schema metadata written by convert_to_parquet.
KEY_VALUES = b"specsoil.values"
KEY_KIND = b"specsoil.spectra_kind"
KEY_DETECTED = b"specsoil.kind_detected"
KEY_REASON = b"specsoil.kind_reason"
KEY_COLUMNS = b"specsoil.spectral_columns"
# After this many spectral columns holding text, parse every spectral column as text at once.
_MAX_TEXT_COLUMNS = 3
# Text parsed per call of pyarrow's read_csv. Parsing holds about three times the chunk, and
# the fixed cost per call (4,000+ columns) is amortised well above a few MB (bench_read.py).
CHUNK_BYTES = 16 << 20
# pyarrow's threads made parsing slower on the 2-core machine measured (bench_read.py), so they
# are used only where there are more cores to spread the blocks of a chunk over.
_THREADS = (os.cpu_count() or 1) > 2
# Signatures of spreadsheets, which are not tables of text.
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
# Bytes looked at to recognise a table's format.
SNIFF_TABLE_BYTES = 8


class TableSource(Protocol):
    """An opened spectra table: spectral columns known, rows read batch by batch.

    Attributes:
        path: The file.
        spectral: Spectral column names, in file order.
        wavelengths: Their wavelengths in nm, in file order.
        text_metadata: True when metadata columns arrive as text, so lab values in them
            are parsed once the whole column is read (CSV; Parquet keeps its types).
    """

    path: Path
    spectral: list[str]
    wavelengths: NDArray[np.float64]
    text_metadata: bool

    def batches(self, order: NDArray[np.intp]) -> Iterator[TableBatch]:
        """Yield the rows batch by batch, spectral columns in the given order."""
        ...

    def line_of(self, data_row: int) -> int | None:
        """The file line of a 1-based data row, when the format has lines."""
        ...


def check_kind(spectra_kind: str | None) -> SpectraKind | None:
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
class TableBatch:
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


def fill_spectra(
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


class CsvSource:
    """A delimited text file, optionally compressed, cut into chunks of whole lines.

    Each chunk is parsed by ``pyarrow.csv.read_csv`` (C++, multi-threaded). Cutting the chunks
    here bounds the memory: pyarrow's own streaming reader reads ahead of the consumer and
    held up to the whole file in the benchmark.
    """

    text_metadata = True

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
        self.chunk_bytes = min(row_bytes * batch_rows, CHUNK_BYTES)
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

    def batches(self, order: NDArray[np.intp]) -> Iterator[TableBatch]:
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
                block, text = fill_spectra(table, spectral_positions, names, str(self.path))
                yield TableBatch(metadata_frame(table, metadata_positions), block, text)
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


class ParquetSource:
    """A Parquet file, read in row batches."""

    text_metadata = False

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
        if KEY_COLUMNS in self.stored:
            candidates = json.loads(self.stored[KEY_COLUMNS])
        self.spectral, self.wavelengths = _spectral_columns(candidates, path, spectral_columns)
        self.spectral_set = set(self.spectral)
        self.batch_rows = rows_per_chunk(batch_rows, len(self.spectral))

    def batches(self, order: NDArray[np.intp]) -> Iterator[TableBatch]:
        """Yield batches of the file's rows."""
        names = [self.spectral[i] for i in order]
        metadata = [name for name in self.names if name not in self.spectral_set]
        columns = metadata + names
        spectral_positions = [len(metadata) + j for j in range(len(names))]
        try:
            for batch in self.file.iter_batches(batch_size=self.batch_rows, columns=columns):
                block, text = fill_spectra(batch, spectral_positions, names, str(self.path))
                yield TableBatch(metadata_frame(batch, range(len(metadata))), block, text)
        except pa.ArrowException as error:
            raise SpecsoilError(f"{self.path}: cannot read the Parquet data ({error})") from None

    def line_of(self, data_row: int) -> int | None:
        """Parquet has no lines."""
        return None


def metadata_frame(batch: Any, positions: Sequence[int]) -> pd.DataFrame:
    if not positions:
        # A frame without columns still needs one row per spectrum.
        return pd.DataFrame(index=pd.RangeIndex(batch.num_rows))
    frame: pd.DataFrame = batch.select(list(positions)).to_pandas()
    return frame


def rows_per_chunk(batch_rows: int, n_bands: int) -> int:
    """batch_rows, capped so that a batch of float32 spectra stays near CHUNK_BYTES."""
    return max(1, min(batch_rows, CHUNK_BYTES // (4 * n_bands)))


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


def describe_invalid(value: float, raw: Any, kind: SpectraKind | None) -> str:
    """Say why one spectral value cannot be used."""
    if raw is not None and np.isnan(value):
        text = str(raw)
        hint = " (decimal commas are not supported)" if re.fullmatch(r"-?\d+,\d+", text) else ""
        return f"{text!r} is not a number{hint}"
    return describe_impossible(value, kind or "absorbance")


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
        return SpecsoilError(
            f"{path}: is an Excel workbook, not a CSV table; save it as CSV, or pass it as a "
            "lab sheet with --lab"
        )
    if "spreadsheet" in kind or (not members and suffix == ".ods"):
        return SpecsoilError(f"{path}: is an OpenDocument spreadsheet, not a CSV table; {save}")
    return SpecsoilError(f"{path}: is a zip archive; unzip it, or compress it with gzip")


def open_table(
    path: Path, batch_rows: int, spectral_columns: str | None = None, format: str | None = None
) -> TableSource:
    """Open a spectra table with the table reader its content (or ``format``) names.

    Raises:
        SpecsoilError: If the file is missing, a folder, empty, a spreadsheet or zip archive,
            or the reader cannot read its header.
    """
    if not path.exists():
        raise SpecsoilError(f"{path}: no such file")
    if path.is_dir():
        raise SpecsoilError(f"{path}: is a directory; expected a CSV or Parquet file")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_TABLE_BYTES)
    if not head:
        raise SpecsoilError(f"{path}: empty file; expected a header line and data rows")
    spreadsheet = _spreadsheet_error(path, head)
    if spreadsheet is not None:
        raise spreadsheet
    reader = get_table_reader(format) if format is not None else table_reader_for(path, head)
    if reader is None:
        raise SpecsoilError(f"{path}: no table reader recognises the file")
    return reader.open_table(path, batch_rows=batch_rows, spectral_columns=spectral_columns)


class CsvReader:
    """Table reader for delimited text (``,``, ``;`` or tab), optionally gzip/bz2/xz."""

    name: str = "csv"
    description: str = "spectra table: CSV/TSV (, ; or tab), optionally .gz/.bz2/.xz compressed"
    suffixes: tuple[str, ...] = (".csv", ".tsv", ".txt", ".gz", ".bz2", ".xz")

    def sniff(self, head: bytes, path: Path) -> bool:
        """Any file no other table format claims is read as text (its errors say why not)."""
        return not head.startswith(PARQUET_MAGIC) and path.suffix.lower() not in _PARQUET_SUFFIXES

    def open_table(self, path: Path, *, batch_rows: int, spectral_columns: str | None) -> CsvSource:
        """Open the file: compression recognised by content, separator sniffed from the header."""
        with path.open("rb") as handle:
            magic = handle.read(8)
        compression = next(
            (name for prefix, name in _COMPRESSION_MAGIC if magic.startswith(prefix)), None
        )
        return CsvSource(path, compression, batch_rows, spectral_columns=spectral_columns)


class ParquetReader:
    """Table reader for Parquet (``.parquet``/``.pq`` or the ``PAR1`` signature)."""

    name: str = "parquet"
    description: str = "spectra table: Parquet (as written by 'specsoil convert' or any tool)"
    suffixes: tuple[str, ...] = _PARQUET_SUFFIXES

    def sniff(self, head: bytes, path: Path) -> bool:
        """The ``PAR1`` signature, or a Parquet suffix (a damaged file then fails clearly)."""
        return head.startswith(PARQUET_MAGIC) or path.suffix.lower() in _PARQUET_SUFFIXES

    def open_table(
        self, path: Path, *, batch_rows: int, spectral_columns: str | None
    ) -> ParquetSource:
        """Open the file: schema and spectral columns read, rows not yet."""
        return ParquetSource(path, batch_rows, spectral_columns=spectral_columns)


register_reader(CsvReader())
register_reader(ParquetReader())


def stored_kind(
    source: TableSource, spectra_kind: SpectraKind | None
) -> tuple[SpectraKind, bool, str] | None:
    """Kind recorded by convert_to_parquet, checked against a declared one."""
    if not isinstance(source, ParquetSource) or KEY_VALUES not in source.stored:
        return None
    stored = source.stored[KEY_KIND].decode()
    if stored not in SPECTRA_KINDS:
        raise SpecsoilError(f"{source.path}: unknown spectra kind {stored!r} in the file")
    if spectra_kind is not None and spectra_kind not in (stored, "absorbance"):
        raise SpecsoilError(
            f"{source.path}: was converted from {stored} and holds absorbance; "
            f"spectra_kind={spectra_kind!r} does not fit (leave it out)"
        )
    if spectra_kind is not None:
        return spectra_kind, False, "declared"
    detected = source.stored.get(KEY_DETECTED, b"false") == b"true"
    reason = source.stored.get(KEY_REASON, b"recorded in the file").decode()
    return stored, detected, reason
