"""Reading spectra tables and the bundled datasets."""

from specsoil.data._table import SPECTRA_KINDS, SpectraKind, SpectraTable

__all__ = ["SPECTRA_KINDS", "SpectraKind", "SpectraTable"]
