import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from specsoil.preprocess import Resample, StandardNormalVariate
from specsoil.preprocess._resample import resample_grid

SOURCE_GRIDS = {
    "asd_1nm": np.arange(350.0, 2501.0),
    "half_nm": np.arange(1100.0, 1700.5, 0.5),
    "irregular": np.concatenate(
        [[900.0], np.sort(np.random.default_rng(2).uniform(900.5, 1699.5, 400)), [1700.0]]
    ),
}


def linear_spectra(grid):
    """Three spectra that are exact linear functions of wavelength."""
    return np.vstack([0.1 + 0.0004 * grid, 2.0 - 0.001 * grid, np.full_like(grid, 0.3)])


class TestResampleGrid:
    @pytest.mark.parametrize(
        ("options", "expected"),
        [
            ({"step": 10}, np.arange(350.0, 2501.0, 10.0)),
            ({"start": 400, "stop": 410, "step": 0.1}, 400 + 0.1 * np.arange(101)),
            ({"start": 400, "stop": 409, "step": 2}, np.arange(400.0, 409.0, 2.0)),
            ({}, np.arange(350.0, 2501.0)),
            ({"target_wavelengths": [500, 600.5, 700]}, np.array([500.0, 600.5, 700.0])),
        ],
    )
    def test_grids(self, options, expected):
        assert_allclose(resample_grid(np.arange(350.0, 2501.0), **options), expected, atol=1e-9)

    def test_default_step_is_the_median_source_step(self):
        source = np.array([1000.0, 1002.0, 1004.0, 1007.0, 1009.0])
        assert_allclose(resample_grid(source), [1000, 1002, 1004, 1006, 1008])

    @pytest.mark.parametrize(
        ("options", "match"),
        [
            ({"start": 300}, r"target grid 300-2500 nm is outside the source range 350-2500 nm"),
            ({"stop": 2600}, r"target grid 350-2600 nm is outside the source range 350-2500 nm"),
            ({"target_wavelengths": [340, 400]}, r"outside the source range 350-2500"),
            ({"step": 0}, r"step must be a number > 0; got 0"),
            ({"step": -5}, r"step must be a number > 0"),
            ({"step": 1e-4}, r"step=0.0001 over 350-2500 nm gives 21500001 wavelengths"),
            ({"step": "10"}, r"step must be a number; got '10'"),
            ({"start": 900, "stop": 800}, r"stop must be >= start; got start=900, stop=800"),
            ({"start": 400, "target_wavelengths": [500]}, r"either target_wavelengths or"),
            ({"target_wavelengths": [600, 500]}, r"strictly ascending"),
        ],
    )
    def test_invalid_grids(self, options, match):
        with pytest.raises(ValueError, match=match):
            resample_grid(np.arange(350.0, 2501.0), **options)


