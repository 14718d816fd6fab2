"""The one reader registry: scan, table and image readers, lookup by name and by content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specsoil.data._registry as registry
from specsoil._errors import SpecsoilError
from specsoil.data import (
    FORMAT_ROLES,
    ImageReader,
    Reader,
    TableReader,
    get_reader,
    get_scan_reader,
    get_table_reader,
    image_reader_for,
    list_readers,
    read_spectra,
    reader_for,
    reader_role,
    register_reader,
    table_reader_for,
)
from specsoil.data._tables import CsvSource

SCAN_FORMATS = {"asd", "envi-sli", "jcamp", "opus", "sed", "sig", "spa", "spc"}


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test are undone after it."""
    monkeypatch.setattr(registry, "_READERS", dict(registry._READERS))
    monkeypatch.setattr(registry, "_ROLES", dict(registry._ROLES))


def test_every_format_is_listed_with_its_role():
    roles = {reader.name: reader_role(reader) for reader in list_readers()}
    assert {name for name, role in roles.items() if role == "scan"} == SCAN_FORMATS
    assert {name for name, role in roles.items() if role == "table"} == {"csv", "parquet"}
    assert {name for name, role in roles.items() if role == "image"} == {"envi-image", "geotiff"}
    for role in FORMAT_ROLES:
        assert all(reader_role(r) == role for r in list_readers(role))
    assert isinstance(get_reader("asd"), Reader)
    assert isinstance(get_reader("csv"), TableReader)
    assert isinstance(get_reader("geotiff"), ImageReader)


def test_unknown_and_wrong_role_names_list_the_formats():
    with pytest.raises(SpecsoilError, match=r"unknown file format 'xls'; formats read: asd \(scan"):
        get_reader("xls")
    with pytest.raises(SpecsoilError, match=r"format 'csv' reads table files, not scan files"):
        get_scan_reader("csv")
    with pytest.raises(SpecsoilError, match=r"'asd' reads scan files.*table formats: csv, parquet"):
        get_table_reader("asd")


def test_content_decides_within_a_role(tmp_path):
    table = tmp_path / "t.dat"
    table.write_text("id,500,600\na,0.2,0.3\n")
    assert reader_for(table) is None  # not a scan file
    reader = table_reader_for(table)
    assert reader is not None
    assert reader.name == "csv"
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "t.csv"  # a Parquet file misnamed .csv: its signature wins
    pq.write_table(pa.table({"id": ["a"], "500": [0.2], "600": [0.3]}), parquet)
    found = table_reader_for(parquet)
    assert found is not None
    assert found.name == "parquet"
    tiff = tmp_path / "cube.bin"
    tiff.write_bytes(b"II*\x00" + bytes(60))
    image = image_reader_for(tiff)
    assert image is not None
    assert image.name == "geotiff"


def test_registration_checks_name_and_shape(clean_registry):
    with pytest.raises(ValueError, match="'csv' is already registered"):
        register_reader(get_table_reader("csv"))
    with pytest.raises(TypeError, match="is not a reader"):
        register_reader(object())  # type: ignore[type-var]


class SemicolonTableReader:
    """A new table format, one class plus one registration: ``.ssv`` files, ';' separated."""

    name = "ssv"
    description = "semicolon table"
    suffixes: tuple[str, ...] = (".ssv",)

    def sniff(self, head: bytes, path: Path) -> bool:
        return path.suffix == ".ssv"

    def open_table(self, path: Path, *, batch_rows: int, spectral_columns: str | None):
        return CsvSource(path, None, batch_rows, spectral_columns=spectral_columns)


def test_a_new_table_format_is_one_registration(clean_registry, tmp_path):
    register_reader(SemicolonTableReader())
    assert "ssv" in [reader.name for reader in list_readers("table")]
    path = tmp_path / "t.ssv"
    path.write_text("id;500;600;700\na;0.2;0.4;0.5\nb;0.3;0.5;0.6\n")
    found = table_reader_for(path)
    assert found is not None
    assert found.name == "ssv"
    table = read_spectra(path, spectra_kind="reflectance")
    np.testing.assert_allclose(table.X[0], -np.log10([0.2, 0.4, 0.5]), rtol=1e-6)
    # Forcing a format: a CSV read as Parquet fails the Parquet way.
    with pytest.raises(SpecsoilError, match="not a readable Parquet file"):
        read_spectra(path, format="parquet")
