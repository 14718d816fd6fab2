"""SpectralModel directories: format versions on load, and the shared grid-alignment rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from specsoil import __version__
from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable
from specsoil.models import SpectralModel
from specsoil.models._spectral_model import (
    FORMAT_VERSION,
    MANIFEST,
    align_spectra,
    check_format_version,
)


def _table(X, wavelengths, source="spectra.csv") -> SpectraTable:
    return SpectraTable(
        X=np.asarray(X, dtype=np.float32),
        wavelengths=np.asarray(wavelengths, dtype=np.float64),
        metadata=pd.DataFrame({"sample_id": np.arange(len(X))}),
        source=source,
    )


@pytest.fixture(scope="module")
def plsr_dir(tmp_path_factory, geeves_subset_module):
    X, Y, wavelengths = geeves_subset_module
    table = _table(X[:60], wavelengths)
    frame = table.metadata.assign(clay_pct=Y[:60, 0])
    table = SpectraTable(X=table.X, wavelengths=table.wavelengths, metadata=frame, source="t")
    model = SpectralModel.fit(table, ["clay_pct"], recipe="plsr", params={"max_components": 4})
    return model.save(tmp_path_factory.mktemp("models") / "plsr"), table


@pytest.fixture(scope="module")
def geeves_subset_module():
    from .conftest import DATASETS, _spectral_columns

    frame = pd.read_csv(DATASETS / "geeves" / "geeves_visnir.csv.gz", nrows=60)
    bands = _spectral_columns(frame)
    X = -np.log10(frame[bands].to_numpy(dtype=np.float64))
    Y = frame[["clay_pct"]].to_numpy(dtype=np.float64)
    return X, Y, np.array([float(c) for c in bands])


def _with_manifest(model_dir, tmp_path, **changes):
    """A copy of ``model_dir`` with manifest keys replaced (None deletes a key)."""
    import shutil

    copy = tmp_path / "edited"
    shutil.copytree(model_dir, copy)
    manifest = json.loads((copy / MANIFEST).read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    (copy / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return copy


class TestFormatVersion:
    def test_saved_with_the_current_version_and_loads(self, plsr_dir):
        model_dir, table = plsr_dir
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
        assert manifest["format_version"] == FORMAT_VERSION
        assert manifest["specsoil_version"] == __version__
        loaded = SpectralModel.load(model_dir)
        assert loaded.predict(table).shape == (table.n_samples, 1)

    def test_written_by_another_specsoil_with_the_same_format_loads(self, plsr_dir, tmp_path):
        model_dir, table = plsr_dir
        edited = _with_manifest(model_dir, tmp_path, specsoil_version="0.0.1")
        expected = SpectralModel.load(model_dir).predict(table)
        np.testing.assert_array_equal(SpectralModel.load(edited).predict(table), expected)

    def test_newer_format_says_to_upgrade(self, plsr_dir, tmp_path):
        model_dir, _ = plsr_dir
        edited = _with_manifest(
            model_dir, tmp_path, format_version=FORMAT_VERSION + 1, specsoil_version="9.1.0"
        )
        with pytest.raises(
            SpecsoilError,
            match=rf"model format version {FORMAT_VERSION + 1} was written by specsoil 9\.1\.0"
            rf".*reads versions 1 to {FORMAT_VERSION}, so upgrade specsoil",
        ):
            SpectralModel.load(edited)

    @pytest.mark.parametrize("version", [None, "1", 1.0, True])
    def test_missing_or_non_integer_version(self, plsr_dir, tmp_path, version):
        model_dir, _ = plsr_dir
        edited = _with_manifest(model_dir, tmp_path, format_version=version)
        if version is None:
            manifest = json.loads((edited / MANIFEST).read_text(encoding="utf-8"))
            assert "format_version" not in manifest
        with pytest.raises(SpecsoilError, match="format_version must be an integer"):
            SpectralModel.load(edited)

    def test_version_older_than_supported(self):
        with pytest.raises(SpecsoilError, match=r"version 1 .*no longer read.*versions 2 to 3"):
            check_format_version(1, written_by="0.1.0", source="old", current=3, oldest=2)

    def test_a_pipeline_that_is_no_archive_is_corrupt_whoever_wrote_it(self, plsr_dir, tmp_path):
        # Not a version problem, so no advice to find the version that wrote it (tests of
        # archives that read but do not rebuild: tests/models/test_model_files.py).
        model_dir, _ = plsr_dir
        edited = _with_manifest(model_dir, tmp_path, specsoil_version="0.0.1")
        (edited / "pipeline.skops").write_bytes(b"PK\x03\x04 not a real archive")
        with pytest.raises(SpecsoilError, match=r"pipeline\.skops: truncated or corrupt"):
            SpectralModel.load(edited)


class TestAlignSpectra:
    def test_same_grid_returns_the_spectra_unchanged(self):
        X = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
        table = _table(X, [1000.0, 1002.0, 1004.0])
        assert align_spectra(table, np.array([1000.0, 1002.0, 1004.0]), model_name="m") is table.X

    def test_other_grid_is_interpolated_linearly(self):
        wavelengths = np.arange(1000.0, 1011.0)
        table = _table([2.0 * wavelengths / 1000.0], wavelengths)
        grid = np.array([1000.5, 1004.0, 1009.5])
        aligned = align_spectra(table, grid, model_name="m")
        assert aligned.dtype == np.float32
        np.testing.assert_allclose(aligned[0], 2.0 * grid / 1000.0, rtol=1e-6)

    def test_half_a_band_of_slack_at_the_ends(self):
        wavelengths = np.arange(1000.0, 1011.0)
        table = _table([np.linspace(0, 1, 11)], wavelengths)
        aligned = align_spectra(table, np.array([999.6, 1010.4]), model_name="m")
        np.testing.assert_allclose(aligned[0], [0.0, 1.0])

    def test_model_bands_clipped_to_one_edge_take_the_edge_value(self):
        # A 20 nm table ending at 2490 nm against a 10 nm model grid ending at 2500 nm: both
        # 2490 and 2500 clip to 2490, which must not give a duplicated resampling grid.
        wavelengths = np.arange(2410.0, 2491.0, 20.0)
        table = _table([wavelengths / 1000.0], wavelengths)
        grid = np.arange(2410.0, 2501.0, 10.0)
        aligned = align_spectra(table, grid, model_name="m")
        assert aligned.shape == (1, grid.size)
        np.testing.assert_allclose(aligned[0], np.minimum(grid, 2490.0) / 1000.0, rtol=1e-6)

    def test_range_not_covered_names_the_model_and_ranges(self):
        table = _table([np.linspace(0, 1, 11)], np.arange(1000.0, 1011.0), source="new.csv")
        with pytest.raises(
            SpecsoilError, match=r"new\.csv: spectra cover 1000-1010 nm but model 'cnn' needs"
        ):
            align_spectra(table, np.array([990.0, 1010.0]), model_name="cnn")

    def test_model_align_uses_it(self, plsr_dir):
        model_dir, table = plsr_dir
        model = SpectralModel.load(model_dir)
        coarse = _table(table.X[:, ::2], table.wavelengths[::2])
        np.testing.assert_array_equal(
            model.align(coarse), align_spectra(coarse, model.wavelengths, model_name=model.name)
        )
