import numpy as np
import pytest
from numpy.testing import assert_allclose

from specsoil.preprocess import SavitzkyGolay

GOLDEN_CASES = [(11, 2, 0), (11, 2, 1), (7, 3, 2)]


class TestSavitzkyGolay:
    @pytest.mark.parametrize(("window", "order", "deriv"), GOLDEN_CASES)
    def test_matches_local_polynomial_fits(
        self, reference_input, read_reference, window, order, deriv
    ):
        X, _ = reference_input
        expected, _ = read_reference(f"preprocess_savgol_w{window}_p{order}_d{deriv}.csv")
        out = SavitzkyGolay(window, order, deriv=deriv).fit_transform(X)
        assert_allclose(out, expected, rtol=1e-7, atol=1e-10 * np.abs(expected).max())

    @pytest.mark.parametrize("mode", ["interp", "mirror", "nearest", "constant", "wrap"])
    def test_defaults_and_modes_keep_shape(self, geeves_absorbance, mode):
        X, _ = geeves_absorbance
        out = SavitzkyGolay(mode=mode).fit_transform(X)
        assert out.shape == X.shape
        assert out.dtype == np.float64

    @pytest.mark.parametrize("order", [2, 3])
    def test_polynomial_up_to_polyorder_passes_unchanged(self, order):
        positions = np.linspace(-1.0, 1.0, 60)
        X = np.vstack([1 + positions, 0.5 - positions**2 + 0.2 * positions**order])
        assert_allclose(SavitzkyGolay(9, order).fit_transform(X), X, atol=1e-12)

    def test_first_derivative_of_a_line_is_its_slope_per_band(self):
        X = 0.25 + 0.03 * np.arange(40.0)[None, :] * np.array([[1.0], [2.0]])
        out = SavitzkyGolay(5, 2, deriv=1).fit_transform(X)
        assert_allclose(out, np.array([[0.03], [0.06]]) * np.ones((1, 40)), atol=1e-12)

    def test_smoothing_reduces_white_noise(self):
        rng = np.random.default_rng(0)
        noise = rng.normal(size=(50, 500))
        smoothed = SavitzkyGolay(11, 2).fit_transform(noise)
        assert smoothed[:, 20:-20].std() < 0.7 * noise.std()

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"window_length": 10}, r"window_length must be odd and > polyorder=2; got 10"),
            ({"window_length": 3, "polyorder": 3}, r"> polyorder=3; got 3"),
            ({"window_length": 11.0}, r"window_length must be odd"),
            ({"polyorder": -1}, r"polyorder must be an integer >= 0"),
            ({"deriv": 3}, r"deriv must be <= polyorder=2; got 3"),
            ({"deriv": True}, r"deriv must be an integer"),
            ({"mode": "reflect"}, r"mode must be one of"),
        ],
    )
    def test_invalid_parameters_are_rejected_in_fit(self, params, match):
        transformer = SavitzkyGolay(**params)  # __init__ only stores
        with pytest.raises(ValueError, match=match):
            transformer.fit(np.ones((2, 30)))

    def test_window_wider_than_spectrum_is_rejected(self):
        with pytest.raises(ValueError, match=r"window_length=11 must be <= .* 9 feature\(s\)"):
            SavitzkyGolay(11, 2).fit(np.ones((2, 9)))
