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
from specsoil.data._table import (
    CENSORED_POLICIES,
    MISSING_LAB_VALUES,
    SPECTRA_KINDS,
    CensoredPolicy,
    LabValues,
    SpectraKind,
    SpectraTable,
    parse_lab_values,
)

__all__ = [
    "CENSORED_POLICIES",
    "DEFAULT_COORDINATE_COLUMNS",
    "DEFAULT_DATASET",
    "LUCAS_PROPERTIES",
    "MISSING_LAB_VALUES",
    "SPECTRA_KINDS",
    "SYNTHETIC_LABEL",
    "WGS84",
    "CensoredPolicy",
    "Coordinates",
    "DatasetInfo",
    "LabValues",
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
    "parse_lab_values",
    "read_coordinates",
    "read_spectra",
    "to_absorbance",
    "utm_crs",
    "write_synthetic",
]
