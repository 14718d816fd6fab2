"""Spectra as an instrument file holds them, and the registry of readers for those files.

A vendor file (ASD, OPUS, SVC, Spectral Evolution, JCAMP-DX, SPC, SPA, ENVI library) holds one
or more spectra on one axis, in the instrument's own quantity: reflectance, radiance, raw DN,
transmittance, counts. A :class:`Reader` turns one file into :class:`RawSpectra` and says what it
decided (which block, which overlap side) in ``notes``. Converting to the absorbance that models
use is a separate, explicit step, so a radiance or DN file is never
passed off as reflectance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError

# What the values are, as the file holds them. Only the first three can become absorbance.
ScanKind = Literal[
    "reflectance",
    "reflectance-percent",
    "absorbance",
    "transmittance",
    "transmittance-percent",
    "kubelka-munk",
    "radiance",
    "dn",
    "counts",
    "unknown",
]
# The unit of the spectral axis as stored. Raman shift cannot become a wavelength without the
# laser line, so it is kept apart from wavenumber.
AxisUnit = Literal["nm", "um", "cm-1", "raman-shift-cm-1", "index"]

MODELLABLE_KINDS = ("reflectance", "reflectance-percent", "absorbance")

# Metadata columns every reader fills where the file has the value (None otherwise).
SCAN_METADATA_COLUMNS = (
    "source_file",
    "spectrum_name",
    "instrument",
    "serial_number",
    "acquired",
    "file_format",
)


@dataclass(frozen=True)
class RawSpectra:
    """Spectra of one file on one axis, in the quantity and axis unit the file stores.

    Attributes:
        values: Shape (n_spectra, n_points), float64, in the file's order along the axis.
        axis: Shape (n_points,), in ``axis_unit``, in the file's order (it may descend, as
            wavenumbers usually do).
        axis_unit: Unit of ``axis``.
        kind: What ``values`` are.
        metadata: One row per spectrum; holds at least :data:`SCAN_METADATA_COLUMNS`
            (``acquired`` as an ISO 8601 string or None).
        source: The file read (a path string; ``zip:member`` inside an archive).
        notes: Sentences saying what the reader decided, shown to the user.
    """

    values: NDArray[np.float64]
    axis: NDArray[np.float64]
    axis_unit: AxisUnit
    kind: ScanKind
    metadata: pd.DataFrame
    source: str
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != self.axis.shape[0]:
            raise ValueError(
                f"values must be (n_spectra, {self.axis.shape[0]}); got {self.values.shape}"
            )
        if len(self.metadata) != self.values.shape[0]:
            raise ValueError(
                f"metadata has {len(self.metadata)} rows for {self.values.shape[0]} spectra"
            )

    @property
    def n_spectra(self) -> int:
        """Number of spectra in the file."""
        return int(self.values.shape[0])

    def wavelengths_nm(self) -> NDArray[np.float64]:
        """The axis as wavelengths in nm (same order as ``axis``).

        Raises:
            SpecsoilError: If the axis is a Raman shift or a bare index, which have no
                wavelength.
        """
        if self.axis_unit == "nm":
            return self.axis.astype(np.float64, copy=True)
        if self.axis_unit == "um":
            return self.axis * 1000.0
        if self.axis_unit == "cm-1":
            if np.any(self.axis <= 0):
                raise SpecsoilError(
                    f"{self.source}: wavenumber axis has values <= 0 cm-1; expected positive"
                )
            return 1e7 / self.axis
        raise SpecsoilError(
            f"{self.source}: the spectral axis is {self.axis_unit!r}, which has no wavelength; "
            "expected nm, um or cm-1"
        )


@runtime_checkable
class Reader(Protocol):
    """Reads one instrument file format.

    Attributes:
        name: Short format name (``"asd"``, ``"opus"``), used in messages and ``--format``.
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

    def read(self, path: Path) -> RawSpectra:
        """Read the file; raise SpecsoilError naming the file and byte offset or line."""
        ...


_READERS: dict[str, Reader] = {}
SNIFF_BYTES = 4096


def register_reader(reader: Reader) -> Reader:
    """Add a reader to the registry (one registration per format module)."""
    if reader.name in _READERS:
        raise ValueError(f"reader {reader.name!r} is already registered")
    _READERS[reader.name] = reader
    return reader


def list_readers() -> list[Reader]:
    """The registered readers, by name."""
    return [_READERS[name] for name in sorted(_READERS)]


def get_reader(name: str) -> Reader:
    """The reader registered as ``name``, or a clear error listing the others."""
    if name not in _READERS:
        raise SpecsoilError(f"unknown file format {name!r}; available: {sorted(_READERS)}")
    return _READERS[name]


def reader_for(path: Path, head: bytes | None = None) -> Reader | None:
    """The reader for ``path``: content sniffing decides, the suffix only orders the tries."""
    if head is None:
        with path.open("rb") as stream:
            head = stream.read(SNIFF_BYTES)
    suffix = path.suffix.lower()
    ordered = sorted(_READERS.values(), key=lambda reader: suffix not in reader.suffixes)
    for reader in ordered:
        if reader.sniff(head, path):
            return reader
    return None


def scan_metadata(records: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """One metadata row per spectrum: :data:`SCAN_METADATA_COLUMNS` first, then any others.

    Args:
        records: One dict per spectrum; keys missing from a record become None.

    Returns:
        The frame, with every column of :data:`SCAN_METADATA_COLUMNS` present.
    """
    extra = [key for record in records for key in record if key not in SCAN_METADATA_COLUMNS]
    columns = [*SCAN_METADATA_COLUMNS, *dict.fromkeys(extra)]
    return pd.DataFrame(
        [{name: record.get(name) for name in columns} for record in records], columns=columns
    )


def read_scan(path: str | Path, *, format: str | None = None) -> RawSpectra:
    """Read one instrument file with the reader its content (or ``format``) names.

    Args:
        path: The file.
        format: A registered reader name; by default the reader is chosen by sniffing.

    Returns:
        The file's spectra as stored.

    Raises:
        SpecsoilError: If the file is missing, no reader recognises it, or it is malformed.
    """
    file = Path(path)
    if not file.is_file():
        raise SpecsoilError(f"{file}: no such file")
    if format is not None:
        return get_reader(format).read(file)
    reader = reader_for(file)
    if reader is None:
        names = ", ".join(
            f"{r.name} ({' '.join(r.suffixes) or 'by content'})" for r in list_readers()
        )
        raise SpecsoilError(
            f"{file}: not a spectrometer file any reader recognises; formats read: {names}"
        )
    return reader.read(file)
