import numpy as np
import pytest
from numpy.testing import assert_allclose

from specsoil._errors import SpecsoilError
from specsoil.preprocess import ContinuumRemoval
from specsoil.preprocess._continuum_removal import upper_hull_indices


def brute_force_upper_hull(x, y):
    """Upper hull value at every x: the highest chord over any pair of points around it."""
    hull = y.copy()
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            inside = slice(i, j + 1)
            chord = y[i] + (y[j] - y[i]) * (x[inside] - x[i]) / (x[j] - x[i])
            hull[inside] = np.maximum(hull[inside], chord)
    return hull


class TestUpperHull:
    @pytest.mark.parametrize("seed", range(5))
    def test_matches_brute_force(self, seed):
        rng = np.random.default_rng(seed)
        x = np.sort(rng.uniform(0, 100, 40))
        y = rng.normal(size=40)
        vertices = upper_hull_indices(x, y)
        assert vertices[0] == 0
        assert vertices[-1] == 39
        assert_allclose(np.interp(x, x[vertices], y[vertices]), brute_force_upper_hull(x, y))

    def test_collinear_points_are_not_vertices(self):
        x = np.arange(5.0)
        np.testing.assert_array_equal(upper_hull_indices(x, 2 * x + 1), [0, 4])


class TestContinuumRemoval:
    def test_reflectance_is_one_on_hull_points_and_below_elsewhere(self, geeves_reflectance):
        R, wavelengths = geeves_reflectance
        out = ContinuumRemoval(wavelengths).fit_transform(R)
        assert out.max() <= 1.0 + 1e-12
        assert out.min() > 0
        for spectrum, row in zip(R[:5], out[:5], strict=True):
            vertices = upper_hull_indices(wavelengths, spectrum)
            np.testing.assert_array_equal(row[vertices], 1.0)
            assert row[0] == 1.0
            assert row[-1] == 1.0

    def test_absorption_band_on_a_linear_continuum(self):
        wavelengths = np.linspace(1000.0, 2000.0, 201)
        continuum = 0.4 + 0.0001 * wavelengths
        depth = 0.3 * np.exp(-0.5 * ((wavelengths - 1400.0) / 40.0) ** 2)
        R = (continuum * (1 - depth))[None, :]
        out = ContinuumRemoval(wavelengths).fit_transform(R)
        assert_allclose(out[0], 1 - depth, atol=1e-12)

    def test_absorbance_subtracts_the_lower_hull(self):
        wavelengths = np.linspace(1000.0, 2000.0, 201)
        baseline = 0.8 - 0.0002 * wavelengths
        peak = 0.25 * np.exp(-0.5 * ((wavelengths - 1700.0) / 30.0) ** 2)
        out = ContinuumRemoval(wavelengths, kind="absorbance").fit_transform(
            (baseline + peak)[None, :]
        )
        assert_allclose(out[0], peak, atol=1e-12)

    def test_absorbance_is_zero_on_hull_points(self, geeves_absorbance):
        A, wavelengths = geeves_absorbance
        out = ContinuumRemoval(wavelengths, kind="absorbance").fit_transform(A)
        assert out.min() >= -1e-12
        vertices = upper_hull_indices(wavelengths, -A[0])
        np.testing.assert_array_equal(out[0, vertices], 0.0)

    def test_uses_the_wavelength_spacing(self):
        # Against band positions the middle point lies below the chord; against these
        # wavelengths it lies above it, so it becomes a hull vertex.
        R = np.array([[1.0, 1.4, 2.0]])
        by_position = ContinuumRemoval().fit_transform(R)
        by_wavelength = ContinuumRemoval([0.0, 0.1, 1.0]).fit_transform(R)
        assert by_position[0, 1] < 1.0
        assert by_wavelength[0, 1] == 1.0

    def test_rejects_non_positive_reflectance(self):
        R = np.full((3, 5), 0.5)
        R[2, 3] = 0.0
        with pytest.raises(
            SpecsoilError, match=r"row 2, column 3 \(1300\) is 0; expected values > 0"
        ):
            ContinuumRemoval([1000.0, 1100.0, 1200.0, 1300.0, 1400.0]).fit_transform(R)

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"kind": "transmittance"}, r"kind must be one of \['reflectance', 'absorbance'\]"),
            ({"wavelengths": [1.0, 2.0]}, "wavelengths has 2 values but X has 4 columns"),
        ],
    )
    def test_invalid_parameters_are_rejected(self, params, match):
        with pytest.raises(ValueError, match=match):
            ContinuumRemoval(**params).fit(np.ones((2, 4)))
