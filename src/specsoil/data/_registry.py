"""One registry of every file format ``specsoil`` reads: instrument scans, tables, image cubes.

Each format is one module holding one reader object and one :func:`register_reader` call. A
reader has a ``name`` (used by ``--format``), a one-line ``description`` and its usual
``suffixes`` for ``specsoil formats``, and ``sniff`` (does a file's first bytes look like
this format?). What it does with a file depends on its role, told by the one method it has:

- :class:`Reader` (``read``): an instrument file (ASD, OPUS, ...) into :class:`RawSpectra`;
- :class:`TableReader` (``open_table``): a spectra table (CSV, Parquet) into a
  :class:`~specsoil.data._tables.TableSource` that ``read_spectra`` streams in batches;
- :class:`ImageReader` (``band_wavelengths``): the band wavelengths of an image cube (ENVI,
  GeoTIFF) from its tags, which ``specsoil.maps`` reads with rasterio.

The built-in formats register themselves the first time the registry is asked, so callers
never import ``specsoil.data.formats`` by hand.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._scans import RawSpectra

if TYPE_CHECKING:
    from specsoil.data._image_bands import ImageTags
    from specsoil.data._tables import TableSource

FormatRole = Literal["scan", "table", "image"]
FORMAT_ROLES: tuple[FormatRole, ...] = ("scan", "table", "image")
SNIFF_BYTES = 4096
# Modules whose import registers the built-in readers.
_BUILTIN_MODULES = (
    "specsoil.data.formats",
    "specsoil.data._tables",
    "specsoil.data._image_bands",
)


@runtime_checkable
class FileFormat(Protocol):
    """What every registered reader has, whatever it reads.

    Attributes:
        name: Short format name (``"asd"``, ``"csv"``), used in messages and ``--format``.
        description: One line for ``specsoil formats``.
        suffixes: Lower-case file suffixes this format usually has (may be empty when the
            format is recognised by content alone, as OPUS's ``.0``, ``.1``, ``.001`` are).
    """

    name: str
    description: str
    suffixes: tuple[str, ...]

    def sniff(self, head: bytes, path: Path) -> bool:
        """True when the first bytes of the file (up to 4 kB) look like this format."""
        ...


@runtime_checkable
class Reader(FileFormat, Protocol):
    """Reads one instrument file format into :class:`RawSpectra`."""

    def read(self, path: Path) -> RawSpectra:
        """Read the file; raise SpecsoilError naming the file and byte offset or line."""
        ...


@runtime_checkable
class TableReader(FileFormat, Protocol):
    """Opens one spectra table format for reading in row batches (see ``read_spectra``)."""

    def open_table(
        self, path: Path, *, batch_rows: int, spectral_columns: str | None
    ) -> TableSource:
        """Open the file: header, spectral columns and wavelengths read, rows not yet."""
        ...


@runtime_checkable
class ImageReader(FileFormat, Protocol):
    """Finds the band wavelengths of one image cube format from the tags GDAL exposes."""

    def band_wavelengths(self, tags: ImageTags) -> tuple[NDArray[np.float64], str] | None:
        """Band centres in nm in band order and where they came from, or None."""
        ...


AnyReader = Reader | TableReader | ImageReader
_AnyReaderT = TypeVar("_AnyReaderT", Reader, TableReader, ImageReader)

_READERS: dict[str, AnyReader] = {}
_ROLES: dict[str, FormatRole] = {}
_loaded = False


def _role_of(reader: object) -> FormatRole:
    if isinstance(reader, TableReader):
        return "table"
    if isinstance(reader, ImageReader):
        return "image"
    if isinstance(reader, Reader):
        return "scan"
    raise TypeError(
        f"{reader!r} is not a reader: it needs name, description, suffixes, sniff and one of "
        "read (scan files), open_table (tables) or band_wavelengths (image cubes)"
    )


def register_reader(reader: _AnyReaderT) -> _AnyReaderT:
    """Add a reader to the registry (one registration per format module).

    Its role (scan, table or image) follows from the method it has: ``read``,
    ``open_table`` or ``band_wavelengths``.

    Raises:
        ValueError: If a reader of that name is already registered.
        TypeError: If the object is not a reader.
    """
    role = _role_of(reader)
    if reader.name in _READERS:
        raise ValueError(f"reader {reader.name!r} is already registered")
    _READERS[reader.name] = reader
    _ROLES[reader.name] = role
    return reader


def _load_builtin() -> None:
    """Import the built-in format modules once, which registers their readers."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def list_readers(role: FormatRole | None = None) -> list[AnyReader]:
    """The registered readers (of one role, or all), by name."""
    _load_builtin()
    return [_READERS[name] for name in sorted(_READERS) if role is None or _ROLES[name] == role]


def reader_role(reader: AnyReader) -> FormatRole:
    """Whether ``reader`` reads scan files, tables or image cubes."""
    return _role_of(reader)


def _unknown(name: str) -> SpecsoilError:
    listed = ", ".join(f"{n} ({_ROLES[n]})" for n in sorted(_READERS))
    return SpecsoilError(f"unknown file format {name!r}; formats read: {listed}")


def get_reader(name: str) -> AnyReader:
    """The reader registered as ``name``, or a clear error listing every format."""
    _load_builtin()
    if name not in _READERS:
        raise _unknown(name)
    return _READERS[name]


def _of_role(name: str, role: FormatRole) -> AnyReader:
    reader = get_reader(name)
    if _ROLES[name] != role:
        others = ", ".join(r.name for r in list_readers(role))
        raise SpecsoilError(
            f"format {name!r} reads {_ROLES[name]} files, not {role} files; {role} formats: "
            f"{others}"
        )
    return reader


def get_scan_reader(name: str) -> Reader:
    """The instrument-file reader registered as ``name``."""
    reader = _of_role(name, "scan")
    assert isinstance(reader, Reader)
    return reader


def get_table_reader(name: str) -> TableReader:
    """The table reader registered as ``name``."""
    reader = _of_role(name, "table")
    assert isinstance(reader, TableReader)
    return reader


def read_head(path: Path) -> bytes:
    """The first bytes of a file, as the readers' ``sniff`` looks at them."""
    with path.open("rb") as stream:
        return stream.read(SNIFF_BYTES)


def _sniffed(readers: Iterable[_AnyReaderT], path: Path, head: bytes | None) -> _AnyReaderT | None:
    """The first reader whose sniff accepts the file; the suffix only orders the tries."""
    if head is None:
        head = read_head(path)
    suffix = path.suffix.lower()
    for reader in sorted(readers, key=lambda r: suffix not in r.suffixes):
        if reader.sniff(head, path):
            return reader
    return None


def reader_for(path: Path, head: bytes | None = None) -> Reader | None:
    """The instrument-file reader for ``path``: content decides, the suffix orders the tries."""
    _load_builtin()
    readers = [r for r in _READERS.values() if isinstance(r, Reader) and _ROLES[r.name] == "scan"]
    return _sniffed(readers, path, head)


def table_reader_for(path: Path, head: bytes | None = None) -> TableReader | None:
    """The table reader for ``path`` (CSV claims any text no other table format claims)."""
    _load_builtin()
    readers = [r for r in _READERS.values() if isinstance(r, TableReader)]
    return _sniffed(readers, path, head)


def image_reader_for(path: Path, head: bytes | None = None) -> ImageReader | None:
    """The image-cube reader for ``path``, or None when no image format claims it."""
    _load_builtin()
    readers = [r for r in _READERS.values() if isinstance(r, ImageReader)]
    return _sniffed(readers, path, head)


def read_scan(path: str | Path, *, format: str | None = None) -> RawSpectra:
    """Read one instrument file with the reader its content (or ``format``) names.

    Args:
        path: The file.
        format: A registered scan reader name; by default the reader is chosen by sniffing.

    Returns:
        The file's spectra as stored.

    Raises:
        SpecsoilError: If the file is missing, no reader recognises it, or it is malformed.
    """
    file = Path(path)
    if not file.is_file():
        raise SpecsoilError(f"{file}: no such file")
    if format is not None:
        return get_scan_reader(format).read(file)
    reader = reader_for(file)
    if reader is None:
        names = ", ".join(
            f"{r.name} ({' '.join(r.suffixes) or 'by content'})" for r in list_readers("scan")
        )
        raise SpecsoilError(
            f"{file}: not a spectrometer file any reader recognises; formats read: {names}"
        )
    return reader.read(file)
