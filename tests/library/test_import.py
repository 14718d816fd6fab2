"""Importing tables into a library and reading them back, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable
from specsoil.library import _import as import_module
from specsoil.library import import_table, init_library, list_library, read_library
from specsoil.library._engine import create_library_engine


def table_counts(url: str) -> dict[str, int]:
    engine = create_library_engine(url, must_exist=True)
    names = ["import_batches", "import_files", "samples", "sites", "instruments",
             "wavelength_axes", "spectra", "properties", "lab_values"]  # fmt: skip
    with engine.connect() as connection:
        counts = {
            name: int(connection.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())
            for name in names
        }
    engine.dispose()
    return counts


def assert_same_table(read: SpectraTable, table: SpectraTable) -> None:
    assert read.X.dtype == np.float32
    np.testing.assert_array_equal(read.X, table.X)  # float32 bit for bit
    np.testing.assert_array_equal(read.wavelengths, table.wavelengths)
    pd.testing.assert_frame_equal(read.metadata, table.metadata)
    assert read.spectra_kind == table.spectra_kind


class TestRoundTrip:
    def test_table_comes_back_exactly(self, library_url, rich_table):
        report = import_table(library_url, rich_table, instrument="asd", units={"clay_pct": "%"})
        assert report.batch_id == 1
        assert report.spectra_added == rich_table.n_samples == report.samples_added
        assert report.lab_columns == ("clay_pct", "silt_pct", "sand_pct", "total_carbon_pct")
        assert report.lab_values_added == 4 * rich_table.n_samples - 1  # one NaN left out
        read = read_library(library_url)
        assert_same_table(read, rich_table)
        assert read.metadata["fold"].dtype == np.int64
        assert read.metadata["sampled"].dtype == rich_table.metadata["sampled"].dtype

    def test_sites_and_summary(self, library_url, rich_table):
        import_table(library_url, rich_table, instrument="asd", units={"clay_pct": "%"})
        summary = list_library(library_url)
        assert (summary.n_spectra, summary.n_samples, summary.n_sites) == (60, 60, 4)
        assert summary.instruments == [("asd", None, 60, "350-2500 nm (216)")]
        assert ("clay_pct", "%", None, 60, 0) in summary.properties
        assert [b[0] for b in summary.batches] == [1]
        assert summary.batches[0][3] == "rich"
        engine = create_library_engine(library_url, must_exist=True)
        with engine.connect() as connection:
            sites = connection.execute(
                sa.text("SELECT name, x, y, crs_epsg FROM sites ORDER BY name")
            ).all()
        engine.dispose()
        assert sites[0] == ("site-0", 146.0, -35.0, 4326)

    def test_replicates_keep_their_own_columns(self, library_url, geeves_small):
        # Three scans of each of 20 samples; the scan file differs, the lab values do not.
        rows = np.repeat(np.arange(20), 3)
        metadata = geeves_small.metadata.iloc[rows].reset_index(drop=True)
        metadata["scan_file"] = [f"s{i}.asd" for i in range(60)]
        X = geeves_small.X[np.arange(60)]  # distinct spectra
        table = SpectraTable(X, geeves_small.wavelengths, metadata, "reps", "reflectance")
        report = import_table(library_url, table, instrument="asd")
        assert (report.spectra_added, report.samples_added, report.lab_values_added) == (60, 20, 80)
        assert_same_table(read_library(library_url), table)
        engine = create_library_engine(library_url, must_exist=True)
        with engine.connect() as connection:
            replicates = connection.execute(
                sa.text("SELECT replicate FROM spectra ORDER BY id")
            ).scalars()
            assert list(replicates) == [1, 2, 3] * 20
        engine.dispose()

    def test_censored_lab_values_keep_their_text(self, library_url, geeves_small):
        metadata = geeves_small.metadata.copy()
        metadata["boron_mg_kg"] = pd.Series(
            ["<0.5" if i % 3 == 0 else f"{i / 10:g}" for i in range(60)], dtype="str"
        )
        table = SpectraTable(geeves_small.X, geeves_small.wavelengths, metadata, "c", "reflectance")
        report = import_table(library_url, table)
        assert "boron_mg_kg" in report.lab_columns
        assert_same_table(read_library(library_url), table)
        censored = dict((p[0], p[4]) for p in list_library(library_url).properties)
        assert censored["boron_mg_kg"] == 20

    def test_conflicting_lab_values_are_refused(self, library_url, geeves_small):
        import_table(library_url, geeves_small)
        metadata = geeves_small.metadata.copy()
        metadata.loc[5, "clay_pct"] += 1
        changed = SpectraTable(geeves_small.X[::-1].copy(), geeves_small.wavelengths, metadata, "x")
        with pytest.raises(SpecsoilError, match="never overwrites a lab value"):
            import_table(library_url, changed)


class TestIdempotence:
    def test_reimport_adds_nothing(self, library_url, tmp_path, rich_table):
        source = tmp_path / "table.csv"
        source.write_text("not read: only hashed\n")
        first = import_table(library_url, rich_table, source_files=[source])
        before = table_counts(library_url)
        again = import_table(library_url, rich_table, source_files=[source])
        assert again.batch_id is None
        assert (again.spectra_added, again.spectra_skipped) == (0, 60)
        assert again.lab_values_skipped == first.lab_values_added
        assert table_counts(library_url) == before
        assert before["import_files"] == 1

    def test_overlapping_import_adds_only_new_rows(self, library_url, rich_table):
        import_table(library_url, rich_table.subset(range(40)))
        report = import_table(library_url, rich_table.subset(range(20, 60)))
        assert (report.batch_id, report.spectra_added, report.spectra_skipped) == (2, 20, 20)
        assert_same_table(read_library(library_url), rich_table)


class TestAtomicity:
    def test_failure_midway_leaves_the_library_as_it_was(
        self, library_url, rich_table, monkeypatch
    ):
        import_table(library_url, rich_table.subset(range(30)))
        before = table_counts(library_url)
        original = import_module._write_lab_values

        def fail_after_spectra(*args, **kwargs):
            original(*args, **kwargs)  # samples, spectra and lab values are written ...
            raise RuntimeError("disk full")  # ... and then the import fails

        monkeypatch.setattr(import_module, "_write_lab_values", fail_after_spectra)
        with pytest.raises(RuntimeError, match="disk full"):
            import_table(library_url, rich_table, instrument="other")
        assert table_counts(library_url) == before
        monkeypatch.undo()
        report = import_table(library_url, rich_table)
        assert report.spectra_added == 30


class TestConcurrency:
    def test_two_imports_at_once(self, library_url, geeves_small):
        init_library(library_url)
        halves = [geeves_small.subset(range(0, 30)), geeves_small.subset(range(30, 60))]
        # Each thread imports its half and the whole table, at the same moment.
        barrier = threading.Barrier(2)
        reports, errors = [], []

        def work(part: SpectraTable) -> None:
            try:
                barrier.wait()
                reports.append(import_table(library_url, part, instrument="asd"))
                reports.append(import_table(library_url, geeves_small, instrument="asd"))
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(h,)) for h in halves]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "deadlock"
        assert errors == []
        assert sum(r.spectra_added for r in reports) == 60
        assert sum(r.samples_added for r in reports) == 60
        assert table_counts(library_url)["spectra"] == 60
        read = read_library(library_url)
        order = np.argsort(read.metadata["sample_id"].to_numpy(), kind="stable")
        expected = np.argsort(geeves_small.metadata["sample_id"].to_numpy(), kind="stable")
        np.testing.assert_array_equal(read.X[order], geeves_small.X[expected])


class TestInstruments:
    def test_axes_are_resampled_onto_the_common_range(self, library_url, geeves_small, caplog):
        import_table(library_url, geeves_small, instrument="asd")
        narrow = SpectraTable(
            X=geeves_small.X[:, 10:150].copy(),
            wavelengths=geeves_small.wavelengths[10:150] + 5.0,
            metadata=geeves_small.metadata,
            source="narrow",
            spectra_kind="reflectance",
        )
        import_table(library_url, narrow, instrument="nir", id_prefix="nir:")
        read = read_library(library_url)
        assert "resampled by linear interpolation onto their common range 460-1840" in caplog.text
        assert read.n_samples == 120
        # The coarser grid inside the common range is the 10 nm one: 460 ... 1840 nm.
        w = geeves_small.wavelengths
        np.testing.assert_array_equal(read.wavelengths, w[11:150])
        np.testing.assert_array_equal(read.X[:60], geeves_small.X[:, 11:150])  # its own grid
        halfway = 0.5 * (narrow.X[:, :-1] + narrow.X[:, 1:])  # 460 nm lies between 455 and 465
        np.testing.assert_allclose(read.X[60:], halfway, rtol=1e-6)
        only = read_library(library_url, instrument="nir")
        assert_same_table(only, narrow)

    def test_axes_without_common_range_are_an_error(self, library_url, geeves_small):
        first = geeves_small.subset(range(10))
        low = SpectraTable(first.X[:, :50].copy(), first.wavelengths[:50], first.metadata, "a")
        high = SpectraTable(first.X[:, 100:].copy(), first.wavelengths[100:], first.metadata, "b")
        import_table(library_url, low, instrument="vis")
        import_table(library_url, high, instrument="swir", id_prefix="b:")
        with pytest.raises(SpecsoilError, match=r"share no wavelength range.*--instrument"):
            read_library(library_url)
        assert read_library(library_url, instrument="swir").n_samples == 10
