"""Reading spectra tables and the bundled datasets."""

from specsoil.data._columns import find_spectral_columns
from specsoil.data._coordinates import (
    DEFAULT_COORDINATE_COLUMNS,
    WGS84,
    Coordinates,
    normalise_crs,
    read_coordinates,
    utm_crs,
)
from specsoil.data._datasets import DEFAULT_DATASET, DatasetInfo, list_datasets, load_dataset
from specsoil.data._kinds import detect_spectra_kind, to_absorbance
from specsoil.data._readers import convert_to_parquet, read_spectra
from specsoil.data._stream import ParquetSpectraSource
from specsoil.data._synthetic import (
    LUCAS_PROPERTIES,
    SYNTHETIC_LABEL,
    is_synthetic,
    lucas_wavelengths,
    make_synthetic,
    write_synthetic,
)
from specsoil.data._table import ID_COLUMNS, SPECTRA_KINDS, SpectraKind, SpectraTable
from specsoil.data._writing import write_parquet

__all__ = [
    "DEFAULT_COORDINATE_COLUMNS",
    "DEFAULT_DATASET",
    "ID_COLUMNS",
    "LUCAS_PROPERTIES",
    "SPECTRA_KINDS",
    "SYNTHETIC_LABEL",
    "WGS84",
    "Coordinates",
    "DatasetInfo",
    "ParquetSpectraSource",
    "SpectraKind",
    "SpectraTable",
    "convert_to_parquet",
    "detect_spectra_kind",
    "find_spectral_columns",
    "is_synthetic",
    "list_datasets",
    "load_dataset",
    "lucas_wavelengths",
    "make_synthetic",
    "normalise_crs",
    "read_coordinates",
    "read_spectra",
    "to_absorbance",
    "utm_crs",
    "write_parquet",
    "write_synthetic",
]
