"""Spectra as an instrument file holds them (read by the scan readers of ``_registry``).

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
from typing import Literal

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
