"""Conversion to absorbance and detection of what the spectral values are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from specsoil import SpecsoilError
from specsoil.data import detect_spectra_kind, read_spectra, to_absorbance
from specsoil.data._kinds import (
    VALUE_LIMITS,
    describe_impossible,
    impossible_values,
    median_spectrum,
)

GEEVES_SMALL = Path(__file__).resolve().parent / "fixtures" / "geeves_small.csv"


@pytest.fixture
def geeves_reflectance(geeves_small):
    """Real reflectance (0-1) of 60 soils at 350-2500 nm every 10 nm, float64."""
    return 10.0 ** (-geeves_small.X.astype(np.float64)), geeves_small.wavelengths


class TestToAbsorbance:
    def test_reflectance_golden(self):
        reflectance = np.random.default_rng(0).uniform(0.01, 1.0, (7, 11))
        expected = np.log(1.0 / reflectance) / np.log(10.0)  # log10(1/R), another route
        result = to_absorbance(reflectance, "reflectance")
        assert result.dtype == np.float32
        assert_allclose(result, expected, rtol=1e-6, atol=1e-7)

    def test_percent_golden(self):
        percent = np.random.default_rng(1).uniform(1.0, 100.0, (5, 9))
        expected = np.log(100.0 / percent) / np.log(10.0)
        assert_allclose(to_absorbance(percent, "reflectance-percent"), expected, atol=2e-7)

    def test_absorbance_is_copied_as_float32(self):
        absorbance = np.array([[0.1, 1.5, -0.02], [2.0, 0.3, 0.7]])
        result = to_absorbance(absorbance, "absorbance")
        assert result.dtype == np.float32
        assert_array_equal(result, absorbance.astype(np.float32))

    def test_in_place(self):
        reflectance = np.array([[0.5, 0.1], [0.01, 1.0]], dtype=np.float32)
        result = to_absorbance(reflectance, "reflectance", out=reflectance)
        assert result is reflectance
        assert_allclose(result, [[np.log10(2), 1.0], [2.0, 0.0]], atol=1e-6)

    def test_input_untouched_without_out(self):
        reflectance = np.full((2, 3), 0.5, dtype=np.float32)
        to_absorbance(reflectance, "reflectance")
        assert_array_equal(reflectance, 0.5)

    @pytest.mark.parametrize("kind", ["reflectance", "reflectance-percent"])
    @pytest.mark.parametrize("bad", [0.0, -0.2])
    def test_non_positive_reflectance(self, kind, bad):
        with pytest.raises(SpecsoilError, match="must be > 0"):
            to_absorbance(np.array([[0.5, bad, 0.4]]), kind)

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite(self, bad):
        with pytest.raises(SpecsoilError, match="missing or infinite"):
            to_absorbance(np.array([[0.5, bad]]), "absorbance")

    def test_unknown_kind(self):
        with pytest.raises(SpecsoilError, match="spectra_kind must be one of"):
            to_absorbance(np.ones((1, 2)), "transmittance")

    def test_out_must_be_float32(self):
        with pytest.raises(ValueError, match="out must be float32"):
            to_absorbance(np.ones((1, 2)), "absorbance", out=np.empty((1, 2)))


class TestDetectSpectraKind:
    def test_real_reflectance(self, geeves_reflectance):
        reflectance, wavelengths = geeves_reflectance
        kind, reason = detect_spectra_kind(reflectance, wavelengths)
        assert kind == "reflectance"
        assert "dips" in reason
        assert "1900" in reason

    def test_real_percent(self, geeves_reflectance):
        reflectance, wavelengths = geeves_reflectance
        kind, reason = detect_spectra_kind(100 * reflectance, wavelengths)
        assert kind == "reflectance-percent"
        assert "> 5" in reason

    def test_real_absorbance_above_reflectance_range(self, geeves_reflectance):
        reflectance, wavelengths = geeves_reflectance
        absorbance = -np.log10(reflectance) + 0.8  # a darker set of soils
        assert np.median(absorbance, axis=0).max() > 1.2  # decided by range, not by the band
        kind, reason = detect_spectra_kind(absorbance, wavelengths)
        assert (kind, "above reflectance" in reason) == ("absorbance", True)

    def test_absorbance_in_reflectance_range_is_told_by_the_water_band(self, geeves_reflectance):
        reflectance, wavelengths = geeves_reflectance
        absorbance = -np.log10(reflectance)
        absorbance *= 0.9 / absorbance.max()  # values now fit reflectance too
        kind, reason = detect_spectra_kind(absorbance, wavelengths)
        assert kind == "absorbance"
        assert "peaks" in reason

    @pytest.mark.parametrize("as_absorbance", [False, True])
    def test_350_to_1700_nm_at_5_nm_uses_the_1400_band(self, geeves_reflectance, as_absorbance):
        reflectance, wavelengths = geeves_reflectance
        grid = np.arange(350.0, 1700.1, 5.0)
        resampled = np.stack([np.interp(grid, wavelengths, r) for r in reflectance])
        values = -np.log10(resampled) if as_absorbance else resampled
        values = values * (0.9 / values.max())
        kind, reason = detect_spectra_kind(values, grid)
        assert kind == ("absorbance" if as_absorbance else "reflectance")
        assert "1400" in reason

    def test_irregular_grid(self, geeves_reflectance):
        reflectance, wavelengths = geeves_reflectance
        keep = np.sort(np.random.default_rng(3).choice(wavelengths.size, 90, replace=False))
        kind, reason = detect_spectra_kind(reflectance[:, keep], wavelengths[keep])
        assert kind == "reflectance"
        assert "water band" in reason

    def test_no_water_band_assumes_reflectance(self, geeves_reflectance):
        reflectance, wavelengths = geeves_reflectance
        visible = wavelengths <= 1000
        kind, reason = detect_spectra_kind(reflectance[:, visible], wavelengths[visible])
        assert kind == "reflectance"
        assert "assuming reflectance" in reason

    def test_flat_spectra_assume_reflectance(self):
        wavelengths = np.arange(1000.0, 2500.0, 10.0)
        kind, reason = detect_spectra_kind(np.full((3, wavelengths.size), 0.4), wavelengths)
        assert kind == "reflectance"
        assert "no clear water band" in reason

    @pytest.mark.parametrize(
        ("low", "high", "expected"),
        [(-0.3, 0.8, "absorbance"), (0.1, 2.5, "absorbance"), (3.0, 60.0, "reflectance-percent")],
    )
    def test_value_ranges(self, low, high, expected):
        wavelengths = np.arange(400.0, 1000.0, 10.0)
        values = np.tile(np.linspace(low, high, wavelengths.size), (3, 1))
        assert detect_spectra_kind(values, wavelengths)[0] == expected

    def test_nan_values_are_ignored(self, geeves_reflectance):
        reflectance, wavelengths = geeves_reflectance
        reflectance = reflectance.copy()
        reflectance[0, :5] = np.nan
        assert detect_spectra_kind(reflectance, wavelengths)[0] == "reflectance"

    def test_shape_mismatch(self):
        with pytest.raises(SpecsoilError, match="to match the wavelengths"):
            detect_spectra_kind(np.ones((2, 5)), np.arange(4.0))

    def test_no_finite_value(self):
        with pytest.raises(SpecsoilError, match="cannot tell"):
            detect_spectra_kind(np.full((2, 3), np.nan), np.array([400.0, 500.0, 600.0]))


# Clean tables for the property test: 60 real soils as reflectance, % reflectance and
# absorbance (float32, as read_spectra holds them). Built once: hypothesis reruns the test.
_GEEVES = read_spectra(GEEVES_SMALL, spectra_kind="reflectance")
_REFLECTANCE = (10.0 ** (-_GEEVES.X.astype(np.float64))).astype(np.float32)
CLEAN_TABLES = {
    "reflectance": _REFLECTANCE,
    "reflectance-percent": 100 * _REFLECTANCE,
    "absorbance": _GEEVES.X,
}


class TestRobustDetection:
    @pytest.mark.parametrize("kind", list(CLEAN_TABLES))
    def test_clean_tables(self, kind):
        assert detect_spectra_kind(CLEAN_TABLES[kind], _GEEVES.wavelengths)[0] == kind

    @pytest.mark.parametrize(("kind", "cell"), [("reflectance", -0.08), ("reflectance", 150.0)])
    def test_issue_cells(self, kind, cell):
        # These single cells turned a whole reflectance table into absorbance or % reflectance.
        values = CLEAN_TABLES[kind].copy()
        values[7, 15] = cell
        assert detect_spectra_kind(values, _GEEVES.wavelengths)[0] == kind

    def test_a_stray_row_does_not_decide(self):
        # A repeated header of bare wavelengths parses as a row of 350 ... 2500.
        values = np.vstack([CLEAN_TABLES["reflectance"], _GEEVES.wavelengths[None, :]])
        kind, reason = detect_spectra_kind(values, _GEEVES.wavelengths)
        assert kind == "reflectance"
        assert "median spectrum" in reason

    def test_median_spectrum_is_per_band(self):
        values = np.array([[1.0, 10.0], [2.0, 20.0], [300.0, 30.0]])
        assert_array_equal(median_spectrum(values), [2.0, 20.0])

    def test_median_spectrum_samples_large_tables(self):
        # More rows than the sample: still the median of evenly spread rows, NaN ignored.
        values = np.tile(np.arange(5000.0)[:, None], (1, 3))
        values[::2, 0] = np.nan
        result = median_spectrum(values)
        assert abs(result[1] - 2499.5) < 5
        assert abs(result[0] - 2500) < 5


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    kind=st.sampled_from(list(CLEAN_TABLES)),
    row=st.integers(0, _GEEVES.n_samples - 1),
    band=st.integers(0, _GEEVES.wavelengths.size - 1),
    value=st.floats(allow_nan=True, allow_infinity=True, width=32),
)
def test_one_extreme_cell_never_changes_the_kind(kind, row, band, value):
    values = CLEAN_TABLES[kind].copy()
    values[row, band] = value
    assert detect_spectra_kind(values, _GEEVES.wavelengths)[0] == kind


class TestImpossibleValues:
    @pytest.mark.parametrize(
        ("kind", "good", "bad"),
        [
            ("reflectance", [1e-4, 0.5, 1.0], [0.0, -0.08, 1.01, 150.0, np.nan, np.inf]),
            ("reflectance-percent", [0.01, 50.0, 100.0], [0.0, -1.0, 100.5, np.nan]),
            ("absorbance", [-0.5, 0.0, 3.0, 10.0], [-2.5, 10.5, 150.0, np.nan, -np.inf]),
        ],
    )
    def test_rows_holding_impossible_values(self, kind, good, bad):
        rows = np.array([[0.5 if kind != "reflectance-percent" else 50.0, v] for v in good + bad])
        assert impossible_values(rows, kind).tolist() == [False] * len(good) + [True] * len(bad)

    @pytest.mark.parametrize(
        ("value", "kind", "message"),
        [
            (0.0, "reflectance", "reflectance value 0 is not > 0"),
            (1.5, "reflectance", "reflectance value 1.5 is above 1"),
            (150.0, "reflectance-percent", "reflectance-percent value 150 is above 100"),
            (150.0, "absorbance", "absorbance value 150 is outside [-2, 10]"),
            (np.nan, "absorbance", "missing value"),
            (np.inf, "reflectance", "value inf is not finite"),
        ],
    )
    def test_descriptions(self, value, kind, message):
        assert message in describe_impossible(value, kind)

    def test_limits_cover_every_kind(self):
        assert set(VALUE_LIMITS) == {"reflectance", "reflectance-percent", "absorbance"}
