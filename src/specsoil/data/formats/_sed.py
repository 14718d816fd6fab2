"""Spectral Evolution ``.sed`` files (DARWin software: PSR, RS and SR spectroradiometers).

The header is ``Key: value`` lines up to ``Data:``; the next line names the columns, which
differ by instrument and software version (``Wvl``, ``Chan.#``, ``Rad. (Target)``,
``Norm. DN (Target)``, ``Reflect. %``, ``Reflect. [1.0]``, ``-log Reflect.``), so columns are
found by name. Reflectance is read when the file has it (``%`` is percent, ``[1.0]`` a
fraction); otherwise ``-log Reflect.`` (absorbance), then the target radiance or DN, each
reported as what it is. A wavelength listed twice at a detector join is cut like an SVC
overlap, at the overlap's midpoint, since the file records no crossover.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specsoil._errors import SpecsoilError
from specsoil.data._registry import register_reader
from specsoil.data._scans import RawSpectra, ScanKind
from specsoil.data.formats._text import (
    number_or_none,
    one_spectrum,
    parse_date_time,
    parse_rows,
    read_lines,
    resolve_overlaps,
)

_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M:%S")
_WAVELENGTH_NAMES = ("wvl", "wavelength", "wl", "wavelength (nm)")
# Lower-cased column names of the target quantity, in the order they are preferred.
_TARGET_COLUMNS: tuple[tuple[str, ScanKind], ...] = (
    ("reflect. %", "reflectance-percent"),
    ("reflect. [1.0]", "reflectance"),
    ("-log reflect.", "absorbance"),
    ("rad. (target)", "radiance"),
    ("irrad. (target)", "radiance"),
    ("norm. dn (target)", "dn"),
    ("dn (target)", "dn"),
)


def _split_names(line: str) -> list[str]:
    """Column names: tab separated as DARWin writes them (names hold single spaces)."""
    if "\t" in line:
        return [name.strip() for name in line.strip().split("\t")]
    return [name.strip() for name in line.strip().split("  ") if name.strip()]


class SedReader:
    """Reader for Spectral Evolution ``.sed`` files."""

    name: str = "sed"
    description: str = "Spectral Evolution (DARWin) .sed text files; columns found by name"
    suffixes: tuple[str, ...] = (".sed",)

    def sniff(self, head: bytes, path: Path) -> bool:
        """True for a header with DARWin's keys, and a ``Data:`` line or the ``.sed`` suffix."""
        text = head.decode("latin-1").lower()
        darwin = "instrument:" in text and "measurement:" in text
        return darwin and ("\ndata:" in text or path.suffix.lower() == ".sed")

    def read(self, path: Path) -> RawSpectra:
        """Read the file; see the module docstring for how the column is chosen."""
        lines = read_lines(path)
        header: dict[str, str] = {}
        data_line = None
        for index, line in enumerate(lines):
            if line.strip().lower() == "data:":
                data_line = index
                break
            key, sep, value = line.partition(":")
            if sep:
                header.setdefault(key.strip().lower(), value.strip())
        if data_line is None:
            raise SpecsoilError(
                f"{path}: no 'Data:' line after the header ({len(lines)} lines read); "
                "expected a Spectral Evolution .sed file"
            )
        names_line = next((i for i in range(data_line + 1, len(lines)) if lines[i].strip()), None)
        if names_line is None:
            raise SpecsoilError(
                f"{path}: nothing after 'Data:' on line {data_line + 1}; expected the column "
                "names and the data rows"
            )
        names = _split_names(lines[names_line])
        lowered = [name.lower() for name in names]
        wavelength = next((i for i, n in enumerate(lowered) if n in _WAVELENGTH_NAMES), None)
        if wavelength is None:
            raise SpecsoilError(
                f"{path}: line {names_line + 1}: no wavelength column among {names}; expected 'Wvl'"
            )
        chosen = next(
            ((lowered.index(n), kind) for n, kind in _TARGET_COLUMNS if n in lowered), None
        )
        if chosen is None:
            raise SpecsoilError(
                f"{path}: line {names_line + 1}: columns {names} hold no reflectance, "
                "radiance or DN of the target; expected e.g. 'Reflect. %' or 'Rad. (Target)'"
            )
        column, kind = chosen
        table = parse_rows(
            lines,
            names_line + 1,
            path,
            n_columns=len(names),
            separator="\t" if "\t" in lines[names_line] else None,
        )
        channels = number_or_none(header.get("channels"))
        if channels is not None and table.shape[0] != int(channels):
            raise SpecsoilError(
                f"{path}: {table.shape[0]} data rows after line {names_line + 1}; the header "
                f"says Channels: {int(channels)} (the file is truncated or has extra rows)"
            )
        notes = [f"read column {names[column]!r} as {kind}"]
        notes += self._zero_radiance(table, lowered)
        axis, values, overlap_notes = resolve_overlaps(
            table[:, wavelength], table[:, column][None, :], path=path
        )
        notes += overlap_notes
        metadata = self._metadata(header, path, notes)
        return one_spectrum(axis, values, kind, metadata, path, notes)

    @staticmethod
    def _zero_radiance(table: np.ndarray, lowered: list[str]) -> list[str]:
        """Report rows where a radiance or DN column is 0: their ratio is not a measurement."""
        signal = [
            i for i, n in enumerate(lowered) if n.startswith(("rad.", "irrad.", "norm. dn", "dn"))
        ]
        if not signal:
            return []
        zero = np.flatnonzero((table[:, signal] == 0).any(axis=1))
        if zero.size == 0:
            return []
        shown = ", ".join(f"{w:g}" for w in table[zero[:10], 0])
        more = ", ..." if zero.size > 10 else ""
        return [
            f"radiance or DN is 0 at {zero.size} wavelengths ({shown}{more} nm); their values "
            "are kept as the file has them but are not measurements"
        ]

    def _metadata(self, header: dict[str, str], path: Path, notes: list[str]) -> dict[str, object]:
        model, _, serial = header.get("instrument", "").partition("_SN")
        serial = serial.split()[0] if serial.split() else ""
        dates = [d.strip() for d in header.get("date", "").split(",")]
        times = [t.strip() for t in header.get("time", "").split(",")]
        acquired = None
        if dates[-1] and times[-1]:
            # The last of the (reference, target) pair is the target scan.
            acquired = parse_date_time(f"{dates[-1]} {times[-1]}", _DATE_FORMATS)
            if acquired is None:
                notes.append(f"date/time {dates[-1]} {times[-1]!r} not understood; left empty")
        return {
            "source_file": str(path),
            "spectrum_name": path.stem,
            "instrument": f"Spectral Evolution {model.strip()}" if model.strip() else None,
            "serial_number": serial or None,
            "acquired": acquired,
            "file_format": self.name,
            "latitude": number_or_none(header.get("latitude")),
            "longitude": number_or_none(header.get("longitude")),
        }


register_reader(SedReader())
