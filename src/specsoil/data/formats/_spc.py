"""Galactic / Thermo GRAMS SPC files (``.spc``).

New format, least-significant byte first (version byte 0x4B): a 512-byte header (flags,
point count, first/last X, subfile count, X/Y/Z unit codes), then an X array when the flag
TXVALS (0x80) is set, then the subfiles: a 32-byte subheader each (with its own exponent),
an X array of their own when TXYXYS (0x40) is set, and the Y values: float32 when the
exponent is -128, else integers (int32, or int16 with TSPREC) scaled by 2**(exp-32) or
2**(exp-16). Old format (0x4D): a 256-byte header with float point counts and Y stored as
int32 with their 16-bit words swapped. MSB files (0x4C) are rejected with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil.data._registry import register_reader
from specsoil.data._scans import AxisUnit, RawSpectra, ScanKind
from specsoil.data.formats._binary import BinaryFile, iso

_NEW_LSB, _NEW_MSB, _OLD = 0x4B, 0x4C, 0x4D
_TSPREC, _TMULTI, _TXYXYS, _TXVALS = 0x01, 0x04, 0x40, 0x80
_FLOAT_EXPONENT = -128
_SUBHEADER_BYTES = 32
# fxtype codes with a spectral axis specsoil can use; any other is kept as "index".
_X_UNITS: dict[int, AxisUnit] = {1: "cm-1", 2: "um", 3: "nm", 13: "raman-shift-cm-1"}
_X_NAMES = {
    0: "arbitrary",
    4: "seconds",
    5: "minutes",
    6: "Hz",
    9: "m/z",
    10: "ppm",
    14: "eV",
    16: "diode number",
    17: "channel",
    22: "data points",
    23: "ms",
    255: "interferogram points",
}
# fytype codes; transmission and reflectance are checked for percent on the values.
_Y_KINDS: dict[int, ScanKind] = {
    2: "absorbance",
    3: "kubelka-munk",
    4: "counts",
    10: "absorbance",  # log(1/R), the apparent absorbance specsoil models on
    128: "transmittance",
    129: "reflectance",
}


def _packed_date(packed: int) -> datetime | None:
    """fdate: minute (6 bits), hour (5), day (5), month (4), year (12), low bits first."""
    year = packed >> 20
    if 0 < year < 200:  # some writers store years since 1900
        year += 1900
    try:
        return datetime(
            year,
            (packed >> 16) & 0xF,
            (packed >> 11) & 0x1F,
            (packed >> 6) & 0x1F,
            packed & 0x3F,
        )
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Header:
    """What the reader keeps of an SPC header."""

    x_type: int
    y_type: int
    acquired: datetime | None
    comment: str
    source_instrument: str
    method: str


def _y_values(
    binary: BinaryFile, offset: int, count: int, exponent: int, short: bool, what: str
) -> tuple[NDArray[np.float64], int]:
    """Y values of one subfile and the offset after them."""
    if exponent == _FLOAT_EXPONENT:
        return binary.array("f4", count, offset, what), offset + 4 * count
    if short:
        raw = binary.array("i2", count, offset, what)
        return raw * 2.0 ** (exponent - 16), offset + 2 * count
    raw = binary.array("i4", count, offset, what)
    return raw * 2.0 ** (exponent - 32), offset + 4 * count


def _new_format(
    binary: BinaryFile,
) -> tuple[list[NDArray[np.float64]], NDArray[np.float64], list[float], _Header]:
    """Subfile Y arrays, the shared X axis, each subfile's Z value and header fields."""
    flags, _version, _experiment, exponent, n_points, first, last, n_sub = binary.unpack(
        "BBBbiddi", 0, "the 512-byte SPC header"
    )
    x_type, y_type, _z_type = binary.unpack("BBB", 28, "the axis unit codes")
    (packed_date,) = binary.unpack("i", 32, "the date")
    binary.require(0, 512, "the 512-byte SPC header")
    multi = bool(flags & _TMULTI)
    n_sub = n_sub if multi else 1
    if n_sub <= 0 or n_sub > binary.size // _SUBHEADER_BYTES:
        raise binary.fail(24, f"expected a subfile count >= 1; got {n_sub}")
    xyxy = bool(flags & _TXYXYS)
    if not xyxy and not 0 < n_points <= binary.size:
        raise binary.fail(4, f"expected a point count between 1 and the file size; got {n_points}")
    offset = 512
    axis: NDArray[np.float64] | None = None
    if flags & _TXVALS and not xyxy:
        axis = binary.array("f4", n_points, offset, f"the X array of {n_points} float32 values")
        offset += 4 * n_points
    elif not xyxy:
        axis = np.linspace(first, last, n_points)
    rows: list[NDArray[np.float64]] = []
    z_values: list[float] = []
    for index in range(n_sub):
        what = f"subfile {index + 1} of {n_sub}"
        _sub_flags, sub_exponent, _sub_index, z_start, *_rest, sub_points = binary.unpack(
            "BbhfffI", offset, f"the header of {what}"
        )
        offset += _SUBHEADER_BYTES
        count = n_points
        if xyxy:
            if not 0 < sub_points <= binary.size:
                raise binary.fail(
                    offset - 16, f"expected the point count of {what}; got {sub_points}"
                )
            count = sub_points
            sub_axis = binary.array("f4", count, offset, f"the X array of {what}")
            offset += 4 * count
            if axis is None:
                axis = sub_axis
            elif not np.array_equal(axis, sub_axis):
                raise binary.fail(
                    offset - 4 * count,
                    f"the X array of {what} differs from the first subfile's; expected one "
                    "shared axis (XYXY multifiles with different axes are not supported)",
                )
        use_exponent = (
            _FLOAT_EXPONENT if _FLOAT_EXPONENT in (exponent, sub_exponent) else sub_exponent
        )
        values, offset = _y_values(
            binary, offset, count, use_exponent, bool(flags & _TSPREC), f"the Y values of {what}"
        )
        rows.append(values)
        z_values.append(float(z_start))
    assert axis is not None
    header = _Header(
        x_type=x_type,
        y_type=y_type,
        acquired=_packed_date(packed_date),
        comment=binary.text(88, 130, "the comment"),
        source_instrument=binary.text(45, 9, "the instrument source"),
        method=binary.text(264, 48, "the method"),
    )
    return rows, axis, z_values, header


