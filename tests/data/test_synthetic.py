"""Synthetic LUCAS-layout tables: layout, soil-like properties, spectral features, labelling."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_array_equal
from sklearn.cross_decomposition import PLSRegression
from sklearn.metrics import r2_score

from specsoil import SpecsoilError
from specsoil.data import (
    LUCAS_PROPERTIES,
    SYNTHETIC_LABEL,
    detect_spectra_kind,
    is_synthetic,
    lucas_wavelengths,
    make_synthetic,
    read_spectra,
    write_synthetic,
)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_synthetic(2000, seed=3)


def spectra(frame: pd.DataFrame) -> np.ndarray:
    return frame[[c for c in frame.columns if c.startswith("spc.")]].to_numpy(np.float64)


def band_depth(frame: pd.DataFrame, centre: float, left: float, right: float) -> np.ndarray:
    """Absorbance at ``centre`` above the straight line between the two shoulders."""
    grid = lucas_wavelengths()
    X = spectra(frame)
    at = {w: X[:, int(np.argmin(np.abs(grid - w)))] for w in (left, centre, right)}
    weight = (centre - left) / (right - left)
    return at[centre] - ((1 - weight) * at[left] + weight * at[right])


def test_layout_is_lucas_2009_topsoil(table):
    names = list(table.columns)
    assert names[:3] == ["POINT_ID", "GPS_LAT", "GPS_LONG"]
    assert names[3:15] == list(LUCAS_PROPERTIES)
    assert names[15] == "source"
    assert names[16:19] == ["spc.400", "spc.400.5", "spc.401"]
    assert names[-1] == "spc.2499.5"
    assert len(names) == 16 + 4200
    assert table["POINT_ID"].iloc[0] == "SYN000001"
    assert table["POINT_ID"].iloc[-1] == "SYN002000"
    assert table["POINT_ID"].is_unique
    assert (table["source"] == SYNTHETIC_LABEL).all()
    assert "synthetic" in SYNTHETIC_LABEL
    assert table["GPS_LAT"].between(34, 72).all()
    assert table["GPS_LONG"].between(-11, 35).all()
    assert table["spc.400"].dtype == np.float32


def test_properties_are_plausible_and_correlated_as_in_soils(table):
    texture = table["clay"] + table["silt"] + table["sand"]
    assert_array_equal(texture, 100.0)
    for name in ("clay", "silt", "sand", "coarse"):
        assert table[name].between(0, 100).all(), name
    assert table["pH.in.H2O"].between(3.5, 9.5).all()
    assert (table["OC"] > 0).all()
    assert table["OC"].median() == pytest.approx(18, rel=0.3)
    # Skewed like real lab values: the mean well above the median.
    for name in ("OC", "P", "K"):
        assert table[name].mean() > 1.1 * table[name].median(), name
    # C:N near 10, and N follows OC closely.
    assert (table["OC"] / table["N"]).median() == pytest.approx(10, rel=0.1)
    corr = table[list(LUCAS_PROPERTIES)].corr()
    assert corr.loc["OC", "N"] > 0.9
    assert corr.loc["clay", "CEC"] > 0.3
    assert corr.loc["OC", "CEC"] > 0.5
    assert corr.loc["clay", "sand"] < -0.3
    # Carbonate: zero in most soils, present only in alkaline ones.
    calcareous = table["CaCO3"] > 0
    assert 0.05 < calcareous.mean() < 0.5
    assert table.loc[calcareous, "pH.in.H2O"].min() > 6.0
    assert table.loc[calcareous, "pH.in.H2O"].mean() > table.loc[~calcareous, "pH.in.H2O"].mean()
    difference = table["pH.in.H2O"] - table["pH.in.CaCl2"]
    assert difference.mean() == pytest.approx(0.5, abs=0.05)


def test_absorption_features_follow_the_properties(table):
    X = spectra(table)
    kind, _ = detect_spectra_kind(X, lucas_wavelengths())
    assert kind == "absorbance"
    assert 0 < X.min()
    assert X.max() < 3
    # Al-OH band of clay minerals near 2205 nm deepens with clay.
    al_oh = band_depth(table, 2205, 2120, 2260)
    assert np.corrcoef(al_oh, table["clay"])[0, 1] > 0.7
    # Carbonate band near 2335 nm, only in calcareous soils.
    carbonate = band_depth(table, 2335, 2280, 2390)
    assert np.corrcoef(carbonate, table["CaCO3"])[0, 1] > 0.7
    # Water bands: the mean spectrum peaks at 1415 and 1915 nm.
    assert band_depth(table, 1915, 1840, 2050).mean() > 0.01
    assert band_depth(table, 1415, 1350, 1500).mean() > 0.005
    # Organic matter darkens the soil: higher visible absorbance with more OC.
    assert np.corrcoef(X[:, 200], np.log(table["OC"]))[0, 1] > 0.5


def test_plsr_predicts_clay_and_oc_well_but_not_perfectly(table):
    X = spectra(table).reshape(len(table), 210, 20).mean(axis=2)  # 10 nm bands
    train = np.arange(len(table)) < 1500
    for name in ("clay", "OC"):
        y = table[name].to_numpy()
        model = PLSRegression(n_components=12, scale=False).fit(X[train], y[train])
        r2 = r2_score(y[~train], model.predict(X[~train]).ravel())
        assert 0.7 < r2 < 0.99, (name, r2)


def test_same_seed_same_table_whatever_the_chunking(tmp_path):
    first = make_synthetic(700, seed=5)
    assert_array_equal(spectra(first), spectra(make_synthetic(700, seed=5)))
    assert not np.array_equal(spectra(first), spectra(make_synthetic(700, seed=6)))
    # The first rows do not depend on how many rows are asked for.
    assert_array_equal(spectra(make_synthetic(10, seed=5)), spectra(first)[:10])
    path = write_synthetic(tmp_path / "t.parquet", 700, seed=5, row_group_size=300)
    back = pq.read_table(path).to_pandas()
    pd.testing.assert_frame_equal(back, first)


def test_parts_hold_the_same_rows_in_name_order(tmp_path):
    out = write_synthetic(tmp_path / "parts", 250, row_group_size=50, row_groups_per_file=2)
    names = sorted(p.name for p in out.glob("*.parquet"))
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    groups = [pq.ParquetFile(out / name).metadata.num_row_groups for name in names]
    assert groups == [2, 2, 1]
    assert all(is_synthetic(out / name) for name in names)
    back = pd.concat([pq.read_table(out / name).to_pandas() for name in names], ignore_index=True)
    pd.testing.assert_frame_equal(back, make_synthetic(250))


def test_parquet_is_labelled_synthetic_and_read_as_absorbance(tmp_path):
    path = write_synthetic(tmp_path / "syn.parquet", 250, row_group_size=100)
    file = pq.ParquetFile(path)
    assert file.metadata.num_row_groups == 3
    assert [file.metadata.row_group(i).num_rows for i in range(3)] == [100, 100, 50]
    metadata = file.schema_arrow.metadata
    assert metadata[b"specsoil.synthetic"] == b"true"
    assert b"not real soil data" in metadata[b"specsoil.description"]
    assert is_synthetic(path)
    read = read_spectra(path)
    assert read.X.shape == (250, 4200)
    assert read.spectra_kind == "absorbance"
    assert not read.kind_detected
    assert "synthetic" in read.kind_reason
    assert (read.metadata["source"] == SYNTHETIC_LABEL).all()
    assert_array_equal(read.wavelengths, lucas_wavelengths())


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_csv_round_trips(tmp_path, suffix):
    path = write_synthetic(tmp_path / f"syn{suffix}", 60, seed=2, row_group_size=25)
    if suffix.endswith(".gz"):
        with gzip.open(path) as handle:
            assert handle.read(10).startswith(b'"POINT_ID"')
    read = read_spectra(path)
    expected = make_synthetic(60, seed=2)
    assert_array_equal(read.X, spectra(expected).astype(np.float32))
    assert read.spectra_kind == "absorbance"
    assert_array_equal(read.metadata["OC"], expected["OC"])
    assert (read.metadata["source"] == SYNTHETIC_LABEL).all()
    assert not is_synthetic(path)  # CSV carries the label per row only


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(SpecsoilError, match="n must be a positive integer"):
        make_synthetic(0)
    with pytest.raises(SpecsoilError, match="row_group_size must be a positive integer"):
        write_synthetic(tmp_path / "a.parquet", 10, row_group_size=0)
    with pytest.raises(SpecsoilError, match=r"a\.xlsx: unknown output format"):
        write_synthetic(tmp_path / "a.xlsx", 10)
    with pytest.raises(SpecsoilError, match="row_groups_per_file must be a positive integer"):
        write_synthetic(tmp_path / "parts", 10, row_groups_per_file=0)
    with pytest.raises(SpecsoilError, match="parts are written as Parquet"):
        write_synthetic(tmp_path / "parts.csv", 10, row_groups_per_file=1)
    assert not (tmp_path / "a.parquet").exists()
    assert list(tmp_path.iterdir()) == []
