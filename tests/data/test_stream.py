"""ParquetSpectraSource: row groups as tables, targets alone, samples, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from specsoil import SpecsoilError
from specsoil.data import (
    ParquetSpectraSource,
    lucas_wavelengths,
    read_spectra,
    write_synthetic,
)

TARGETS = ["clay", "OC"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """1,000 synthetic rows in four row groups of 250, and the table read_spectra reads."""
    path = tmp_path_factory.mktemp("stream") / "syn.parquet"
    write_synthetic(path, 1000, seed=4, row_group_size=250)
    return path, read_spectra(path)


def write_parquet(path, columns, row_group_size):
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def reflectance_columns(rows, *, bands=40, seed=0):
    """Reflectance with a water band that dips at 1915 nm, on a 1800-2190 nm grid."""
    rng = np.random.default_rng(seed)
    grid = 1800.0 + 10.0 * np.arange(bands)
    dip = 0.1 * np.exp(-0.5 * ((grid - 1915) / 25) ** 2)
    values = (rng.uniform(0.3, 0.5, (rows, 1)) - dip).astype(np.float32)
    columns = {"id": [f"s{i}" for i in range(rows)], "y": rng.normal(size=rows)}
    columns.update({f"{w:g}": values[:, j] for j, w in enumerate(grid)})
    return columns, values


def test_describes_the_file_without_reading_spectra(synthetic):
    path, _ = synthetic
    source = ParquetSpectraSource(path, targets=TARGETS)
    assert source.n_rows == 1000
    assert source.n_row_groups == 4
    assert_array_equal(source.row_group_offsets, [0, 250, 500, 750])
    assert_array_equal(source.wavelengths, lucas_wavelengths())
    assert source.targets == TARGETS
    assert source.synthetic
    assert source.spectra_kind == "absorbance"
    assert not source.kind_detected
    assert "synthetic" in source.kind_reason
    assert "synthetic" in repr(source)


def test_row_groups_come_back_as_tables_in_the_order_asked(synthetic):
    path, whole = synthetic
    source = ParquetSpectraSource(path, targets=TARGETS)
    tables = list(source.iter_tables([2, 0]))
    assert [t.n_samples for t in tables] == [250, 250]
    assert_array_equal(tables[0].X, whole.X[500:750])
    assert_array_equal(tables[1].X, whole.X[:250])
    assert tables[0].X.dtype == np.float32
    assert tables[0].metadata.index.tolist() == list(range(250))
    assert_array_equal(tables[0].targets(TARGETS), whole.targets(TARGETS)[500:750])
    assert tables[0].sample_ids.iloc[0] == "SYN000501"
    assert "synthetic" in tables[0].kind_reason


def test_targets_are_read_without_the_spectra(synthetic, monkeypatch):
    path, whole = synthetic
    source = ParquetSpectraSource(path, targets=TARGETS)
    read = pq.ParquetFile.read
    asked = []

    def spy(self, *args, columns=None, **kwargs):
        asked.append(list(columns))
        return read(self, *args, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", spy)
    assert_array_equal(source.read_targets(), whole.targets(TARGETS))
    assert asked == [TARGETS]


def test_iterating_reads_one_row_group_at_a_time(synthetic, monkeypatch):
    path, _ = synthetic
    source = ParquetSpectraSource(path, targets=TARGETS)
    calls = []
    read_row_group = pq.ParquetFile.read_row_group

    def spy(self, group, **kwargs):
        calls.append(group)
        return read_row_group(self, group, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    monkeypatch.setattr(pq.ParquetFile, "read", lambda *a, **k: pytest.fail("read whole file"))
    tables = source.iter_tables(range(4))
    next(tables)
    assert calls == [0]  # lazily: nothing read ahead
    list(tables)
    assert calls == [0, 1, 2, 3]


def test_a_directory_of_parts_reads_as_one_table(synthetic, tmp_path, monkeypatch):
    _path, whole = synthetic
    parts = write_synthetic(
        tmp_path / "parts", 1000, seed=4, row_group_size=250, row_groups_per_file=3
    )
    assert sorted(p.name for p in parts.glob("*.parquet")) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    source = ParquetSpectraSource(parts, targets=TARGETS)
    assert source.n_rows == 1000
    assert source.n_row_groups == 4
    assert len(source.parts) == 2
    assert source.synthetic
    assert_array_equal(source.read_targets(), whole.targets(TARGETS))
    source = ParquetSpectraSource(parts, targets=TARGETS)  # holds the first part only
    opened = []
    init = pq.ParquetFile.__init__

    def spy(self, path, **kwargs):
        opened.append(Path(path).name)
        init(self, path, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "__init__", spy)
    tables = list(source.iter_tables([3, 0, 1]))
    assert opened == ["part-00001.parquet", "part-00000.parquet"]  # one part open at a time
    assert_array_equal(tables[0].X, whole.X[750:])
    assert_array_equal(tables[2].X, whole.X[250:500])
    assert source.sample(10, seed=0).n_samples == 250
    # A part with other columns is refused.
    pq.write_table(pa.table({"a": [1.0]}), parts / "part-00002.parquet")
    with pytest.raises(SpecsoilError, match=r"part-00002\.parquet: its columns differ"):
        ParquetSpectraSource(parts, targets=TARGETS)


def test_sample_reads_whole_row_groups_up_to_n(synthetic):
    path, whole = synthetic
    source = ParquetSpectraSource(path, targets=TARGETS)
    sample = source.sample(300, seed=1)
    assert sample.n_samples == 500  # two row groups of 250
    assert_array_equal(source.sample(300, seed=1).X, sample.X)
    ids = sample.sample_ids.str[3:].astype(int).to_numpy() - 1
    assert_array_equal(sample.X, whole.X[ids])
    assert ids[0] % 250 == 0
    assert ids[250] % 250 == 0
    assert np.all(np.diff(ids[:250]) == 1)
    assert source.sample(10**6).n_samples == 1000
    with pytest.raises(SpecsoilError, match="sample size must be a positive integer"):
        source.sample(0)


def test_kind_is_detected_from_the_first_row_group_and_converted(tmp_path):
    columns, values = reflectance_columns(30)
    path = write_parquet(tmp_path / "r.parquet", columns, row_group_size=10)
    source = ParquetSpectraSource(path, targets=["y"])
    assert source.spectra_kind == "reflectance"
    assert source.kind_detected
    assert "first row group" in source.kind_reason
    assert not source.synthetic
    (table,) = source.iter_tables([1])
    assert_allclose(table.X, -np.log10(values[10:20]), rtol=1e-6)
    declared = ParquetSpectraSource(path, targets=["y"], spectra_kind="absorbance")
    assert_array_equal(next(declared.iter_tables([0])).X, values[:10])


def test_bad_spectral_value_names_the_data_row_of_the_file(tmp_path):
    columns, values = reflectance_columns(30)
    values[13, 5] = np.nan
    columns["1850"] = values[:, 5]
    path = write_parquet(tmp_path / "bad.parquet", columns, row_group_size=10)
    source = ParquetSpectraSource(path, targets=["y"], spectra_kind="reflectance")
    next(source.iter_tables([0]))  # the first row group is fine
    with pytest.raises(SpecsoilError, match=r"data row 14 \(row group 1\), column '1850': missing"):
        list(source.iter_tables([1]))
    values[13, 5] = 0.0
    columns["1850"] = values[:, 5]
    path = write_parquet(tmp_path / "zero.parquet", columns, row_group_size=10)
    source = ParquetSpectraSource(path, targets=["y"], spectra_kind="reflectance")
    with pytest.raises(SpecsoilError, match=r"data row 14 .*reflectance value 0 is not > 0"):
        list(source.iter_tables([1]))


def test_bad_files_and_targets_are_named(synthetic, tmp_path):
    path, _ = synthetic
    with pytest.raises(SpecsoilError, match="no such file"):
        ParquetSpectraSource(tmp_path / "missing.parquet", targets=TARGETS)
    with pytest.raises(SpecsoilError, match=r"a directory without \.parquet files"):
        ParquetSpectraSource(tmp_path, targets=TARGETS)
    csv = tmp_path / "table.csv"
    csv.write_text("id,400,410,420\na,0.1,0.2,0.3\n")
    with pytest.raises(SpecsoilError, match=r"table\.csv: not a Parquet file.*specsoil convert"):
        ParquetSpectraSource(csv, targets=["id"])
    with pytest.raises(SpecsoilError, match=r"unknown target 'clay_pct'; numeric columns: \["):
        ParquetSpectraSource(path, targets=["clay_pct"])
    with pytest.raises(SpecsoilError, match="no target given"):
        ParquetSpectraSource(path, targets=[])
    with pytest.raises(SpecsoilError, match="spectra_kind must be one of"):
        ParquetSpectraSource(path, targets=TARGETS, spectra_kind="transmittance")
    source = ParquetSpectraSource(path, targets=["POINT_ID"])
    with pytest.raises(SpecsoilError, match=r"'POINT_ID', data row 1: 'SYN000001' is not a number"):
        source.read_targets()
    with pytest.raises(SpecsoilError, match="row group 7 does not exist; the file has 4"):
        list(source.iter_tables([7]))