def _old_format(
    binary: BinaryFile,
) -> tuple[list[NDArray[np.float64]], NDArray[np.float64], list[float], _Header]:
    """The pre-1996 format: float point count, word-swapped int32 Y, 256-byte header."""
    flags, _version, exponent, n_points_f, first, last, x_type, y_type = binary.unpack(
        "BBhfffBB", 0, "the 256-byte old SPC header"
    )
    year, month, day, hour, minute = binary.unpack("hBBBB", 18, "the date")
    binary.require(0, 256, "the 256-byte old SPC header")
    n_points = int(n_points_f) if np.isfinite(n_points_f) else -1
    if not 0 < n_points <= binary.size or flags & (_TXVALS | _TXYXYS | _TMULTI):
        raise binary.fail(
            0,
            "expected an old-format single spectrum with evenly spaced X; got "
            f"{n_points} points, flags {flags:#04x}",
        )
    if exponent == _FLOAT_EXPONENT:
        values = binary.array("f4", n_points, 256, "the Y values")
    else:
        binary.require(256, 4 * n_points, f"the Y values, {n_points} int32")
        words = np.frombuffer(binary.raw, dtype="<u2", count=2 * n_points, offset=256)
        # Old files store each int32 as (high word, low word).
        swapped = (words[0::2].astype(np.uint32) << 16) | words[1::2].astype(np.uint32)
        values = swapped.view(np.int32).astype(np.float64) * 2.0 ** (exponent - 32)
    try:
        acquired: datetime | None = datetime(year, month, day, hour, minute)
    except ValueError:
        acquired = None
    header = _Header(x_type, y_type, acquired, binary.text(64, 130, "the comment"), "", "")
    return [values], np.linspace(first, last, n_points), [0.0], header


