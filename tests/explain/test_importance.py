"""Wavelength importance: VIP, PLS coefficients, integrated gradients and permutations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression

from specsoil._errors import SpecsoilError
from specsoil.explain import (
    METHOD_COEFFICIENT,
    METHOD_COEFFICIENT_PREPROCESSED,
    METHOD_PERMUTATION,
    METHOD_VIP,
    Explanation,
    explain_model,
    top_regions,
    vip_scores,
)
from specsoil.models import SpectralModel

from .conftest import TARGET_BAND_NM, band_table

# The importance peak must fall on the informative band (2200 ± 30 nm sd); permutation
# windows and derivatives move it by up to one 50 nm window.
PEAK_TOLERANCE_NM = 60.0


def peak_nm(explanation: Explanation, method: str) -> float:
    (curve,) = [c for c in explanation.curves if c.method == method]
    return float(explanation.wavelengths[np.argmax(np.abs(curve.mean))])


def band_contrast(explanation: Explanation, method: str) -> float:
    """Mean |importance| within 60 nm of the band over the median elsewhere."""
    (curve,) = [c for c in explanation.curves if c.method == method]
    near = np.abs(explanation.wavelengths - TARGET_BAND_NM) <= PEAK_TOLERANCE_NM
    values = np.abs(curve.mean)
    return float(values[near].mean() / max(np.median(values[~near]), 1e-12))


class TestVipScores:
    @pytest.mark.parametrize(("n_components", "n_targets"), [(1, 1), (3, 1), (6, 1), (4, 3)])
    def test_mean_squared_vip_is_one(self, n_components, n_targets):
        rng = np.random.default_rng(n_components)
        X = rng.normal(size=(40, 25))
        y = X[:, :n_targets] @ rng.normal(size=(n_targets, n_targets)) + rng.normal(
            0, 0.1, (40, n_targets)
        )
        vip = vip_scores(PLSRegression(n_components=n_components).fit(X, y))
        assert vip.shape == (25,)
        np.testing.assert_allclose(np.mean(vip**2), 1.0, rtol=1e-12)

    def test_informative_feature_has_the_largest_vip(self):
        rng = np.random.default_rng(1)
        X = rng.normal(size=(60, 12))
        y = 2.0 * X[:, 7] + rng.normal(0, 0.05, 60)
        vip = vip_scores(PLSRegression(n_components=2).fit(X, y))
        assert int(np.argmax(vip)) == 7
        assert vip[7] > 1.0


class TestPLSR:
    def test_vip_and_coefficient_peak_at_the_band_with_fold_spread(self, bands):
        model = SpectralModel.fit(bands, ["clay"], recipe="plsr")
        explanation = explain_model(model, bands, folds=3)
        assert explanation.n_folds == 3
        assert [c.method for c in explanation.curves] == [METHOD_VIP, METHOD_COEFFICIENT]
        # VIP is bounded (mean VIP² = 1), coefficients are not: different contrasts.
        for method, contrast in ((METHOD_VIP, 1.5), (METHOD_COEFFICIENT, 5.0)):
            assert abs(peak_nm(explanation, method) - TARGET_BAND_NM) <= PEAK_TOLERANCE_NM
            assert band_contrast(explanation, method) > contrast
        vip = explanation.curves[0]
        assert vip.folds.shape == (3, explanation.wavelengths.size)
        np.testing.assert_allclose(vip.mean, vip.folds.mean(axis=0))
        assert np.all(np.isfinite(vip.sd))
        assert np.any(vip.sd > 0)
        np.testing.assert_allclose(np.mean(vip.model**2), 1.0, rtol=1e-9)

    def test_coefficient_is_mapped_through_affine_preprocessing(self, bands):
        steps = [
            {"name": "resample", "step": 20, "method": "mean"},
            {"name": "savgol", "window_length": 5, "polyorder": 2, "deriv": 1},
        ]
        model = SpectralModel.fit(bands, ["clay"], recipe="plsr", preprocessing=steps)
        explanation = explain_model(model, bands, folds=0)
        (coef,) = [c for c in explanation.curves if c.method == METHOD_COEFFICIENT]
        # On the 20 nm grid the prediction must be linear in the resampled absorbance with
        # exactly these coefficients: differences of predictions = differences of Z @ coef.
        resampled = model.pipeline[0].transform(bands.X)
        assert resampled.shape[1] == explanation.wavelengths.size
        pred = model.predict(bands)[:, 0]
        np.testing.assert_allclose(
            pred - pred[0], (resampled - resampled[0]) @ coef.model, rtol=1e-6, atol=1e-8
        )

    def test_coefficient_after_snv_stays_on_the_preprocessed_spectra(self, bands):
        steps = [{"name": "resample", "step": 20, "method": "mean"}, {"name": "snv"}]
        model = SpectralModel.fit(bands, ["clay"], recipe="plsr", preprocessing=steps)
        methods = [c.method for c in explain_model(model, bands, folds=0).curves]
        assert methods == [METHOD_VIP, METHOD_COEFFICIENT_PREPROCESSED]

    def test_without_folds_the_spread_is_missing_and_targets_are_optional(self, bands):
        model = SpectralModel.fit(bands, ["clay"], recipe="plsr")
        unlabelled = band_table(30, seed=5)
        unlabelled.metadata.pop("clay")
        explanation = explain_model(model, unlabelled, folds=0)
        assert explanation.n_folds == 0
        vip = explanation.curves[0]
        assert vip.folds.shape == (0, explanation.wavelengths.size)
        assert np.all(np.isnan(vip.sd))
        np.testing.assert_array_equal(vip.mean, vip.model)
        frame = explanation.to_frame()
        assert list(frame.columns) == ["wavelength", "target", "method", "mean", "sd", "model"]
        assert len(frame) == 2 * explanation.wavelengths.size


class TestPermutation:
    def test_random_forest_importance_peaks_at_the_band(self, bands):
        model = SpectralModel.fit(bands, ["clay"], recipe="rf", params={"n_estimators": 40})
        explanation = explain_model(model, bands, folds=2, n_repeats=2)
        assert [c.method for c in explanation.curves] == [METHOD_PERMUTATION]
        assert abs(peak_nm(explanation, METHOD_PERMUTATION) - TARGET_BAND_NM) <= 60.0
        curve = explanation.curves[0]
        # Every band of a 50 nm window carries that window's value.
        window = (explanation.wavelengths - explanation.wavelengths[0]) // 50
        for w in np.unique(window):
            assert np.unique(curve.model[window == w]).size == 1
        assert curve.folds.shape == (2, explanation.wavelengths.size)

    def test_needs_the_target_column(self, bands):
        model = SpectralModel.fit(bands, ["clay"], recipe="rf", params={"n_estimators": 10})
        unlabelled = band_table(30, seed=5)
        unlabelled.metadata.pop("clay")
        with pytest.raises(SpecsoilError, match="unknown target 'clay'"):
            explain_model(model, unlabelled, folds=0)


@pytest.fixture(scope="module")
def plsr_model(bands):
    return SpectralModel.fit(bands, ["clay"], recipe="plsr")


class TestBadInput:
    def test_data_not_covering_the_model_range(self, plsr_model):
        narrow = band_table(30, seed=3, start=1500.0)
        with pytest.raises(SpecsoilError, match=r"bands\.csv.*1500-2490 nm.*cannot extrapolate"):
            explain_model(plsr_model, narrow, folds=0)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"folds": 1}, "folds must be 0"),
            ({"folds": -2}, "folds must be 0"),
            ({"window_nm": 0.0}, "window_nm must be"),
            ({"n_steps": 0}, "n_steps must be"),
        ],
    )
    def test_options(self, plsr_model, bands, options, message):
        with pytest.raises(SpecsoilError, match=message):
            explain_model(plsr_model, bands, **options)

    def test_too_few_lab_values_for_the_folds(self, plsr_model):
        few = band_table(12, seed=4)
        few.metadata.loc[3:, "clay"] = np.nan
        with pytest.raises(SpecsoilError, match=r"'clay' has 3 lab values.*--folds 0"):
            explain_model(plsr_model, few, folds=5)


class TestTopRegions:
    def test_runs_ranked_by_peak_with_known_bands(self):
        wavelengths = np.arange(1000.0, 2500.0, 10.0)
        values = np.zeros(wavelengths.size)
        values[(wavelengths >= 2190) & (wavelengths <= 2220)] = [1.0, 3.0, 2.0, 1.0]
        values[(wavelengths >= 1400) & (wavelengths <= 1420)] = -2.0  # signed: by magnitude
        regions = top_regions(wavelengths, values, n=5, quantile=0.95)
        assert [r.peak_nm for r in regions] == [2200.0, 1400.0]
        assert (regions[0].low_nm, regions[0].high_nm) == (2190.0, 2220.0)
        assert regions[0].bands == ("2200 Al-OH clays",)
        assert regions[1].peak == 2.0
        assert "1400 water/OH" in regions[1].bands

    def test_flat_importance_has_no_region(self):
        assert top_regions(np.arange(5.0), np.zeros(5)) == []


class TestStack:
    def test_stack_explanation_shows_the_member_weights(self, bands):
        from specsoil.explain import summary_markdown

        members = ["plsr", {"recipe": "rf", "params": {"n_estimators": 20}}]
        model = SpectralModel.fit(
            bands, ["clay"], recipe="stack", params={"members": members, "cv": 3}
        )
        explanation = explain_model(model, bands, folds=0, n_repeats=1)
        weights = explanation.member_weights["clay"]
        assert set(weights) == {"plsr", "rf"}
        assert sum(weights.values()) == pytest.approx(1.0)
        assert [c.method for c in explanation.curves] == [METHOD_PERMUTATION]
        assert abs(peak_nm(explanation, METHOD_PERMUTATION) - TARGET_BAND_NM) <= PEAK_TOLERANCE_NM
        summary = summary_markdown(explanation)
        assert "## Stack member weights" in summary
        assert "| clay | " in summary
