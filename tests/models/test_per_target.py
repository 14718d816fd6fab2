import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression

from specsoil.models import PerTargetRegressor


def _data(n=60, p=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    Y = np.column_stack([X @ rng.normal(size=p), X @ rng.normal(size=p) + 3.0])
    return X, Y + 0.1 * rng.normal(size=Y.shape)


class TestPerTargetRegressor:
    def test_missing_values_only_drop_rows_of_their_target(self):
        X, Y = _data()
        Y_missing = Y.copy()
        Y_missing[::3, 1] = np.nan
        model = PerTargetRegressor(LinearRegression()).fit(X, Y_missing)
        pred = model.predict(X)
        # Target 0 keeps every row; target 1 is fitted on its observed rows only.
        assert_allclose(pred[:, 0], LinearRegression().fit(X, Y[:, 0]).predict(X))
        observed = ~np.isnan(Y_missing[:, 1])
        expected = LinearRegression().fit(X[observed], Y[observed, 1]).predict(X)
        assert_allclose(pred[:, 1], expected)

    def test_missing_rows_never_influence_a_target(self):
        X, Y = _data()
        Y_missing = Y.copy()
        Y_missing[:20, 1] = np.nan
        X_changed = X.copy()
        X_changed[:20] += 100.0  # wild spectra, but their target-1 values are missing
        a = PerTargetRegressor(LinearRegression()).fit(X, Y_missing).predict(X[20:])
        b = PerTargetRegressor(LinearRegression()).fit(X_changed, Y_missing).predict(X[20:])
        assert_allclose(a[:, 1], b[:, 1])
        assert not np.allclose(a[:, 0], b[:, 0])

    def test_one_clone_per_target(self):
        X, Y = _data()
        base = LinearRegression()
        model = PerTargetRegressor(base).fit(X, Y)
        assert len(model.estimators_) == 2
        assert all(est is not base for est in model.estimators_)
        assert not hasattr(base, "coef_")
        assert model.n_targets_ == 2

    @pytest.mark.parametrize(
        ("shape", "expected"), [((60,), (60,)), ((60, 1), (60, 1)), ((60, 2), (60, 2))]
    )
    def test_prediction_shape_follows_y(self, shape, expected):
        X, Y = _data()
        y = Y[:, 0] if shape == (60,) else Y[:, : shape[1]]
        assert PerTargetRegressor(LinearRegression()).fit(X, y).predict(X).shape == expected

    def test_rejects_a_target_with_fewer_than_two_values(self):
        X, Y = _data()
        Y[1:, 1] = np.nan
        with pytest.raises(ValueError, match="target column 1 has 1 finite value"):
            PerTargetRegressor(LinearRegression()).fit(X, Y)

    def test_rejects_infinite_targets(self):
        X, Y = _data()
        Y[0, 0] = np.inf
        with pytest.raises(ValueError, match="infinity"):
            PerTargetRegressor(LinearRegression()).fit(X, Y)

    def test_rejects_mismatched_lengths(self):
        X, Y = _data()
        with pytest.raises(ValueError, match="y has 59 rows but X has 60"):
            PerTargetRegressor(LinearRegression()).fit(X, Y[1:])

    def test_rejects_a_non_estimator(self):
        X, Y = _data()
        with pytest.raises(ValueError, match="estimator must be"):
            PerTargetRegressor("ridge").fit(X, Y)
