"""ASD FieldSpec binary files (``.asd``), file versions 1 to 8.

Layout (ASD "File Format version 8", revision B): a 484-byte spectrum header, the target
spectrum, then from version 2 a reference header (flag, two OLE dates, a BSTR description)
and the white-reference spectrum; version 6 adds classifier data and dependent variables,
version 7 a calibration header with 0-n calibration series, version 8 an audit log and a
signature. Whatever the header's data type says, the instrument stores the target as raw DN
next to the white-reference DN; reflectance is their ratio, as RS3 and ViewSpec compute it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._registry import register_reader
from specsoil.data._scans import RawSpectra, ScanKind
from specsoil.data.formats._binary import BinaryFile, decode_text, iso, ole_date

AsdQuantity = Literal["reflectance", "raw"]

_VERSIONS = {b"ASD": 1, **{f"as{n}".encode(): n for n in range(2, 9)}}
_HEADER_BYTES = 484
# Spectrum data format (byte 199): numpy dtype of each stored value.
_DATA_FORMATS = {0: "f4", 1: "i4", 2: "f8"}
# Spectrum type (byte 186), as the header names it.
_DATA_TYPES = (
    "raw",
    "reflectance",
    "radiance",
    "no units",
    "irradiance",
    "quality index",
    "transmittance",
    "unknown",
    "absorbance",
)
# Instrument type (byte 431).
_INSTRUMENTS = {
    1: "ASD PS II",
    2: "ASD LabSpec VNIR",
    3: "ASD FieldSpec VNIR",
    4: "ASD FieldSpec FR",
    5: "ASD FieldSpec NIR",
    6: "ASD CHEM",
    7: "ASD FieldSpec FR (unattended)",
    10: "ASD HandHeld",
}
_CALIBRATION_TYPES = ("ABSOLUTE", "BASE", "LAMP", "FIBER")
# SWIR gains are stored relative to this unity value.
_UNITY_GAIN = 2048.0


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """What a spectrum's DN depend on besides the light: VNIR integration time, SWIR gains.

    Attributes:
        integration_time_ms: VNIR integration time.
        swir1_gain: SWIR1 gain setting; the amplification is 2048 / setting, so DN times
            setting / 2048 is the DN at unity gain.
        swir2_gain: SWIR2 gain setting, likewise.
        swir1_offset: SWIR1 offset (kept as metadata; DN are stored offset-corrected).
        swir2_offset: SWIR2 offset.
        splice1_nm: Last VNIR wavelength (VNIR/SWIR1 join).
        splice2_nm: Last SWIR1 wavelength (SWIR1/SWIR2 join).
    """

    integration_time_ms: float
    swir1_gain: float
    swir2_gain: float
    swir1_offset: float
    swir2_offset: float
    splice1_nm: float
    splice2_nm: float


def normalised_dn(
    dn: NDArray[np.float64], wavelengths: NDArray[np.float64], settings: DetectorSettings
) -> NDArray[np.float64]:
    """DN made independent of the detector settings: VNIR per ms, SWIR at unity gain.

    This is the normalisation ASD's software applies before dividing a target by its white
    reference, so a ratio of two spectra taken at different settings stays a reflectance.
    """
    out = dn.astype(np.float64, copy=True)
    vnir = wavelengths <= settings.splice1_nm
    swir1 = (wavelengths > settings.splice1_nm) & (wavelengths <= settings.splice2_nm)
    swir2 = wavelengths > settings.splice2_nm
    if settings.integration_time_ms > 0:
        out[vnir] /= settings.integration_time_ms
    if settings.swir1_gain > 0:
        out[swir1] *= settings.swir1_gain / _UNITY_GAIN
    if settings.swir2_gain > 0:
        out[swir2] *= settings.swir2_gain / _UNITY_GAIN
    return out


def _tm_struct(binary: BinaryFile) -> datetime | None:
    """The C ``struct tm`` at byte 160 (seconds, minutes, ... years since 1900)."""
    second, minute, hour, day, month, year = binary.unpack("6h", 160, "the acquisition time")
    try:
        return datetime(
            year + 1900 if year < 1900 else year, month + 1, day, hour, minute, min(second, 59)
        )
    except ValueError:
        return None


def _bstr(binary: BinaryFile, offset: int, what: str) -> tuple[str, int]:
    """A length-prefixed string (int16 length, then bytes); returns it and the next offset."""
    (length,) = binary.unpack("h", offset, f"the length of {what}")
    if length < 0:
        raise binary.fail(offset, f"expected a non-negative length for {what}; got {length}")
    binary.require(offset + 2, length, what)
    return decode_text(binary.raw[offset + 2 : offset + 2 + length]), offset + 2 + length


def _skip_classifier(binary: BinaryFile, offset: int) -> int:
    """Version 6+ classifier data; returns the offset after it."""
    offset += 2  # y code, y model type
    for field in range(20):  # title ... reserved4
        _, offset = _bstr(binary, offset, f"classifier string {field + 1} of 20")
    (constituents,) = binary.unpack("H", offset, "the classifier constituent count")
    offset += 2
    if constituents == 0:
        offset += 2
    else:
        offset += 10  # SAFEARRAY descriptor
        for item in range(constituents):
            _, offset = _bstr(binary, offset, f"constituent {item + 1} name")
            _, offset = _bstr(binary, offset, f"constituent {item + 1} pass/fail")
            binary.require(offset, 92, f"constituent {item + 1} values")
            offset += 92  # 9 float64, int32, 2 float64
    return offset


def _skip_dependents(binary: BinaryFile, offset: int) -> int:
    """Version 7+ dependent variables; returns the offset after them."""
    offset += 2  # save-dependent-variables flag
    dependents = int(binary.unpack("h", offset, "the dependent variable count")[0])
    offset += 2
    if dependents <= 0:
        return offset + 4
    offset += 10
    for item in range(dependents):
        _, offset = _bstr(binary, offset, f"dependent variable {item + 1} label")
    offset += 10
    binary.require(offset, 4 * dependents, "the dependent variable values")
    return offset + 4 * dependents


def _calibration_series(binary: BinaryFile, offset: int, n_channels: int) -> list[str]:
    """Version 7+ calibration header; checks the series fit and returns their types."""
    (count,) = binary.unpack("B", offset, "the calibration series count")
    offset += 1
    kinds: list[str] = []
    for item in range(count):
        (kind,) = binary.unpack("b20sihh", offset, f"calibration header {item + 1}")[:1]
        kinds.append(_CALIBRATION_TYPES[kind] if 0 <= kind < 4 else "UNKNOWN")
        offset += 29
    binary.require(offset, count * n_channels * 8, f"{count} calibration series")
    return kinds


def _raw_kind(
    data_type: int, reference: NDArray[np.float64] | None, target: NDArray[np.float64]
) -> ScanKind:
    """What the stored target is: DN on every real file, whatever the header type says.

    Only a file without a reference whose header type is reflectance (values within +-3) or
    radiance is taken at its word.
    """
    if data_type == 1 and reference is None and bool(np.all(np.abs(target) <= 3.0)):
        return "reflectance"
    if data_type == 2 and reference is None:
        return "radiance"
    return "dn"


def read_asd(
    path: Path, *, asd_quantity: AsdQuantity = "reflectance", label: str | None = None
) -> RawSpectra:
    """Read one ASD ``.asd`` file.

    Args:
        path: The file.
        asd_quantity: ``"reflectance"`` computes target over white reference (each
            normalised for its integration time and SWIR gains), and fails on a file with
            no white reference; ``"raw"`` returns the target as stored, with its kind
            (``dn`` for instrument DN, else what the header's data type says).
        label: How messages and ``source`` name the file (default: the path).

    Returns:
        One spectrum on the wavelength axis in nm.

    Raises:
        SpecsoilError: Wrong magic, unknown data format, a truncated file, or reflectance
            asked of a file without a white reference; the message names the byte offset.
    """
    if asd_quantity not in ("reflectance", "raw"):
        raise SpecsoilError(f"asd_quantity must be 'reflectance' or 'raw'; got {asd_quantity!r}")
    binary = BinaryFile(path, label=label)
    version = _VERSIONS.get(binary.raw[:3])
    if version is None:
        raise binary.fail(
            0, f"expected an ASD version tag 'ASD' or 'as2'...'as8'; got {binary.raw[:3]!r}"
        )
    binary.require(0, _HEADER_BYTES, f"the {_HEADER_BYTES}-byte ASD header")
    (data_type,) = binary.unpack("B", 186, "the data type")
    (ref_time_t,) = binary.unpack("l", 187, "the reference time")
    start_nm, step_nm, data_format = binary.unpack("ffB", 191, "the wavelength axis")
    (n_channels,) = binary.unpack("H", 204, "the channel count")
    (integration_ms, _fore_optic, _dcc, _calibration, instrument_number) = binary.unpack(
        "LhhHH", 390, "the instrument settings"
    )
    dark_count, reference_count, sample_count, instrument_type = binary.unpack(
        "HHHB", 425, "the scan counts"
    )
    gains = binary.unpack("HHHHff", 436, "the SWIR gains and splice wavelengths")
    if data_format not in _DATA_FORMATS:
        raise binary.fail(
            199, f"expected data format 0 (float), 1 (int) or 2 (double); got {data_format}"
        )
    if n_channels == 0 or not (np.isfinite(start_nm) and np.isfinite(step_nm) and step_nm > 0):
        raise binary.fail(
            191,
            f"expected a wavelength axis (start, step > 0, channels > 0); got start "
            f"{start_nm}, step {step_nm}, {n_channels} channels",
        )
    dtype = _DATA_FORMATS[data_format]
    item_bytes = np.dtype(dtype).itemsize
    wavelengths = start_nm + step_nm * np.arange(n_channels, dtype=np.float64)
    target = binary.array(
        dtype, n_channels, _HEADER_BYTES, f"the target spectrum of {n_channels} values"
    )
    settings = DetectorSettings(float(integration_ms), *(float(value) for value in gains))

    offset = _HEADER_BYTES + n_channels * item_bytes
    reference: NDArray[np.float64] | None = None
    reference_flag = False
    reference_time: datetime | None = None
    if version >= 2:
        flag, reference_ole, _spectrum_ole = binary.unpack("Hdd", offset, "the reference header")
        if flag not in (0, 0xFFFF):
            raise binary.fail(
                offset, f"expected a reference flag 0x0000 or 0xFFFF; got {flag:#06x}"
            )
        reference_flag = flag == 0xFFFF
        reference_time = ole_date(reference_ole)
        _, offset = _bstr(binary, offset + 18, "the reference description")
        reference = binary.array(
            dtype, n_channels, offset, f"the white reference of {n_channels} values"
        )
        offset += n_channels * item_bytes
    calibrations: list[str] = []
    if version >= 6:
        offset = _skip_classifier(binary, offset)
    if version >= 7:
        offset = _skip_dependents(binary, offset)
        calibrations = _calibration_series(binary, offset, n_channels)

    has_white_reference = reference is not None and reference_flag and bool(np.any(reference > 0))
    header_type = _DATA_TYPES[data_type] if data_type < len(_DATA_TYPES) else f"code {data_type}"
    notes: list[str] = []
    kind: ScanKind
    if asd_quantity == "reflectance":
        if has_white_reference and reference is not None:
            target_n = normalised_dn(target, wavelengths, settings)
            # The format records one set of settings; RS3 takes a new white reference after
            # every optimisation, so the reference was taken at these same settings.
            reference_n = normalised_dn(reference, wavelengths, settings)
            values = np.full(n_channels, np.nan)
            np.divide(target_n, reference_n, out=values, where=reference_n > 0)
            kind = "reflectance"
            notes.append(
                "reflectance = target DN / white-reference DN, each normalised for VNIR "
                "integration time and SWIR gains"
            )
            if not np.all(reference_n > 0):
                dark = int(np.sum(~(reference_n > 0)))
                notes.append(f"{dark} channels have a white reference <= 0 and are NaN")
        elif reference is None and data_type == 1 and bool(np.all(np.abs(target) <= 3.0)):
            values, kind = target, "reflectance"  # a version-1 file saved as reflectance
            notes.append("the file stores reflectance itself (version 1, no white reference)")
        else:
            where = _HEADER_BYTES + n_channels * item_bytes
            why = "has no reference section" if reference is None else "has its reference flag off"
            stored = _raw_kind(data_type, reference, target)
            raise binary.fail(
                where,
                f"reflectance was asked but the file {why}, so it holds only the target's "
                f"{stored} (header data type: {header_type}); expected a white reference. "
                "Export reflectance with the instrument software (RS3, ViewSpec), or read "
                f"the {stored} as stored with asd_quantity='raw' (it cannot become absorbance "
                "for a model)",
            )
    else:
        values = target
        kind = _raw_kind(data_type, reference, target)
        notes.append(f"values as stored ({kind}); header data type: {header_type}")
        if kind == "dn" and data_type == 2:
            notes.append("radiance needs the calibration series, which are not applied here")
    acquired = _tm_struct(binary)
    row = {
        "source_file": binary.label,
        "spectrum_name": path.stem,
        "instrument": _INSTRUMENTS.get(instrument_type, f"ASD instrument type {instrument_type}"),
        "serial_number": str(instrument_number),
        "acquired": iso(acquired),
        "file_format": f"asd v{version}",
        "asd_data_type": header_type,
        "integration_time_ms": settings.integration_time_ms,
        "swir1_gain": settings.swir1_gain,
        "swir2_gain": settings.swir2_gain,
        "swir1_offset": settings.swir1_offset,
        "swir2_offset": settings.swir2_offset,
        "splice1_nm": settings.splice1_nm,
        "splice2_nm": settings.splice2_nm,
        "dark_count": dark_count,
        "reference_count": reference_count,
        "sample_count": sample_count,
        "white_reference": has_white_reference,
        "reference_time": (iso(reference_time) or _time_t(ref_time_t))
        if has_white_reference
        else None,
        "calibration_series": ",".join(calibrations) or None,
        "comments": decode_text(binary.raw[3:160].split(b"\0", 1)[0]) or None,
    }
    return RawSpectra(
        values=values.reshape(1, -1).astype(np.float64),
        axis=wavelengths,
        axis_unit="nm",
        kind=kind,
        metadata=pd.DataFrame([row]),
        source=binary.label,
        notes=tuple(notes),
    )


def _time_t(seconds: int) -> str | None:
    """A C ``time_t`` as ISO text, or None when unset."""
    if seconds <= 0:
        return None
    return iso(datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None))


class AsdReader:
    """Reader for ASD FieldSpec ``.asd`` files (versions 1-8).

    Args:
        asd_quantity: ``"reflectance"`` (default) or ``"raw"``; see :func:`read_asd`.
    """

    name: str = "asd"
    description: str = "ASD FieldSpec binary (.asd), file versions 1-8"
    suffixes: tuple[str, ...] = (".asd",)

    def __init__(self, asd_quantity: AsdQuantity = "reflectance") -> None:
        self.asd_quantity = asd_quantity

    def sniff(self, head: bytes, path: Path) -> bool:
        """True for an ASD version tag followed by a plausible wavelength axis and format.

        The tag alone is too weak (``ASD`` also starts text exports), so the header's axis,
        data format and channel count must make sense too.
        """
        if head[:3] not in _VERSIONS or len(head) < 206:
            return False
        start, step, data_format = struct.unpack_from("<ffB", head, 191)
        (channels,) = struct.unpack_from("<H", head, 204)
        return (
            bool(np.isfinite(start) and np.isfinite(step) and 0 < step <= 100)
            and data_format in _DATA_FORMATS
            and channels > 0
        )

    def read(self, path: Path) -> RawSpectra:
        """Read ``path`` in this reader's ``asd_quantity``."""
        return read_asd(path, asd_quantity=self.asd_quantity)


register_reader(AsdReader())
