"""ENVI spectral libraries: a binary ``.sli`` of spectra with its text ``.hdr`` header.

The header (``key = value``; ``{...}`` values may span lines) gives ``samples`` (points per
spectrum), ``lines`` (spectra), ``data type``, ``byte order``, ``header offset``,
``spectra names``, ``wavelength`` with ``wavelength units``, and optionally ``fwhm``,
``data ignore value`` and ``reflectance scale factor``. Cells equal to the ignore value become
NaN; values are divided by a reflectance scale factor other than 1.

Libraries converted from SPECPR (the USGS ones) keep the wavelength and bandpass (FWHM)
records as their first rows. Any row equal to the header's wavelength or fwhm list is such a
record, not a spectrum, and is dropped with a note. Rows titled "error bars to preceding" are
kept but marked ``record_type = "error-bars"`` (``read_scans`` leaves them out). Convolved
libraries (AVIRIS) can list a detector overlap twice; it is cut as for SVC files, at the
overlap's midpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._registry import register_reader
from specsoil.data._scans import AxisUnit, RawSpectra, ScanKind, scan_metadata
from specsoil.data.formats._text import read_lines, resolve_overlaps

# ENVI data type codes and their numpy types (ENVI header documentation).
_DATA_TYPES = {
    1: "u1",
    2: "i2",
    3: "i4",
    4: "f4",
    5: "f8",
    12: "u2",
    13: "u4",
    14: "i8",
    15: "u8",
}
_UNITS: dict[str, AxisUnit] = {
    "micrometers": "um",
    "micrometer": "um",
    "microns": "um",
    "micron": "um",
    "um": "um",
    "µm": "um",
    "nanometers": "nm",
    "nanometer": "nm",
    "nm": "nm",
    "wavenumber": "cm-1",
    "wavenumbers": "cm-1",
    "cm-1": "cm-1",
}
# The title SPECPR gives a record holding the error bars of the spectrum before it.
_ERROR_BARS = "error bars to preceding"
# An ignore value this large is a sentinel; cells beyond it are no measurement either.
_SENTINEL = 1e20
# A wavelength list above this is in nm when the header gives no unit.
_NM_ABOVE = 100.0


def header_path(library: Path) -> Path | None:
    """The ENVI header of a library: ``name.hdr`` or ``name.sli.hdr``, None when missing."""
    for candidate in (library.with_suffix(".hdr"), library.with_name(library.name + ".hdr")):
        if candidate.is_file():
            return candidate
    return None


def parse_envi_header(path: Path) -> dict[str, str]:
    """The header's ``key = value`` entries, keys lower-cased, braces kept around lists.

    Raises:
        SpecsoilError: If the first line is not ``ENVI`` or a brace is never closed.
    """
    lines = read_lines(path)
    if not lines or lines[0].strip() != "ENVI":
        raise SpecsoilError(f"{path}: line 1 is not 'ENVI'; expected an ENVI header")
    entries: dict[str, str] = {}
    index = 1
    while index < len(lines):
        key, sep, value = lines[index].partition("=")
        start = index
        index += 1
        if not sep:
            continue
        value = value.strip()
        if value.startswith("{"):
            while "}" not in value:
                if index >= len(lines):
                    raise SpecsoilError(
                        f"{path}: line {start + 1}: the '{{' of {key.strip()!r} is never closed"
                    )
                value += "\n" + lines[index]
                index += 1
        entries[" ".join(key.lower().split())] = value
    return entries


def _list(entries: dict[str, str], key: str) -> list[str]:
    text = entries.get(key, "").strip()
    if text.startswith("{"):
        text = text[1 : text.rindex("}")]
    return [item.strip() for item in text.split(",")] if text.strip() else []


def _integer(entries: dict[str, str], key: str, path: Path, default: int | None = None) -> int:
    if key not in entries:
        if default is None:
            raise SpecsoilError(f"{path}: no '{key}' entry; the header needs it")
        return default
    try:
        return int(entries[key])
    except ValueError:
        raise SpecsoilError(f"{path}: '{key} = {entries[key]}' is not a whole number") from None


def _numbers(items: list[str], key: str, path: Path) -> NDArray[np.float64]:
    try:
        return np.asarray([float(item) for item in items], dtype=np.float64)
    except ValueError:
        raise SpecsoilError(f"{path}: '{key}' holds a value that is not a number") from None


class EnviLibraryReader:
    """Reader for ENVI spectral libraries (``.sli`` beside its ``.hdr``)."""

    name: str = "envi-sli"
    description: str = "ENVI spectral library .sli with its .hdr (several spectra per file)"
    suffixes: tuple[str, ...] = (".sli",)

    def sniff(self, head: bytes, path: Path) -> bool:
        """True for a ``.sli`` file (its header says more; the data have no signature)."""
        return path.suffix.lower() == ".sli"

    def read(self, path: Path) -> RawSpectra:
        """Read the library; see the module docstring for the rules."""
        header = header_path(path)
        if header is None:
            raise SpecsoilError(
                f"{path}: no ENVI header beside it (looked for {path.with_suffix('.hdr').name} "
                f"and {path.name}.hdr)"
            )
        entries = parse_envi_header(header)
        samples = _integer(entries, "samples", header)
        lines = _integer(entries, "lines", header)
        bands = _integer(entries, "bands", header, default=1)
        offset = _integer(entries, "header offset", header, default=0)
        code = _integer(entries, "data type", header)
        order = _integer(entries, "byte order", header, default=0)
        if code not in _DATA_TYPES:
            raise SpecsoilError(
                f"{header}: data type {code} is not read; expected one of {sorted(_DATA_TYPES)}"
            )
        if bands != 1:
            raise SpecsoilError(f"{header}: bands = {bands}; a spectral library has 1")
        dtype = np.dtype(_DATA_TYPES[code]).newbyteorder(">" if order == 1 else "<")
        expected = offset + samples * lines * dtype.itemsize
        size = path.stat().st_size
        if size != expected:
            raise SpecsoilError(
                f"{path}: {size} bytes, but {header.name} describes {offset} + {lines} spectra x "
                f"{samples} points x {dtype.itemsize} bytes = {expected}; the data "
                f"{'end' if size < expected else 'go on'} at byte offset "
                f"{min(size, expected)}"
            )
        with path.open("rb") as stream:
            stream.seek(offset)
            values = np.fromfile(stream, dtype=dtype, count=samples * lines)
        values = values.reshape(lines, samples).astype(np.float64)
        notes: list[str] = []
        axis, axis_unit = self._axis(entries, header, samples, notes)
        values = self._clean(entries, header, values, notes)
        names = _list(entries, "spectra names")
        if names and len(names) != lines:
            raise SpecsoilError(
                f"{header}: 'spectra names' lists {len(names)} names for {lines} spectra"
            )
        names = names or [f"{path.stem}:{i + 1}" for i in range(lines)]
        keep = self._records_to_drop(entries, header, values, axis, notes)
        values, names = values[keep], [n for n, k in zip(names, keep, strict=True) if k]
        if not names:
            raise SpecsoilError(f"{path}: no spectra left after the wavelength/fwhm records")
        axis, values, overlap_notes = resolve_overlaps(axis, values, path=path)
        notes += overlap_notes
        kind = self._kind(entries, notes)
        # SPECPR libraries (USGS) follow a spectrum with its error bars, titled so.
        error_bars = [name.lower().startswith(_ERROR_BARS) for name in names]
        if any(error_bars):
            notes.append(
                f"{sum(error_bars)} rows named '{_ERROR_BARS} ...' are the error bars of the "
                "spectrum before them (record_type 'error-bars'), not spectra"
            )
        records = [
            {
                "source_file": str(path),
                "spectrum_name": name,
                "instrument": entries.get("sensor type") or None,
                "serial_number": None,
                "acquired": None,
                "file_format": self.name,
                "record_type": "error-bars" if bars else "spectrum",
            }
            for name, bars in zip(names, error_bars, strict=True)
        ]
        return RawSpectra(
            values=values,
            axis=axis,
            axis_unit=axis_unit,
            kind=kind,
            metadata=scan_metadata(records),
            source=str(path),
            notes=tuple(notes),
        )

    @staticmethod
    def _axis(
        entries: dict[str, str], header: Path, samples: int, notes: list[str]
    ) -> tuple[NDArray[np.float64], AxisUnit]:
        items = _list(entries, "wavelength")
        if not items:
            notes.append("the header lists no wavelengths; the axis is the point index")
            return np.arange(1.0, samples + 1.0), "index"
        axis = _numbers(items, "wavelength", header)
        if axis.size != samples:
            raise SpecsoilError(
                f"{header}: 'wavelength' lists {axis.size} values for samples = {samples}"
            )
        unit_text = entries.get("wavelength units", "").strip().lower()
        if unit_text in _UNITS:
            return axis, _UNITS[unit_text]
        unit: AxisUnit = "nm" if float(np.max(axis)) > _NM_ABOVE else "um"
        notes.append(
            f"wavelength units {unit_text or 'missing'!r}: taken as {unit} from the values"
        )
        return axis, unit

    @staticmethod
    def _clean(
        entries: dict[str, str], header: Path, values: NDArray[np.float64], notes: list[str]
    ) -> NDArray[np.float64]:
        if "data ignore value" in entries:
            ignore = _numbers([entries["data ignore value"]], "data ignore value", header)[0]
            # The value is written in decimal but stored as float32: compare at that precision.
            missing = np.isclose(values, ignore, rtol=1e-6, atol=0.0)
            if missing.any():
                values[missing] = np.nan
                notes.append(
                    f"{int(missing.sum())} cells equal to the data ignore value {ignore:g} are NaN"
                )
            if abs(ignore) >= _SENTINEL:
                # Convolving a spectrum with deleted points (SPECPR's -1.23e34) smears the
                # sentinel into neighbouring cells; no measurement comes near it.
                smeared = np.abs(values) >= _SENTINEL
                if smeared.any():
                    values[smeared] = np.nan
                    notes.append(
                        f"{int(smeared.sum())} more cells beyond +-{_SENTINEL:g} (the ignore "
                        "value smeared by convolution) are NaN"
                    )
        scale = entries.get("reflectance scale factor")
        if scale is not None:
            factor = _numbers([scale], "reflectance scale factor", header)[0]
            if factor not in (0.0, 1.0):
                values /= factor
                notes.append(f"values divided by the reflectance scale factor {factor:g}")
        return values

    @staticmethod
    def _records_to_drop(
        entries: dict[str, str],
        header: Path,
        values: NDArray[np.float64],
        axis: NDArray[np.float64],
        notes: list[str],
    ) -> NDArray[np.bool_]:
        keep = np.ones(values.shape[0], dtype=bool)
        references = {"wavelength": axis}
        if _list(entries, "fwhm"):
            references["fwhm"] = _numbers(_list(entries, "fwhm"), "fwhm", header)
        for label, reference in references.items():
            if reference.shape[0] != values.shape[1]:
                continue
            same = np.all(np.isclose(values, reference, rtol=1e-5, atol=1e-7), axis=1)
            if same.any():
                rows = ", ".join(str(r + 1) for r in np.flatnonzero(same))
                notes.append(
                    f"row(s) {rows} equal the header's {label} list: a {label} record, not a "
                    "spectrum; dropped"
                )
                keep &= ~same
        return keep

    @staticmethod
    def _kind(entries: dict[str, str], notes: list[str]) -> ScanKind:
        titles = " ".join(_list(entries, "z plot titles")).lower()
        if "reflect" in titles:
            return "reflectance"
        if "absorb" in titles:
            return "absorbance"
        if "reflectance scale factor" in entries:
            notes.append("read as reflectance (the header has a reflectance scale factor)")
            return "reflectance"
        notes.append("the header does not say what the values are (z plot titles)")
        return "unknown"


register_reader(EnviLibraryReader())
