import importlib

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from specsoil._errors import SpecsoilError
from specsoil.models import (
    CubistRegressor,
    OptionalDependencyError,
    available_recipes,
    list_recipes,
    make_recipe,
)
from specsoil.models._cubist import CUBIST_MISSING


@pytest.fixture
def no_cubist(monkeypatch):
    """Make ``import cubist`` fail as if the optional extra were not installed."""
    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name == "cubist" or name.startswith("cubist."):
            raise ModuleNotFoundError("No module named 'cubist'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake)


def _piecewise(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 4))
    y = np.where(X[:, 0] > 0, 3 * X[:, 1], -2 * X[:, 2]) + 0.05 * rng.normal(size=n)
    return X, y


class TestCubistMissing:
    def test_fit_names_the_extra(self, no_cubist):
        X, y = _piecewise()
        model = CubistRegressor()  # constructing never imports
        with pytest.raises(OptionalDependencyError, match=r"pip install 'specsoil\[cubist\]'"):
            model.fit(X, y)

    def test_error_is_both_import_and_user_error(self, no_cubist):
        X, y = _piecewise()
        with pytest.raises(ImportError) as info:
            CubistRegressor().fit(X, y)
        assert isinstance(info.value, SpecsoilError)
        assert str(info.value) == CUBIST_MISSING

    def test_recipe_is_listed_but_not_available(self, no_cubist):
        assert "cubist" in list_recipes()
        assert "cubist" not in available_recipes()
        with pytest.raises(OptionalDependencyError, match=r"GPL-3\.0"):
            make_recipe("cubist", np.arange(400.0, 500.0, 10.0))


class TestCubistRegressor:
    @pytest.fixture(autouse=True)
    def _needs_cubist(self):
        pytest.importorskip("cubist")

    def test_learns_piecewise_linear_rules(self):
        X, y = _piecewise()
        model = CubistRegressor(n_committees=3).fit(X[:90], y[:90])
        rmse = np.sqrt(np.mean((model.predict(X[90:]) - y[90:]) ** 2))
        assert rmse < 0.3 * np.std(y[90:])

    def test_multi_target_with_missing_values(self):
        X, y = _piecewise()
        Y = np.column_stack([y, X[:, 3] * 2.0])
        Y[::5, 1] = np.nan
        model = CubistRegressor().fit(X, Y)
        pred = model.predict(X)
        assert pred.shape == (120, 2)
        assert np.isfinite(pred).all()
        assert len(model.estimators_) == 2

    def test_predict_does_not_warn_about_feature_names(self, recwarn):
        X, y = _piecewise()
        CubistRegressor().fit(X, y).predict(X)
        assert not [w for w in recwarn if "feature names" in str(w.message)]

    def test_survives_skops_with_its_rule_tables(self):
        X, y = _piecewise()
        model = CubistRegressor().fit(X, y)
        data = sio.dumps(model)
        loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
        np.testing.assert_allclose(loaded.predict(X), model.predict(X))
        pd.testing.assert_frame_equal(
            loaded.estimators_[0].coeffs_, model.estimators_[0].coeffs_, check_dtype=False
        )
        assert isinstance(model.estimators_[0].coeffs_, pd.DataFrame)  # the original is intact

    def test_invalid_parameter_is_reported_by_the_recipe(self):
        with pytest.raises(SpecsoilError, match="n_committees"):
            make_recipe("cubist", np.arange(400.0, 500.0, 10.0), params={"n_committees": 0})
