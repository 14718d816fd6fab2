"""Spectra Vista (SVC) ``.sig`` files of the HR-768, HR-1024, HR-1024i and HR-640 instruments.

The header is ``key= value`` lines, most values a ``reference, target`` pair, up to ``data=``.
Each data row is wavelength (nm), reference radiance, target radiance and reflectance in %.
With ``Overlap: Preserve`` the wavelengths go back at the two detector joins (near 1000 and
1900 nm); the overlap is cut as SVC's software cuts it (see ``_text.resolve_overlaps``) at
its crossovers 970 and 1901 nm, or at the overlap's midpoint when a join does not contain
them.
"""

from __future__ import annotations

import re
from pathlib import Path

from specsoil._errors import SpecsoilError
from specsoil.data._registry import register_reader
from specsoil.data._scans import RawSpectra, ScanKind
from specsoil.data.formats._text import (
    one_spectrum,
    parse_date_time,
    parse_rows,
    read_lines,
    resolve_overlaps,
)

_SIGNATURE = b"/*** Spectra Vista SIG Data ***/"
# The crossovers SVC's software records when it removes the overlap ("Overlap: Remove @
# 970,1901" in the HR-1024i files it reprocesses).
SVC_CROSSOVERS_NM = (970.0, 1901.0)
_TIME_FORMATS = (
    "%m/%d/%Y %I:%M:%S%p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%y %I:%M:%S %p",
)
# "HI: 5192098 (HR-1024i)": optional type prefix, serial number, model in brackets.
_INSTRUMENT = re.compile(r"^(?:[A-Za-z]+:\s*)?(?P<serial>[^\s(]+)\s*\((?P<model>[^)]+)\)")
# NMEA-style "09231.1627W": degrees then minutes with decimals, then the hemisphere.
_NMEA = re.compile(r"^(?P<degrees>\d+?)(?P<minutes>\d\d\.\d+)(?P<hemisphere>[NSEW])$")
_REMOVED_AT = re.compile(r"Overlap:\s*Remove\s*@\s*([\d.]+)\s*,\s*([\d.]+)", re.IGNORECASE)


def _pair(header: dict[str, str], key: str) -> tuple[str, str] | None:
    """The (reference, target) values of a paired header entry."""
    if key not in header:
        return None
    parts = [part.strip() for part in header[key].split(",")]
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def _coordinate(text: str) -> float | None:
    """Decimal degrees from NMEA ``ddmm.mmmmH`` or a plain decimal; None when empty."""
    cleaned = text.strip()
    if not cleaned:
        return None
    match = _NMEA.match(cleaned)
    if match:
        value = float(match["degrees"]) + float(match["minutes"]) / 60.0
        return -value if match["hemisphere"] in "SW" else value
    try:
        return float(cleaned)
    except ValueError:
        return None


class SigReader:
    """Reader for SVC ``.sig`` files (reflectance in %, or radiance when that is all)."""

    name: str = "sig"
    description: str = "Spectra Vista (SVC) .sig text files, overlap preserved or removed"
    suffixes: tuple[str, ...] = (".sig",)

    def sniff(self, head: bytes, path: Path) -> bool:
        """True for files that open with the SVC signature line."""
        return head.lstrip().startswith(_SIGNATURE)

    def read(self, path: Path) -> RawSpectra:
        """Read the file; see the module docstring for the layout and the overlap rule."""
        lines = read_lines(path)
        header: dict[str, str] = {}
        data_line = None
        for index, line in enumerate(lines):
            key, sep, value = line.partition("=")
            if not sep:
                continue
            key = key.strip().lower()
            if key == "data":
                data_line = index
                break
            header.setdefault(key, value.strip())
        if data_line is None:
            raise SpecsoilError(
                f"{path}: no 'data=' line after the header ({len(lines)} lines read); "
                "expected an SVC .sig file"
            )
        table = parse_rows(lines, data_line + 1, path)
        notes: list[str] = []
        kind: ScanKind
        if table.shape[1] == 4:
            column, kind = 3, "reflectance-percent"
        elif table.shape[1] == 3:
            # Wavelength, reference and target radiance without the ratio: keep the target.
            column, kind = 2, "radiance"
            notes.append("the file has no reflectance column; the target radiance was read")
        else:
            raise SpecsoilError(
                f"{path}: line {data_line + 2}: data rows have {table.shape[1]} columns; "
                "expected 4 (wavelength, reference radiance, target radiance, reflectance %)"
            )
        axis = table[:, 0]
        values = table[:, column][None, :]
        factors = header.get("factors", "")
        removed = _REMOVED_AT.search(factors)
        crossovers = (float(removed[1]), float(removed[2])) if removed else SVC_CROSSOVERS_NM
        axis, values, overlap_notes = resolve_overlaps(
            axis,
            values,
            path=path,
            crossovers=crossovers,
            crossover_source="nm recorded in the header"
            if removed
            else "nm that SVC's software uses when it removes the overlap",
        )
        notes += [f"{note} (header: {factors})" for note in overlap_notes]
        metadata = self._metadata(header, path, notes)
        return one_spectrum(axis, values, kind, metadata, path, notes)

    def _metadata(self, header: dict[str, str], path: Path, notes: list[str]) -> dict[str, object]:
        model = serial = None
        match = _INSTRUMENT.match(header.get("instrument", ""))
        if match:
            model, serial = match["model"].strip(), match["serial"]
        times = _pair(header, "time")
        acquired = parse_date_time(times[1], _TIME_FORMATS) if times else None
        if times and acquired is None:
            notes.append(f"acquisition time {times[1]!r} not understood; left empty")
        latitudes, longitudes = _pair(header, "latitude"), _pair(header, "longitude")
        return {
            "source_file": str(path),
            "spectrum_name": header.get("name") or path.stem,
            "instrument": f"SVC {model}" if model else None,
            "serial_number": serial,
            "acquired": acquired,
            "file_format": self.name,
            "latitude": _coordinate(latitudes[1]) if latitudes else None,
            "longitude": _coordinate(longitudes[1]) if longitudes else None,
        }


register_reader(SigReader())
