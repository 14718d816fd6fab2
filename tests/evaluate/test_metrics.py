import math
import statistics

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_squared_error, r2_score

from specsoil.evaluate import bias, ccc, r2, regression_metrics, rmse, rpd, rpiq


@pytest.fixture
def pairs():
    rng = np.random.default_rng(42)
    observed = rng.gamma(2.0, 3.0, size=57)
    predicted = observed + rng.normal(0.4, 1.5, size=57)
    return observed, predicted


def _ccc_reference(x, y):
    # Lin (1989) written with pure-Python sums, independent of the numpy implementation.
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / n
    sxx = sum((a - mx) ** 2 for a in x) / n
    syy = sum((b - my) ** 2 for b in y) / n
    return 2 * sxy / (sxx + syy + (mx - my) ** 2)


class TestGoldenValues:
    def test_r2_matches_sklearn(self, pairs):
        observed, predicted = pairs
        assert r2(observed, predicted) == pytest.approx(r2_score(observed, predicted), rel=1e-12)

    def test_rmse_matches_sklearn(self, pairs):
        observed, predicted = pairs
        expected = math.sqrt(mean_squared_error(observed, predicted))
        assert rmse(observed, predicted) == pytest.approx(expected, rel=1e-12)

    def test_bias_is_mean_prediction_minus_observation(self, pairs):
        observed, predicted = pairs
        expected = sum(float(p) - float(o) for o, p in zip(observed, predicted, strict=True))
        assert bias(observed, predicted) == pytest.approx(expected / len(observed), rel=1e-12)

    def test_rpd_uses_sample_standard_deviation(self, pairs):
        observed, predicted = pairs
        expected = statistics.stdev(observed.tolist()) / math.sqrt(
            mean_squared_error(observed, predicted)
        )
        assert rpd(observed, predicted) == pytest.approx(expected, rel=1e-12)

    def test_rpiq_matches_scipy_iqr(self, pairs):
        observed, predicted = pairs
        expected = stats.iqr(observed) / math.sqrt(mean_squared_error(observed, predicted))
        assert rpiq(observed, predicted) == pytest.approx(expected, rel=1e-12)

    def test_rpiq_hand_example(self):
        # Q1 and Q3 of 1..8 with linear interpolation: positions 1.75 and 5.25 -> 2.75 and 6.25.
        observed = np.arange(1.0, 9.0)
        predicted = observed + np.array([1.0, -1.0] * 4)  # RMSE = 1
        assert rpiq(observed, predicted) == pytest.approx(3.5)

    def test_ccc_hand_example(self):
        # By hand: s_xy = 1.375, s_x² = 1.25, s_y² = 1.8125, (mean_x - mean_y)² = 0.0625,
        # so CCC = 2.75 / 3.125 = 0.88.
        assert ccc([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.5, 5.0]) == pytest.approx(0.88)

    def test_ccc_matches_reference(self, pairs):
        observed, predicted = pairs
        expected = _ccc_reference(observed.tolist(), predicted.tolist())
        assert ccc(observed, predicted) == pytest.approx(expected, rel=1e-12)


class TestBehaviour:
    def test_r2_is_not_squared_correlation(self):
        observed = np.array([1.0, 2.0, 3.0, 4.0])
        predicted = 2.0 * observed  # perfectly correlated but far off the 1:1 line
        assert np.corrcoef(observed, predicted)[0, 1] ** 2 == pytest.approx(1.0)
        assert r2(observed, predicted) < 0.0

    def test_ccc_penalises_a_shift(self):
        observed = np.array([1.0, 2.0, 3.0, 4.0])
        assert ccc(observed, observed) == pytest.approx(1.0)
        assert ccc(observed, observed + 1.0) < 1.0

    def test_perfect_fit_gives_infinite_ratios(self):
        observed = np.array([1.0, 2.0, 3.0, 5.0])
        assert rmse(observed, observed) == 0.0
        assert rpd(observed, observed) == math.inf
        assert rpiq(observed, observed) == math.inf

    def test_constant_observations_give_nan_r2(self):
        assert math.isnan(r2([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))

    def test_accepts_single_column(self, pairs):
        observed, predicted = pairs
        assert rmse(observed[:, None], predicted[:, None]) == rmse(observed, predicted)


class TestMissingValues:
    def test_nan_pairs_are_dropped(self, pairs):
        observed, predicted = pairs
        with_gaps_obs = observed.copy()
        with_gaps_pred = predicted.copy()
        with_gaps_obs[[0, 5, 9]] = np.nan
        with_gaps_pred[[9, 20]] = np.nan
        keep = np.ones(observed.size, dtype=bool)
        keep[[0, 5, 9, 20]] = False
        got = regression_metrics(with_gaps_obs, with_gaps_pred)
        expected = regression_metrics(observed[keep], predicted[keep])
        assert got["n"] == observed.size - 4
        for name, value in expected.items():
            assert got[name] == pytest.approx(value, rel=1e-12)

    @pytest.mark.parametrize(
        ("observed", "predicted", "n"),
        [([], [], 0), ([1.0], [2.0], 1), ([1.0, np.nan, 3.0], [np.nan, 2.0, 3.0], 1)],
    )
    def test_fewer_than_two_pairs_give_nan(self, observed, predicted, n):
        got = regression_metrics(observed, predicted)
        assert got["n"] == n
        assert all(math.isnan(got[k]) for k in ("r2", "rmse", "bias", "rpd", "rpiq", "ccc"))

    def test_keys(self, pairs):
        assert list(regression_metrics(*pairs)) == [
            "n", "r2", "rmse", "bias", "rpd", "rpiq", "ccc"
        ]  # fmt: skip

    @pytest.mark.parametrize("func", [r2, rmse, bias, rpd, rpiq, ccc, regression_metrics])
    def test_length_mismatch_raises(self, func):
        with pytest.raises(ValueError, match="same length"):
            func([1.0, 2.0, 3.0], [1.0, 2.0])

    def test_two_targets_raise(self):
        with pytest.raises(ValueError, match="1-D"):
            rmse(np.ones((4, 2)), np.ones((4, 2)))
