"""Tests for IDW, automatic variogram fitting and kriging on gstools random fields."""

from __future__ import annotations

import gstools as gs
import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.evaluate import r2, rmse
from specsoil.maps import (
    cross_validate_interpolation,
    fit_variogram,
    idw,
    make_map,
    ordinary_kriging,
)

# A field with a known variogram: exponential, sill 4, range (len_scale) 10 on a 100 x 100
# domain, so the domain spans ten ranges and the empirical variogram is well sampled.
TRUE_VAR = 4.0
TRUE_LEN = 10.0


def _field(n: int, *, nugget: float = 0.0, seed: int = 1, n_test: int = 400):
    rng = np.random.default_rng(seed)
    model = gs.Exponential(dim=2, var=TRUE_VAR, len_scale=TRUE_LEN, nugget=nugget)
    srf = gs.SRF(model, mean=20.0, seed=seed)
    x, y = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    # test points away from the edges, where kriging is interpolating rather than extrapolating
    tx, ty = rng.uniform(10, 90, n_test), rng.uniform(10, 90, n_test)
    values = srf((np.r_[x, tx], np.r_[y, ty]))
    return x, y, values[:n], tx, ty, values[n:]


@pytest.fixture(scope="module")
def field():
    return _field(600)


@pytest.fixture(scope="module")
def variogram(field):
    x, y, v, *_ = field
    return fit_variogram(x, y, v)


class TestFitVariogram:
    def test_picks_the_best_fitting_model(self, variogram):
        fit = variogram
        assert fit.r2 > 0.9
        assert set(fit.candidates) <= {"Exponential", "Spherical", "Gaussian", "Matern", "Stable"}
        assert fit.model_name == max(fit.candidates, key=lambda n: fit.candidates[n][1])
        assert fit.model is fit.candidates[fit.model_name][0]

    def test_recovers_the_known_variogram_over_realisations(self):
        # One realisation's variogram strays far from the model (its range here spans 5-16),
        # so the parameters are checked on average over independent realisations.
        sills, ranges, nuggets = [], [], []
        for seed in range(1, 7):
            x, y, v, *_ = _field(600, seed=seed, n_test=0)
            fit = fit_variogram(x, y, v, models=("Exponential",))
            sills.append(fit.params["var"] + fit.params["nugget"])
            ranges.append(fit.params["len_scale"])
            nuggets.append(fit.params["nugget"])
        assert np.mean(sills) == pytest.approx(TRUE_VAR, rel=0.2)
        assert np.mean(ranges) == pytest.approx(TRUE_LEN, rel=0.25)
        assert np.mean(nuggets) < 0.1 * TRUE_VAR

    def test_recovers_a_nugget(self):
        x, y, v, *_ = _field(600, nugget=2.0)
        fit = fit_variogram(x, y, v)
        exponential, _ = fit.candidates["Exponential"]
        assert exponential.nugget == pytest.approx(2.0, rel=0.5)

    def test_empirical_variogram_uses_a_subset_of_many_points(self):
        x, y, v, *_ = _field(3000)
        fit = fit_variogram(x, y, v)
        assert fit.empirical.n_points == 2000
        assert (fit.params["var"] + fit.params["nugget"]) == pytest.approx(TRUE_VAR, rel=0.35)

    def test_summary_is_json_ready(self, variogram):
        summary = variogram.summary()
        assert summary["model"] == variogram.model_name
        assert isinstance(summary["params"]["len_scale"], float)

    def test_constant_values_are_refused(self):
        x = np.arange(20.0)
        with pytest.raises(SpecsoilError, match="no spatial variation"):
            fit_variogram(x, x[::-1].copy(), np.full(20, 3.0))


