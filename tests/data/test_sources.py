"""read_data: one dispatch for every data source (bundled, URLs, scan files, tables)."""

from __future__ import annotations

import numpy as np
import pytest

import specsoil.data._sources as sources
from specsoil._errors import SpecsoilError
from specsoil.data import (
    DataOptions,
    DataRead,
    ScanOptions,
    load_dataset,
    read_data,
    register_data_source,
)


@pytest.fixture
def table_csv(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,clay,500,600,700\na,1,0.2,0.4,0.5\nb,2,0.3,0.5,0.6\n")
    return path


@pytest.fixture
def clean_sources(monkeypatch):
    monkeypatch.setattr(sources, "_SOURCES", {})


def test_table_and_bundled_dataset(table_csv):
    read = read_data(table_csv)
    assert read.scan_report is None
    assert read.dataset is None
    assert read.table.n_samples == 2
    assert read.table.spectra_kind == "reflectance"
    bundled = read_data("nirsoil")
    assert bundled.dataset is not None
    assert bundled.dataset.name == "nirsoil"
    np.testing.assert_array_equal(bundled.table.X, load_dataset("nirsoil").X)
    default = read_data(None)
    assert default.dataset is not None
    assert default.dataset.targets


def test_a_file_named_like_a_dataset_is_the_file(tmp_path, table_csv, monkeypatch):
    (tmp_path / "nirsoil").write_bytes(table_csv.read_bytes())
    monkeypatch.chdir(tmp_path)
    read = read_data("nirsoil")
    assert read.dataset is None
    assert read.table.n_samples == 2


def test_url_sources_are_a_hook(clean_sources, tmp_path, table_csv):
    seen: list[tuple[str, DataOptions]] = []

    def open_library(url: str, options: DataOptions) -> DataRead:
        seen.append((url, options))
        return DataRead(read_data(table_csv).table, notes=("from the library",))

    with pytest.raises(SpecsoilError, match=r"no data source reads sqlite:// URLs; known: none"):
        read_data("sqlite:///lib.db")
    register_data_source("sqlite", open_library)
    read = read_data("sqlite:///lib.db", drop_invalid=True, scans=ScanOptions(replicates="median"))
    assert read.notes == ("from the library",)
    url, options = seen[0]
    assert url == "sqlite:///lib.db"
    assert options.drop_invalid
    assert options.scans.replicates == "median"
    with pytest.raises(ValueError, match="already registered"):
        register_data_source("SQLite", open_library)


def test_options_that_do_not_apply_are_refused(table_csv):
    with pytest.raises(SpecsoilError, match=r"t\.csv: --lab, .* apply to scan files"):
        read_data(table_csv, scans=ScanOptions(lab="lab.csv"))
    with pytest.raises(SpecsoilError, match="nirsoil: is a bundled dataset"):
        read_data("nirsoil", format="csv")
    with pytest.raises(SpecsoilError, match="format 'geotiff' reads image cubes"):
        read_data(table_csv, format="geotiff")
    with pytest.raises(SpecsoilError, match="unknown file format 'xls'"):
        read_data(table_csv, format="xls")
