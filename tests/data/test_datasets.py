"""The bundled datasets: registry, shapes, kinds, values and shipped attribution files."""

from __future__ import annotations

import csv
import gzip
from importlib import resources

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from specsoil import SpecsoilError
from specsoil.data import DEFAULT_DATASET, DatasetInfo, list_datasets, load_dataset

EXPECTED = {
    # name: (shape, kind, first nm, last nm, step nm, targets, split column)
    "geeves": (
        (391, 2151),
        "reflectance",
        350,
        2500,
        1,
        ("clay_pct", "silt_pct", "sand_pct", "total_carbon_pct"),
        None,
    ),
    "nirsoil": (
        (825, 700),
        "absorbance",
        1100,
        2498,
        2,
        ("N_total_g_kg", "C_iso_pct", "CEC_meq_100g"),
        "train",
    ),
}


def read_raw(name: str, file: str) -> tuple[list[str], list[list[str]]]:
    folder = resources.files("specsoil.data").joinpath("datasets", name)
    with resources.as_file(folder.joinpath(file)) as path, gzip.open(path, "rt") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


class TestListDatasets:
    def test_names_and_default(self):
        names = [info.name for info in list_datasets()]
        assert names == ["geeves", "nirsoil"]
        assert names[0] == DEFAULT_DATASET

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_info(self, name):
        info = {i.name: i for i in list_datasets()}[name]
        assert isinstance(info, DatasetInfo)
        shape, kind, first, last, step, targets, split = EXPECTED[name]
        assert info.n_samples == shape[0]
        assert (info.wavelength_min, info.wavelength_max, info.wavelength_step) == (
            first,
            last,
            step,
        )
        assert (info.spectra_kind, info.targets, info.split_column) == (kind, targets, split)
        assert info.title
        assert info.description
        assert info.source
        assert "MIT" in info.licence
        assert info.citation


class TestLoadDataset:
    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_shape_kind_grid_and_targets(self, name):
        table = load_dataset(name)
        shape, kind, first, last, step, targets, _ = EXPECTED[name]
        assert table.X.shape == shape
        assert table.X.dtype == np.float32
        assert (table.spectra_kind, table.kind_detected) == (kind, False)
        assert table.source == f"dataset:{name}"
        assert_array_equal(table.wavelengths, np.arange(first, last + step, step))
        assert set(targets) <= set(table.numeric_columns())
        assert np.isfinite(table.X).all()

    def test_geeves_values_are_log10_of_the_file(self):
        header, rows = read_raw("geeves", "geeves_visnir.csv.gz")
        reflectance = np.array([row[5:] for row in rows], dtype=np.float64)
        table = load_dataset("geeves")
        assert_allclose(table.X, np.log(1 / reflectance) / np.log(10), rtol=1e-6, atol=1e-7)
        assert table.metadata["sample_id"].tolist() == [int(row[0]) for row in rows]
        assert header[5] == "350"

    def test_nirsoil_split_and_missing_targets(self):
        table = load_dataset("nirsoil")
        assert table.metadata["train"].value_counts().to_dict() == {1: 618, 0: 207}
        y = table.targets(["N_total_g_kg", "C_iso_pct", "CEC_meq_100g"])
        assert (~np.isnan(y)).sum(axis=0).tolist() == [645, 732, 447]
        _, rows = read_raw("nirsoil", "nirsoil.csv.gz")
        absorbance = np.array([row[5:] for row in rows], dtype=np.float64)
        assert_allclose(table.X, absorbance, rtol=1e-6)

    def test_each_load_is_a_copy(self):
        first = load_dataset("geeves")
        first.X[:] = 0
        first.metadata.loc[0, "clay_pct"] = -1
        second = load_dataset("geeves")
        assert second.X[0, 0] != 0
        assert second.metadata.loc[0, "clay_pct"] != -1

    def test_default(self):
        assert load_dataset().source == f"dataset:{DEFAULT_DATASET}"

    def test_unknown_name_lists_the_datasets(self):
        with pytest.raises(SpecsoilError, match=r"unknown dataset 'lucas'.*'geeves', 'nirsoil'"):
            load_dataset("lucas")


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("file", ["LICENSE", "README.md"])
def test_attribution_ships_in_the_package(name, file):
    text = resources.files("specsoil.data").joinpath("datasets", name, file).read_text("utf-8")
    assert "MIT" in text