class TestResample:
    @pytest.mark.parametrize("grid", SOURCE_GRIDS.values(), ids=SOURCE_GRIDS.keys())
    @pytest.mark.parametrize("method", ["linear", "mean", "cubic"])
    @pytest.mark.parametrize("step", [0.3, 2.0, 10.0])
    def test_exact_on_linear_functions(self, grid, method, step):
        resample = Resample(grid, step=step, method=method).fit(linear_spectra(grid))
        out = resample.transform(linear_spectra(grid))
        assert_allclose(out, linear_spectra(resample.wavelengths_out_), atol=1e-9)

    def test_cubic_is_exact_on_a_cubic(self):
        grid = np.sort(np.random.default_rng(5).uniform(1000.0, 2000.0, 300))
        cubic = ((grid - 1500.0) / 500.0) ** 3 - 0.5 * ((grid - 1500.0) / 500.0)
        resample = Resample(grid, start=1010, stop=1990, step=7, method="cubic")
        out = resample.fit_transform(cubic[None, :])
        x = (resample.wavelengths_out_ - 1500.0) / 500.0
        assert_allclose(out[0], x**3 - 0.5 * x, atol=1e-10)

    def test_mean_of_aligned_bins_is_the_trapezoidal_band_average(self):
        grid = np.arange(350.0, 450.0)  # 100 bands at 1 nm
        X = np.random.default_rng(0).normal(size=(4, 100))
        resample = Resample(grid, start=360, stop=440, step=10, method="mean").fit(X)
        expected = np.empty((4, 9))
        for j, centre in enumerate(range(360, 441, 10)):
            first = centre - 5 - 350  # the band on the lower window edge
            weights = np.ones(11)
            weights[[0, -1]] = 0.5  # edge bands are shared with the neighbouring window
            expected[:, j] = X[:, first : first + 11] @ weights / 10.0
        assert_allclose(resample.transform(X), expected, atol=1e-12)

    def test_mean_is_the_average_over_the_window_on_an_irregular_grid(self):
        rng = np.random.default_rng(6)
        grid = np.concatenate([[1000.0], np.sort(rng.uniform(1000.1, 1099.9, 150)), [1100.0]])
        X = rng.normal(size=(2, grid.size))
        out = Resample(grid, start=1010, stop=1090, step=8, method="mean").fit_transform(X)
        for j, centre in enumerate(np.arange(1010.0, 1091.0, 8.0)):
            fine = np.linspace(centre - 4.0, centre + 4.0, 200_001)
            for row in range(2):
                average = np.trapezoid(np.interp(fine, grid, X[row]), fine) / 8.0
                assert out[row, j] == pytest.approx(average, abs=1e-9)

    def test_mean_matches_band_averages_of_real_spectra(self, geeves_reflectance):
        R, grid = geeves_reflectance
        resample = Resample(grid, step=10, method="mean").fit(R)
        out = resample.transform(R)
        assert out.shape == (R.shape[0], 216)
        column = int(np.flatnonzero(resample.wavelengths_out_ == 1000.0)[0])
        inner = (grid > 995.0) & (grid < 1005.0)  # 996 ... 1004 nm, plus half of 995 and 1005
        edges = (grid == 995.0) | (grid == 1005.0)
        expected = (R[:, inner].sum(axis=1) + 0.5 * R[:, edges].sum(axis=1)) / 10.0
        assert_allclose(out[:, column], expected, rtol=1e-12)
        # The windows stay centred, so at the ends of the range they shrink to the end bands.
        assert_allclose(out[:, 0], R[:, 0], rtol=1e-12)
        assert_allclose(out[:, -1], R[:, -1], rtol=1e-12)

    def test_mean_reduces_noise_where_linear_does_not(self):
        grid = np.arange(350.0, 2501.0)
        noise = np.random.default_rng(1).normal(size=(20, grid.size))
        by_mean = Resample(grid, step=10, method="mean").fit_transform(noise)
        by_linear = Resample(grid, step=10).fit_transform(noise)
        assert 0.25 < by_mean[:, 1:-1].std() < 0.4  # ~ 1 / sqrt(10)
        assert by_linear.std() > 0.9

    def test_no_options_on_a_regular_grid_is_identity(self, geeves_absorbance):
        A, grid = geeves_absorbance
        np.testing.assert_array_equal(Resample(grid).fit_transform(A), A)

    def test_explicit_target_and_feature_names(self):
        grid = np.arange(1100.0, 2500.0, 2.0)
        resample = Resample(grid, target_wavelengths=[1100.5, 1500, 2498]).fit(
            np.ones((2, grid.size))
        )
        assert_allclose(resample.wavelengths_out_, [1100.5, 1500.0, 2498.0])
        assert list(resample.get_feature_names_out()) == ["1100.5", "1500", "2498"]
        with pytest.raises(ValueError, match="input_features has 2 names"):
            resample.get_feature_names_out(["a", "b"])

    def test_width_must_match_the_wavelengths(self):
        with pytest.raises(ValueError, match="wavelengths has 10 values but X has 12 columns"):
            Resample(np.arange(10.0)).fit(np.ones((2, 12)))
        resample = Resample(np.arange(10.0)).fit(np.ones((2, 10)))
        assert resample.n_features_in_ == 10
        with pytest.raises(ValueError, match="features"):
            resample.transform(np.ones((2, 12)))

    def test_unknown_method_is_rejected(self):
        with pytest.raises(
            ValueError, match=r"method must be one of \['linear', 'mean', 'cubic'\]"
        ):
            Resample(np.arange(10.0), method="nearest").fit(np.ones((2, 10)))

    def test_float32_in_float64_out(self, geeves_absorbance):
        A, grid = geeves_absorbance
        out = Resample(grid, step=5, method="mean").fit_transform(A.astype(np.float32))
        assert out.dtype == np.float64

    @pytest.mark.parametrize("method", ["linear", "mean", "cubic"])
    def test_blocks_of_rows_give_the_same_result_as_one_pass(self, monkeypatch, method):
        # Large tables are resampled a block of rows at a time; rows are independent, so the
        # result must not depend on the block size (here 7 rows, with a ragged last block).
        grid = SOURCE_GRIDS["irregular"]
        X = np.random.default_rng(0).normal(size=(30, grid.size)).cumsum(axis=1)
        resampler = Resample(grid, step=10, method=method).fit(X)
        one_pass = resampler._transform_rows(X)
        monkeypatch.setattr("specsoil.preprocess._resample._ROWS_PER_BLOCK", 7)
        np.testing.assert_array_equal(resampler.transform(X), one_pass)
        np.testing.assert_array_equal(
            resampler.transform(X.astype(np.float32)),
            resampler._transform_rows(X.astype(np.float32).astype(np.float64)),
        )

    def test_clones_inside_a_pipeline(self, geeves_absorbance):
        A, grid = geeves_absorbance
        pipe = make_pipeline(Resample(grid, step=10, method="mean"), StandardNormalVariate())
        copy = clone(pipe)
        assert_allclose(copy.fit_transform(A), pipe.fit_transform(A))
        np.testing.assert_array_equal(copy.get_params()["resample__wavelengths"], grid)
