import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone

from specsoil._errors import SpecsoilError
from specsoil.preprocess import SpliceCorrection, make_preprocessing

WAVELENGTHS = np.arange(350.0, 2501.0)


def _reference_splice_correction(X, wavelengths, splice, bands):
    """An independent, row-by-row version: np.polyfit lines, explicit segment shifts."""
    out = X.copy()
    first = int(np.flatnonzero(wavelengths == splice[0])[0])
    for row in out:
        head = slice(first + 1, first + 1 + bands)
        slope, intercept = np.polyfit(wavelengths[head], row[head], 1)
        row[: first + 1] += slope * wavelengths[first] + intercept - row[first]
        if len(splice) == 2:
            second = int(np.flatnonzero(wavelengths == splice[1])[0])
            tail = slice(second - bands + 1, second + 1)
            slope, intercept = np.polyfit(wavelengths[tail], row[tail], 1)
            row[second + 1 :] += slope * wavelengths[second + 1] + intercept - row[second + 1]
    return out


class TestSpliceCorrection:
    @pytest.mark.parametrize(
        ("splice", "bands"), [((1000.0, 1830.0), 10), ((1000.0, 1800.0), 5), ((1000.0,), 20)]
    )
    def test_matches_an_independent_implementation(self, geeves_reflectance, splice, bands):
        X, wavelengths = geeves_reflectance
        out = SpliceCorrection(wavelengths, splice=splice, interpolation_bands=bands).fit_transform(
            X
        )
        expected = _reference_splice_correction(X, wavelengths, splice, bands)
        assert_allclose(out, expected, rtol=0, atol=1e-12)

    def test_a_straight_spectrum_with_steps_comes_back_straight(self):
        line = 0.2 + 1e-4 * WAVELENGTHS
        stepped = line.copy()
        stepped[WAVELENGTHS <= 1000] += 0.03
        stepped[WAVELENGTHS > 1830] -= 0.05
        out = SpliceCorrection(WAVELENGTHS).fit_transform(np.vstack([stepped, line]))
        assert_allclose(out, np.vstack([line, line]), atol=1e-12)

    def test_golden_values_at_the_joins(self):
        # VNIR 1.0 up to 1000 nm; SWIR1 rises 0.001/nm from 0.5 at 1001 nm; SWIR2 flat 2.0.
        x = np.where(WAVELENGTHS <= 1000, 1.0, 0.5 + 0.001 * (WAVELENGTHS - 1001))
        x = np.where(WAVELENGTHS > 1830, 2.0, x)
        out = SpliceCorrection(WAVELENGTHS).fit_transform(x[None, :])[0]
        # SWIR1's line gives 0.499 at 1000 nm and 0.5 + 0.001 * 830 = 1.33 at 1831 nm.
        assert_allclose(out[WAVELENGTHS <= 1000], 0.499, atol=1e-12)
        assert_allclose(out[WAVELENGTHS > 1830], 1.33, atol=1e-12)
        middle = (WAVELENGTHS > 1000) & (WAVELENGTHS <= 1830)
        assert_allclose(out[middle], x[middle])

    def test_rows_are_independent_and_clone_works(self, geeves_reflectance):
        X, wavelengths = geeves_reflectance
        step = SpliceCorrection(wavelengths).fit(X)
        assert_allclose(step.transform(X[:3]), clone(step).fit_transform(X)[:3])

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"splice": (1000.5, 1830.0)}, "splice 1000.5 nm is not on the wavelength grid"),
            ({"splice": (1830.0, 1000.0)}, "ascending"),
            ({"splice": (900.0, 1000.0, 1800.0)}, "one or two"),
            ({"splice": "near 1000"}, "one or two wavelengths"),
            ({"interpolation_bands": 1}, "interpolation_bands must be an integer >= 2"),
            ({"splice": (1000.0, 1005.0), "interpolation_bands": 10}, "fewer than"),
            ({"splice": (1000.0, 2500.0)}, "no band after"),
        ],
    )
    def test_invalid_parameters(self, kwargs, message):
        X = np.ones((2, WAVELENGTHS.size))
        with pytest.raises(ValueError, match=message):
            SpliceCorrection(WAVELENGTHS, **kwargs).fit(X)

    def test_needs_wavelengths(self):
        with pytest.raises(ValueError, match="needs wavelengths"):
            SpliceCorrection().fit(np.ones((2, 50)))

    def test_registered_as_a_step(self, geeves_absorbance):
        A, wavelengths = geeves_absorbance
        pipeline, grid = make_preprocessing(
            [{"name": "splice_correction", "splice": [1000, 1800], "interpolation_bands": 8}],
            wavelengths,
        )
        expected = SpliceCorrection(wavelengths, splice=(1000, 1800), interpolation_bands=8)
        assert_allclose(pipeline.fit_transform(A), expected.fit_transform(A))
        assert_allclose(grid, wavelengths)

    def test_step_off_the_grid_is_a_clear_error(self):
        with pytest.raises(SpecsoilError, match=r"step 1 \(splice_correction\): splice 1830"):
            make_preprocessing([{"name": "splice_correction"}], np.arange(400.0, 2400.0, 20.0))
