"""Reading spectra tables, instrument files and scan folders, and the bundled datasets."""

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
from specsoil.data._scan_folder import (
    REPLICATE_RULES,
    ReplicateRule,
    ScanReport,
    ScanTable,
    default_sample_id,
    is_scan_source,
    read_lab_sheet,
    read_scans,
    scan_to_absorbance,
    write_spectra_parquet,
)
from specsoil.data._scans import (
    SCAN_METADATA_COLUMNS,
    RawSpectra,
    Reader,
    get_reader,
    list_readers,
    read_scan,
    reader_for,
    register_reader,
)
from specsoil.data._stream import ParquetSpectraSource
from specsoil.data._synthetic import (
    LUCAS_PROPERTIES,
    SYNTHETIC_LABEL,
    is_synthetic,
    lucas_wavelengths,
    make_synthetic,
    write_synthetic,
)
from specsoil.data._table import SPECTRA_KINDS, SpectraKind, SpectraTable

__all__ = [
    "DEFAULT_COORDINATE_COLUMNS",
    "DEFAULT_DATASET",
    "LUCAS_PROPERTIES",
    "REPLICATE_RULES",
    "SCAN_METADATA_COLUMNS",
    "SPECTRA_KINDS",
    "SYNTHETIC_LABEL",
    "WGS84",
    "Coordinates",
    "DatasetInfo",
    "ParquetSpectraSource",
    "RawSpectra",
    "Reader",
    "ReplicateRule",
    "ScanReport",
    "ScanTable",
    "SpectraKind",
    "SpectraTable",
    "convert_to_parquet",
    "default_sample_id",
    "detect_spectra_kind",
    "find_spectral_columns",
    "get_reader",
    "is_scan_source",
    "is_synthetic",
    "list_datasets",
    "list_readers",
    "load_dataset",
    "lucas_wavelengths",
    "make_synthetic",
    "normalise_crs",
    "read_coordinates",
    "read_lab_sheet",
    "read_scan",
    "read_scans",
    "read_spectra",
    "reader_for",
    "register_reader",
    "scan_to_absorbance",
    "to_absorbance",
    "utm_crs",
    "write_spectra_parquet",
    "write_synthetic",
]
