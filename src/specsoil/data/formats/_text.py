"""Pieces the text-format readers share: lines, numeric rows and detector overlaps.

Field spectroradiometers (SVC, Spectral Evolution, AVIRIS-convolved libraries) join two or
three detectors. Where the detectors' ranges overlap, a file can list the overlap twice, so
the wavelength column goes back at each join. :func:`resolve_overlaps` turns that into one
increasing axis by cutting each join at a crossover wavelength: the earlier detector is kept
below it and the later one from it on, and nothing is averaged or scaled. That is what SVC's
own software does when it removes the overlap (it records ``Overlap: Remove @ 970,1901`` in
the files it reprocesses, and keeps the two sides' values unchanged).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._scans import RawSpectra, ScanKind, scan_metadata

# Vendor files are ASCII; a few carry cp1252/latin-1 bytes in names and comments.
_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
_DOS_EOF = b"\x1a"
# A recorded crossover is used when it lies in the overlap or at most this far below it: SVC's
# software cuts HR-1024i files at 970 nm even where the second detector starts at 971.8 nm.
CROSSOVER_REACH = 10.0
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


def read_lines(path: Path) -> list[str]:
    """The file's lines without line ends (LF, CRLF or CR), cut at a DOS end-of-file byte.

    Raises:
        SpecsoilError: If the file cannot be read or holds NUL bytes (a binary file).
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SpecsoilError(f"{path}: cannot read the file ({error.strerror})") from None
    end = raw.find(_DOS_EOF)
    if end >= 0:
        raw = raw[:end]
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise SpecsoilError(f"{path}: byte offset {nul} is a NUL byte; expected a text file")
    for encoding in _ENCODINGS:
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    # str.splitlines would also split on form feeds and U+0085, which cp1252 text can hold.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_rows(
    lines: Sequence[str],
    start: int,
    path: Path,
    *,
    n_columns: int | None = None,
    separator: str | None = None,
) -> NDArray[np.float64]:
    """Parse ``lines[start:]`` as rows of numbers; blank lines are skipped.

    Args:
        lines: The file's lines.
        start: 0-based index of the first data line.
        path: The file, for messages.
        n_columns: Columns every row must have; by default the first row decides.
        separator: Field separator; whitespace by default.

    Returns:
        Shape (n_rows, n_columns), float64.

    Raises:
        SpecsoilError: Naming the line (1-based) of a row with another number of columns or
            of a cell that is not a number, or when there is no row.
    """
    rows: list[list[float]] = []
    for index in range(start, len(lines)):
        line = lines[index]
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(separator)] if separator else line.split()
        if n_columns is None:
            n_columns = len(cells)
        if len(cells) != n_columns:
            raise SpecsoilError(
                f"{path}: line {index + 1} has {len(cells)} values; expected {n_columns}"
            )
        row = []
        for column, cell in enumerate(cells, start=1):
            if not _NUMBER.match(cell):
                raise SpecsoilError(
                    f"{path}: line {index + 1}, column {column}: {cell!r} is not a number"
                )
            row.append(float(cell))
        rows.append(row)
    if not rows:
        raise SpecsoilError(f"{path}: no data rows after line {start}; the file is truncated")
    return np.asarray(rows, dtype=np.float64)


def resolve_overlaps(
    axis: NDArray[np.float64],
    values: NDArray[np.float64],
    *,
    path: Path,
    crossovers: Sequence[float] = (),
    crossover_source: str = "",
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str]]:
    """Make an axis that goes back at detector joins increasing, by cutting each join once.

    At join ``k`` the overlap runs from the later detector's first point to the earlier
    detector's last one. The cut is ``crossovers[k]`` when it lies inside that overlap or at
    most :data:`CROSSOVER_REACH` below it, else the overlap's midpoint. Points of the earlier
    detector at or above the cut and points of the later detector below it are dropped; no
    value is changed.

    Args:
        axis: Shape (n_points,), in file order.
        values: Shape (n_spectra, n_points).
        path: The file, for messages.
        crossovers: Preferred cut per join, in the axis unit.
        crossover_source: Where ``crossovers`` come from, for the notes.

    Returns:
        The increasing axis, the kept values and one note per join.

    Raises:
        SpecsoilError: If a detector starts before the one before it (not an overlap).
    """
    if axis.size < 2 or bool(np.all(np.diff(axis) > 0)):
        return axis, values, []
    starts = [0, *(np.flatnonzero(np.diff(axis) <= 0) + 1).tolist(), axis.size]
    keep = np.zeros(axis.size, dtype=bool)
    keep[starts[0] : starts[1]] = True
    notes = []
    for join in range(len(starts) - 2):
        later = np.arange(starts[join + 1], starts[join + 2])
        earlier = np.flatnonzero(keep)
        low, high = float(axis[later[0]]), float(axis[earlier[-1]])
        if low < float(axis[earlier[0]]):
            raise SpecsoilError(
                f"{path}: data point {later[0] + 1} goes back to {low:g}, before the start "
                f"{axis[earlier[0]]:g} of the detector before it; expected one detector "
                "overlap per join"
            )
        preferred = crossovers[join] if join < len(crossovers) else None
        if preferred is not None and low - CROSSOVER_REACH <= preferred <= high:
            cut, how = float(preferred), f"the crossover {preferred:g} {crossover_source}"
        else:
            cut, how = (low + high) / 2, "the midpoint of the overlap"
        dropped_earlier = earlier[axis[earlier] >= cut]
        kept_later = later[axis[later] >= cut]
        keep[dropped_earlier] = False
        keep[kept_later] = True
        # A later detector that ends inside the overlap would leave the axis unsorted.
        if kept_later.size == 0:
            raise SpecsoilError(
                f"{path}: detector {join + 2} ({low:g}-{axis[later[-1]]:g}) lies inside the "
                "one before it; expected detectors that extend the range"
            )
        dropped = dropped_earlier.size + later.size - kept_later.size
        notes.append(
            f"detectors {join + 1} and {join + 2} overlap at {low:g}-{high:g}: cut at "
            f"{cut:g} ({how}); kept detector {join + 1} below it and detector {join + 2} from "
            f"it, dropping {dropped} points; values unchanged"
        )
    return axis[keep], values[:, keep], notes


def parse_date_time(text: str, formats: Sequence[str]) -> str | None:
    """``text`` as an ISO 8601 string, trying each ``strptime`` format; None when none fits."""
    cleaned = " ".join(text.split())
    for form in formats:
        try:
            return datetime.strptime(cleaned, form).isoformat()
        except ValueError:
            continue
    return None


def number_or_none(text: str | None) -> float | None:
    """``text`` as a float, or None when it is empty or not a number (``n/a``)."""
    if text is None:
        return None
    cleaned = text.strip()
    return float(cleaned) if _NUMBER.match(cleaned) else None


def one_spectrum(
    axis: NDArray[np.float64],
    values: NDArray[np.float64],
    kind: ScanKind,
    metadata: dict[str, object],
    path: Path,
    notes: list[str],
) -> RawSpectra:
    """The :class:`RawSpectra` of a file holding one spectrum on a nm axis."""
    return RawSpectra(
        values=np.ascontiguousarray(values).reshape(1, -1),
        axis=axis,
        axis_unit="nm",
        kind=kind,
        metadata=scan_metadata([metadata]),
        source=str(path),
        notes=tuple(notes),
    )