class TestOrdinaryKriging:
    def test_predicts_held_out_field_values(self, field, variogram):
        x, y, v, tx, ty, truth = field
        estimate, variance = ordinary_kriging(x, y, v, tx, ty, variogram, neighbours=1000)
        assert r2(truth, estimate) > 0.7
        # kriging, with the right variogram, beats IDW on a Gaussian random field
        assert rmse(truth, estimate) < rmse(truth, idw(x, y, v, tx, ty))
        # the kriging variance is calibrated: mean squared error close to mean variance
        mse = np.mean((truth - estimate) ** 2)
        assert mse == pytest.approx(variance.mean(), rel=0.5)

    def test_variance_grows_away_from_the_data(self, field, variogram):
        x, y, v, *_ = field
        near_x, near_y = x[:5] + 0.01, y[:5]
        far_x, far_y = np.full(5, 300.0), np.full(5, 300.0)
        _, near = ordinary_kriging(x, y, v, near_x, near_y, variogram)
        _, far = ordinary_kriging(x, y, v, far_x, far_y, variogram)
        assert near.max() < 0.3 * TRUE_VAR
        assert far.min() > 0.9 * TRUE_VAR

    def test_local_neighbourhoods_match_global_kriging(self, field, variogram):
        x, y, v, tx, ty, _ = field
        global_estimate, global_var = ordinary_kriging(x, y, v, tx, ty, variogram, neighbours=600)
        local_estimate, local_var = ordinary_kriging(x, y, v, tx, ty, variogram, neighbours=80)
        spread = np.std(v)
        assert np.max(np.abs(local_estimate - global_estimate)) < 0.1 * spread
        assert np.allclose(local_var, global_var, rtol=0.1, atol=0.02 * TRUE_VAR)

    def test_points_along_a_transect_are_tiled_by_their_spacing(self, caplog):
        # Collinear points have no area; tiles sized from it were ~1e-7 m wide, one solve per
        # target, and their row * n_cols + col ids overflowed int64.
        n = 300
        y = np.linspace(0.0, 10_000.0, n)
        x = np.full(n, 500_000.0)
        v = np.sin(y / 1500.0) + np.random.default_rng(0).normal(0.0, 0.05, n)
        fit = fit_variogram(x, y, v)
        ty = np.tile(np.linspace(0.0, 10_000.0, 200), 2)
        tx = np.repeat([500_000.0, 500_050.0], 200)
        global_estimate, _ = ordinary_kriging(x, y, v, tx, ty, fit, neighbours=n)
        with caplog.at_level("DEBUG", logger="specsoil.maps._interpolate"):
            local_estimate, _ = ordinary_kriging(x, y, v, tx, ty, fit, neighbours=100)
        tiles = int(caplog.text.split("kriging: ")[1].split(" tiles")[0])
        assert tiles < 100  # ~5 points per tile, not one tile per target
        assert np.max(np.abs(local_estimate - global_estimate)) < 0.01


class TestIDW:
    def test_exact_at_points_and_within_range(self, field):
        x, y, v, tx, ty, _ = field
        assert np.allclose(idw(x, y, v, x[:10], y[:10]), v[:10])
        estimate = idw(x, y, v, tx, ty)
        assert estimate.min() >= v.min()
        assert estimate.max() <= v.max()

    def test_midpoint_of_two_points_is_their_mean(self):
        x = np.array([0.0, 2.0, 100.0, 100.0, 100.0])
        y = np.array([0.0, 0.0, 100.0, 90.0, 80.0])
        v = np.array([1.0, 3.0, 50.0, 50.0, 50.0])
        assert idw(x, y, v, np.array([1.0]), np.array([0.0]), neighbours=2)[0] == 2.0

    def test_rejects_bad_power(self, field):
        x, y, v, *_ = field
        with pytest.raises(SpecsoilError, match="power"):
            idw(x, y, v, x, y, power=0)
        with pytest.raises(SpecsoilError, match="neighbours"):
            idw(x, y, v, x, y, neighbours=0)

    def test_target_on_coincident_points_takes_their_mean(self):
        # two samples at one location (a field duplicate): neither should win by tree order
        x = np.array([0.0, 0.0, 10.0, 20.0, 30.0, 40.0])
        y = np.array([0.0, 0.0, 5.0, 10.0, 0.0, 30.0])
        v = np.array([1.0, 3.0, 5.0, 6.0, 7.0, 8.0])
        assert idw(x, y, v, np.array([0.0]), np.array([0.0]))[0] == pytest.approx(2.0)


