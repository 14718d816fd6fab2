import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression

from specsoil.models import SVRCV


def _smooth_nonlinear(n=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 3))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.05 * rng.normal(size=n)
    return X, y


class TestSVRCV:
    def test_beats_linear_regression_on_a_nonlinear_function(self):
        X, y = _smooth_nonlinear()
        svr = SVRCV().fit(X[:100], y[:100])
        linear = LinearRegression().fit(X[:100], y[:100])
        rmse_svr = np.sqrt(np.mean((svr.predict(X[100:]) - y[100:]) ** 2))
        rmse_linear = np.sqrt(np.mean((linear.predict(X[100:]) - y[100:]) ** 2))
        assert rmse_svr < 0.4 * rmse_linear

    def test_best_parameters_come_from_the_grid(self):
        X, y = _smooth_nonlinear()
        model = SVRCV(C=(0.5, 50.0), gamma_factors=(0.3, 3.0), epsilon=0.05).fit(X, y)
        best = model.best_params_
        assert best["C"] in (0.5, 50.0)
        # gamma factors are relative to 1 / n_features
        assert min(abs(best["gamma"] - g) for g in (0.3 / 3, 3.0 / 3)) < 1e-12
        assert best["epsilon"] == 0.05

    def test_grid_search_uses_training_rows_only(self):
        X, y = _smooth_nonlinear()
        Y = np.column_stack([y, y])
        Y[:40, 1] = np.nan
        model = SVRCV(C=(1.0, 10.0)).fit(X, Y)
        alone = SVRCV(C=(1.0, 10.0)).fit(X[40:], y[40:])
        assert_allclose(model.predict(X)[:, 1], alone.predict(X))
        assert len(model.best_params_) == 2

    def test_invariant_to_target_units(self):
        X, y = _smooth_nonlinear()
        small = SVRCV().fit(X, y).predict(X)
        large = SVRCV().fit(X, 1000 * y + 5).predict(X)
        # Equal up to the solver tolerance (0.5 % of the spread of y here).
        assert_allclose(large, 1000 * small + 5, rtol=0, atol=5.0)

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"C": 0}, "C must be"),
            ({"C": ()}, "C must be"),
            ({"gamma_factors": "scale"}, "gamma_factors"),
            ({"epsilon": -0.1}, "epsilon"),
            ({"cv": 1}, "cv must be"),
        ],
    )
    def test_rejects_bad_parameters(self, params, match):
        X, y = _smooth_nonlinear(n=30)
        with pytest.raises(ValueError, match=match):
            SVRCV(**params).fit(X, y)
