import numpy as np
import pytest
from numpy.testing import assert_allclose

from specsoil.preprocess import Detrend

GRIDS = {
    "asd_1nm": np.arange(350.0, 2501.0),
    "irregular": np.sort(np.random.default_rng(1).uniform(1100.0, 2500.0, 300)),
}


class TestDetrend:
    def test_matches_golden_values(self, reference_input, read_reference):
        X, wavelengths = reference_input
        expected, _ = read_reference("preprocess_detrend_o2.csv")
        out = Detrend(order=2, wavelengths=wavelengths).fit_transform(X)
        assert_allclose(out, expected, rtol=1e-7, atol=1e-12)

    @pytest.mark.parametrize("grid", GRIDS.values(), ids=GRIDS.keys())
    @pytest.mark.parametrize("order", [0, 1, 2, 3])
    def test_removes_an_exact_polynomial(self, grid, order):
        micrometres = grid / 1000.0
        coefficients = np.random.default_rng(order).normal(size=(4, order + 1))
        X = np.vstack([np.polyval(c, micrometres) for c in coefficients])
        out = Detrend(order=order, wavelengths=grid).fit_transform(X)
        assert_allclose(out, 0.0, atol=1e-9)

    def test_added_polynomial_does_not_change_the_result(self, geeves_absorbance):
        X, wavelengths = geeves_absorbance
        baseline = 0.3 - 0.2 * (wavelengths / 1000.0) + 0.05 * (wavelengths / 1000.0) ** 2
        detrend = Detrend(order=2, wavelengths=wavelengths).fit(X)
        assert_allclose(detrend.transform(X + baseline), detrend.transform(X), atol=1e-10)

    def test_residuals_are_orthogonal_to_the_basis(self, geeves_absorbance):
        X, wavelengths = geeves_absorbance
        out = Detrend(order=2, wavelengths=wavelengths).fit_transform(X)
        basis = np.vander((wavelengths - 1425.0) / 1075.0, 3)
        assert_allclose(out @ basis, 0.0, atol=1e-8)

    def test_band_positions_equal_an_even_grid(self, geeves_absorbance):
        X, wavelengths = geeves_absorbance
        with_grid = Detrend(wavelengths=wavelengths).fit_transform(X)
        assert_allclose(Detrend().fit_transform(X), with_grid, atol=1e-10)

    def test_wavelengths_must_match_columns(self):
        with pytest.raises(ValueError, match="wavelengths has 5 values but X has 6 columns"):
            Detrend(wavelengths=np.arange(5.0)).fit(np.ones((2, 6)))

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"order": -1}, "order must be an integer >= 0"),
            ({"order": 1.5}, "order must be an integer"),
            ({"wavelengths": [3.0, 2.0, 1.0, 0.5]}, "strictly ascending"),
        ],
    )
    def test_invalid_parameters_are_rejected(self, params, match):
        with pytest.raises(ValueError, match=match):
            Detrend(**params).fit(np.ones((2, 4)))

    def test_needs_more_wavelengths_than_coefficients(self):
        with pytest.raises(ValueError, match=r"order=2 needs at least 4 wavelengths"):
            Detrend(order=2).fit(np.ones((2, 3)))
