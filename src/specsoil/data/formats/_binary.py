"""Bounds-checked reading of binary instrument files, with errors that name the byte offset.

The vendor parsers (ASD, OPUS, SPC, SPA) read fixed layouts with :mod:`struct` and
:mod:`numpy`. Every read goes through :class:`BinaryFile`, so a truncated or corrupt file
raises one :class:`~specsoil._errors.SpecsoilError` saying which file, which byte and what
was expected, instead of a ``struct.error`` or an ``IndexError`` deep in a parser.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError


class BinaryFile:
    """The bytes of one file plus its name, for bounds-checked little-endian reads.

    Args:
        path: The file (read whole: instrument files are kilobytes to a few megabytes).
        label: How messages name the file; defaults to ``str(path)``.
    """

    def __init__(self, path: Path, *, label: str | None = None) -> None:
        self.path = path
        self.label = label if label is not None else str(path)
        try:
            self.raw = path.read_bytes()
        except OSError as exc:
            raise SpecsoilError(f"{self.label}: cannot read the file ({exc.strerror})") from None

    @property
    def size(self) -> int:
        """Length of the file in bytes."""
        return len(self.raw)

    def fail(self, offset: int, message: str) -> SpecsoilError:
        """An error naming this file and ``offset``; the caller raises it."""
        return SpecsoilError(f"{self.label}: byte {offset}: {message}")

    def require(self, offset: int, length: int, what: str) -> None:
        """Raise unless ``length`` bytes of ``what`` fit at ``offset``."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise self.fail(
                offset,
                f"expected {what} ({length} bytes) but the file has {self.size} bytes; "
                "it is truncated or its offsets are corrupt",
            )

    def unpack(self, fmt: str, offset: int, what: str) -> tuple[Any, ...]:
        """``struct.unpack_from`` (little-endian ``fmt`` without its prefix) with a bounds check."""
        layout = struct.Struct("<" + fmt)
        self.require(offset, layout.size, what)
        return layout.unpack_from(self.raw, offset)

    def array(self, dtype: str, count: int, offset: int, what: str) -> NDArray[np.float64]:
        """``count`` values of little-endian ``dtype`` at ``offset``, as float64."""
        item = np.dtype("<" + dtype)
        if count < 0:
            raise self.fail(offset, f"expected a non-negative count for {what}; got {count}")
        self.require(offset, count * item.itemsize, what)
        values = np.frombuffer(self.raw, dtype=item, count=count, offset=offset)
        with np.errstate(invalid="ignore"):  # a signalling NaN in a corrupt file is kept as NaN
            return values.astype(np.float64)

    def text(self, offset: int, length: int, what: str, *, encoding: str = "cp1252") -> str:
        """A fixed-width text field, cut at its first NUL and stripped.

        Vendor software writes Windows code-page text, so undecodable bytes (cp1252 leaves
        five unassigned) fall back to latin-1 rather than failing.
        """
        self.require(offset, length, what)
        return decode_text(self.raw[offset : offset + length].split(b"\0", 1)[0], encoding)


def decode_text(raw: bytes, encoding: str = "cp1252") -> str:
    """Decode Windows text (cp1252, latin-1 for its unassigned bytes), stripped of spaces."""
    try:
        return raw.decode(encoding).strip()
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip()


def ole_date(days: float) -> datetime | None:
    """An OLE automation date (days since 1899-12-30) as a naive datetime; None when unset."""
    if not np.isfinite(days) or days <= 0 or days > 2_958_465:  # 0 means unset; 9999-12-31
        return None
    return datetime(1899, 12, 30) + timedelta(days=days)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 text for metadata (seconds precision), or None."""
    return None if moment is None else moment.isoformat(timespec="seconds")