class TestCrossValidation:
    def test_kriging_cv_is_accurate_and_better_than_idw(self, field, variogram):
        x, y, v, *_ = field
        kriged = cross_validate_interpolation(x, y, v, method="kriging", variogram=variogram)
        weighted = cross_validate_interpolation(x, y, v, method="idw")
        assert kriged["n"] == 600
        assert kriged["folds"] == 10
        assert kriged["r2"] > 0.6
        assert kriged["rmse"] < weighted["rmse"]
        assert len(kriged["predicted"]) == 600

    def test_leave_one_out_when_folds_exceed_points(self):
        x, y, v, *_ = _field(30)
        result = cross_validate_interpolation(x, y, v, method="idw", folds=100)
        assert result["folds"] == 30
        assert result["scheme"] == "leave-one-out"

    def test_regression_kriging_uses_the_trend(self):
        # lab = a strong non-spatial covariate signal (what spectra give) + a spatial residual
        x, y, residual, *_ = _field(400, seed=3)
        rng = np.random.default_rng(3)
        trend = rng.normal(0.0, 5.0, 400)
        lab = trend + residual
        rk_fit = fit_variogram(x, y, lab - trend)
        rk = cross_validate_interpolation(
            x, y, lab, method="regression-kriging", variogram=rk_fit, trend=trend
        )
        ok = cross_validate_interpolation(
            x, y, lab, method="kriging", variogram=fit_variogram(x, y, lab)
        )
        assert rk["r2"] > 0.9
        assert rk["rmse"] < 0.5 * ok["rmse"]


class TestMakeMap:
    def test_kriging_map_matches_the_field(self, field):
        x, y, v, *_ = field
        result = make_map(x, y, v, crs="EPSG:32755", method="kriging", resolution=5.0, folds=5)
        assert result.grid.resolution == 5.0
        assert result.values.shape == result.grid.shape
        assert result.variance is not None
        assert np.all(result.variance >= 0)
        assert np.isfinite(result.values).all()
        assert set(result.variograms) == {"values"}
        assert result.cv["r2"] > 0.6
        assert result.cv["folds"] == 5
        # the map at the cells holding points is close to their values
        rows = ((result.grid.north - y) // 5).astype(int)
        cols = ((x - result.grid.west) // 5).astype(int)
        assert r2(v, result.values[rows, cols]) > 0.8

    def test_regression_kriging_map(self):
        x, y, residual, *_ = _field(200, seed=4)
        trend = np.linspace(0, 10, 200)
        lab = trend + residual
        lab[::4] = np.nan  # spectra without lab values still inform the trend
        result = make_map(
            x,
            y,
            lab,
            crs="EPSG:32755",
            method="regression-kriging",
            trend=trend,
            resolution=10.0,
            folds=5,
        )
        assert set(result.variograms) == {"trend", "residuals"}
        assert result.cv["n"] == 150
        assert result.variance is not None

    def test_regression_kriging_cv_measures_the_map_away_from_spectra(self):
        # lab = a point signal from the spectra (no spatial structure) + a spatial residual.
        # A map cell has no spectrum, so the map cannot carry the point signal; its CV must
        # not claim it does by keeping each held-out point's own prediction as the trend.
        x, y, residual, tx, ty, residual_new = _field(400, seed=3)
        rng = np.random.default_rng(3)
        trend = rng.normal(0.0, 5.0, 400)
        result = make_map(
            x,
            y,
            trend + residual,
            crs="EPSG:32755",
            method="regression-kriging",
            trend=trend,
            resolution=5.0,
            folds=5,
        )
        rows = ((result.grid.north - ty) // 5).astype(int)
        cols = ((tx - result.grid.west) // 5).astype(int)
        lab_new = rng.normal(0.0, 5.0, tx.size) + residual_new  # new sites, never sampled
        map_rmse = rmse(lab_new, result.values[rows, cols])
        assert result.cv["rmse"] == pytest.approx(map_rmse, rel=0.3)

    def test_idw_has_no_variance(self, field):
        x, y, v, *_ = field
        result = make_map(x, y, v, crs="EPSG:32755", method="idw", resolution=10.0, folds=0)
        assert result.variance is None
        assert result.cv == {}
        assert not result.variograms

    def test_errors(self, field):
        x, y, v, *_ = field
        with pytest.raises(SpecsoilError, match="unknown method"):
            make_map(x, y, v, crs="EPSG:32755", method="spline")  # type: ignore[arg-type]
        with pytest.raises(SpecsoilError, match="trend"):
            make_map(x, y, v, crs="EPSG:32755", method="regression-kriging")
        few = np.full(x.size, np.nan)
        few[:3] = 1.0
        with pytest.raises(SpecsoilError, match="at least 5"):
            make_map(x, y, few, crs="EPSG:32755", method="idw")