def read_spc(path: Path, *, label: str | None = None) -> RawSpectra:
    """Read one Galactic SPC file: one row per subfile.

    Args:
        path: The file.
        label: How messages and ``source`` name the file (default: the path).

    Returns:
        The subfiles on their shared X axis, with the kind from the Y unit code and the
        axis unit from the X unit code.

    Raises:
        SpecsoilError: An unknown version byte, MSB byte order, a truncated file or subfiles
            on different X arrays; the message names the byte offset.
    """
    binary = BinaryFile(path, label=label)
    version = binary.unpack("BB", 0, "the SPC flags and version")[1]
    if version == _NEW_LSB:
        rows, axis, z_values, header = _new_format(binary)
    elif version == _OLD:
        rows, axis, z_values, header = _old_format(binary)
    elif version == _NEW_MSB:
        raise binary.fail(
            1, "this SPC file is big-endian (0x4C); expected little-endian 0x4B or old format 0x4D"
        )
    else:
        raise binary.fail(1, f"expected an SPC version byte 0x4B or 0x4D; got {version:#04x}")
    values = np.vstack(rows)
    x_code, y_code = header.x_type, header.y_type
    axis_unit: AxisUnit = _X_UNITS.get(x_code, "index")
    notes = []
    if axis_unit == "index":
        notes.append(
            f"the X axis is {_X_NAMES.get(x_code, f'unit code {x_code}')}, kept as 'index'"
        )
    kind: ScanKind = _Y_KINDS.get(y_code, "unknown")
    if kind in ("transmittance", "reflectance") and np.nanmax(np.abs(values)) > 1.5:
        kind = "transmittance-percent" if kind == "transmittance" else "reflectance-percent"
    if kind == "unknown":
        notes.append(f"the Y unit code {y_code} is not a quantity specsoil models on")
    if len(rows) > 1:
        notes.append(f"multifile: {len(rows)} subfiles read as {len(rows)} rows")
    metadata = pd.DataFrame(
        {
            "source_file": binary.label,
            "spectrum_name": [
                path.stem if len(rows) == 1 else f"{path.stem}[{index}]"
                for index in range(len(rows))
            ],
            "instrument": header.source_instrument or None,
            "serial_number": None,
            "acquired": iso(header.acquired),
            "file_format": "spc old" if version == _OLD else "spc",
            "subfile": np.arange(len(rows)),
            "z_value": z_values,
            "comment": header.comment or None,
            "method": header.method or None,
        }
    )
    return RawSpectra(
        values=values,
        axis=axis.astype(np.float64),
        axis_unit=axis_unit,
        kind=kind,
        metadata=metadata,
        source=binary.label,
        notes=tuple(notes),
    )


class SpcReader:
    """Reader for Galactic / Thermo GRAMS ``.spc`` files."""

    name: str = "spc"
    description: str = (
        "Galactic/Thermo GRAMS SPC (.spc): new LSB format incl. multifiles and XY files, old format"
    )
    suffixes: tuple[str, ...] = (".spc",)

    def sniff(self, head: bytes, path: Path) -> bool:
        """True for a ``.spc`` file whose version byte is one SPC uses."""
        # Two bytes are too weak a signature on their own, so the suffix must agree.
        return (
            path.suffix.lower() == ".spc"
            and len(head) >= 2
            and head[1] in (_NEW_LSB, _NEW_MSB, _OLD)
        )

    def read(self, path: Path) -> RawSpectra:
        """Read ``path``; see :func:`read_spc`."""
        return read_spc(path)


register_reader(SpcReader())
