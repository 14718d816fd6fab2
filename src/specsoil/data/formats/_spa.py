"""Thermo OMNIC ``.spa`` files.

Layout: the text ``Spectral Data File`` at byte 0, the title (256 bytes, NUL-ended) at byte
30, the acquisition time (uint32 seconds since 1899-12-31) at byte 296, and a directory
whose entry count (uint16) is at byte 294 and whose 16-byte entries start at byte 304:
a key byte, then the uint32 offset and uint32 size of the section. Key 2 is the spectrum
header (point count at +4, X unit at +8, Y unit at +12, first and last X as float32 at +16
and +20); key 3 is the float32 intensities. The data are found through the directory,
never at a fixed offset.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from specsoil.data._registry import register_reader
from specsoil.data._scans import AxisUnit, RawSpectra, ScanKind
from specsoil.data.formats._binary import BinaryFile, iso

MAGIC = b"Spectral Data File"
_HEADER_KEY, _DATA_KEY = 2, 3
_X_UNITS: dict[int, tuple[AxisUnit, str]] = {
    1: ("cm-1", "wavenumber"),
    2: ("index", "data points"),
    3: ("nm", "wavelength"),
    4: ("um", "wavelength"),
    32: ("raman-shift-cm-1", "Raman shift"),
}
_Y_UNITS: dict[int, tuple[ScanKind, str]] = {
    11: ("reflectance-percent", "% reflectance"),
    12: ("absorbance", "log(1/R)"),
    16: ("transmittance-percent", "% transmittance"),
    17: ("absorbance", "absorbance"),
    20: ("kubelka-munk", "Kubelka-Munk"),
    22: ("unknown", "volts"),
    26: ("unknown", "photoacoustic"),
    31: ("unknown", "Raman intensity"),
}


def read_spa(path: Path, *, label: str | None = None) -> RawSpectra:
    """Read one Thermo OMNIC ``.spa`` file.

    Args:
        path: The file.
        label: How messages and ``source`` name the file (default: the path).

    Returns:
        One spectrum on ``linspace(first X, last X, points)`` as the header gives them.

    Raises:
        SpecsoilError: Wrong magic, a directory without header or data section, or a
            truncated file; the message names the byte offset.
    """
    binary = BinaryFile(path, label=label)
    if not binary.raw.startswith(MAGIC):
        raise binary.fail(0, f"expected the text {MAGIC.decode()!r}; got {binary.raw[:18]!r}")
    (n_entries,) = binary.unpack("H", 294, "the directory entry count")
    binary.require(304, 16 * n_entries, f"the directory of {n_entries} entries")
    sections: dict[int, tuple[int, int, int]] = {}
    for index in range(n_entries):
        entry = 304 + 16 * index
        key, offset, size = binary.unpack("BxII", entry, f"directory entry {index}")
        sections.setdefault(key, (entry, offset, size))
    for key, what in ((_HEADER_KEY, "spectrum header"), (_DATA_KEY, "intensity data")):
        if key not in sections:
            raise binary.fail(
                304,
                f"the directory has no {what} section (key {key}); keys found: {sorted(sections)}",
            )
    _, header_at, _ = sections[_HEADER_KEY]
    n_points, x_code, y_code, first, last = binary.unpack(
        "4xIB3xB3xff", header_at, "the spectrum header"
    )
    data_entry, data_at, data_size = sections[_DATA_KEY]
    if n_points == 0 or 4 * n_points > data_size:
        raise binary.fail(
            data_entry,
            f"the header claims {n_points} points but the data section holds {data_size} bytes; "
            f"expected {4 * n_points}",
        )
    if not (np.isfinite(first) and np.isfinite(last)):
        raise binary.fail(header_at + 16, f"expected finite first and last X; got {first}, {last}")
    values = binary.array("f4", n_points, data_at, f"the intensities, {n_points} float32 values")
    axis_unit, x_name = _X_UNITS.get(x_code, ("index", f"X unit code {x_code}"))
    kind, y_name = _Y_UNITS.get(y_code, ("unknown", f"Y unit code {y_code}"))
    (seconds,) = binary.unpack("I", 296, "the acquisition time")
    acquired = datetime(1899, 12, 31) + timedelta(seconds=seconds) if seconds else None
    row = {
        "source_file": binary.label,
        "spectrum_name": binary.text(30, 256, "the title") or path.stem,
        "instrument": None,
        "serial_number": None,
        "acquired": iso(acquired),
        "file_format": "spa",
        "x_quantity": x_name,
        "y_quantity": y_name,
    }
    return RawSpectra(
        values=values.reshape(1, -1),
        axis=np.linspace(first, last, n_points),
        axis_unit=axis_unit,
        kind=kind,
        metadata=pd.DataFrame([row]),
        source=binary.label,
        notes=(f"data section at byte {data_at} (from the directory); Y is {y_name}",),
    )


class SpaReader:
    """Reader for Thermo OMNIC ``.spa`` files."""

    name: str = "spa"
    description: str = "Thermo OMNIC .spa (single spectrum)"
    suffixes: tuple[str, ...] = (".spa",)

    def sniff(self, head: bytes, path: Path) -> bool:
        """True for a file starting with ``Spectral Data File``."""
        return head.startswith(MAGIC)

    def read(self, path: Path) -> RawSpectra:
        """Read ``path``; see :func:`read_spa`."""
        return read_spa(path)


register_reader(SpaReader())
