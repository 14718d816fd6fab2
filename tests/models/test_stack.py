import json
from typing import ClassVar

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from specsoil._errors import SpecsoilError
from specsoil.data import load_dataset
from specsoil.models import (
    ChainSelectCV,
    PerTargetRegressor,
    SpectralModel,
    StackedRegressor,
    fit_details,
    make_recipe,
    stacking_weights,
)

# Light members so that the real-data tests stay fast.
LIGHT_MEMBERS = [
    {"recipe": "plsr", "params": {"max_components": 8}},
    {"recipe": "rf", "params": {"n_estimators": 15}},
]


class RecordingRegressor(RegressorMixin, BaseEstimator):
    """Least squares on columns 1: that records its fitted and predicted row ids (column 0)."""

    log: ClassVar[list[tuple[str, frozenset[int]]]] = []

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def fit(self, X, y):
        RecordingRegressor.log.append(("fit", frozenset(int(v) for v in X[:, 0])))
        self.model_ = LinearRegression().fit(X[:, 1:], y)
        return self

    def predict(self, X):
        RecordingRegressor.log.append(("predict", frozenset(int(v) for v in X[:, 0])))
        return self.model_.predict(X[:, 1:]) + self.offset


def _linear_data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 3))
    y = features @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, n)
    return np.column_stack([np.arange(n), features]), y


class TestStackingWeights:
    def test_recovers_a_convex_mixture_and_ignores_a_useless_member(self):
        rng = np.random.default_rng(0)
        a, b, noise = rng.normal(size=(3, 200))
        y = 0.7 * a + 0.3 * b
        weights = stacking_weights(np.column_stack([a, b, noise]), y, sum_to_one=True)
        assert_allclose(weights, [0.7, 0.3, 0.0], atol=1e-6)
        assert_allclose(weights.sum(), 1.0)

    def test_weights_are_never_negative(self):
        rng = np.random.default_rng(1)
        a = rng.normal(size=100)
        anti = -a + rng.normal(0, 0.1, 100)  # a negative weight would help least squares
        for sum_to_one in (True, False):
            weights = stacking_weights(np.column_stack([a, anti]), a, sum_to_one=sum_to_one)
            assert (weights >= 0).all()
        free = stacking_weights(np.column_stack([a, anti]), 2 * a, sum_to_one=False)
        assert_allclose(free, [2.0, 0.0], atol=1e-6)  # unnormalised: the scale is kept


class TestStackedRegressor:
    def test_inner_predictions_never_see_the_outer_test_rows(self):
        X, y = _linear_data()
        outer_test = set(range(60, 90))
        RecordingRegressor.log = []
        stack = StackedRegressor(
            [("a", RecordingRegressor()), ("b", RecordingRegressor(offset=1.0))], cv=3
        )
        stack.fit(X[:60], y[:60])  # the outer training rows only
        fits = [rows for kind, rows in RecordingRegressor.log if kind == "fit"]
        predictions = [rows for kind, rows in RecordingRegressor.log if kind == "predict"]
        # 2 members x 3 inner folds, then the refit of the weighted members.
        assert len(fits) == 6 + len(stack.members_)
        for rows in fits + predictions:
            assert not rows & outer_test
        # Each inner prediction is of rows its model was not fitted on (out of fold).
        for fitted, predicted in zip(fits[:6], predictions[:6], strict=True):
            assert not fitted & predicted
        covered = set().union(*predictions[:3])
        assert covered == set(range(60))
        assert np.isfinite(stack.oof_predictions_).all()

    def test_weights_are_non_negative_sum_to_one_and_shun_a_biased_member(self):
        X, y = _linear_data(seed=2)
        stack = StackedRegressor(
            [("good", RecordingRegressor()), ("biased", RecordingRegressor(offset=5.0))], cv=3
        ).fit(X, y)
        assert (stack.weights_ >= 0).all()
        assert_allclose(stack.weights_.sum(axis=1), 1.0)
        assert stack.weights_[0, 0] > 0.95
        assert "biased" not in stack.members_  # weight 0 everywhere: not refitted
        assert_allclose(
            stack.predict(X[:5]), stack.members_["good"].predict(X[:5]) * stack.weights_[0, 0]
        )
        details = fit_details(stack)
        assert set(details["weights"]) == {"good", "biased"}
        json.dumps(details, allow_nan=False)

    def test_targets_with_missing_values_get_their_own_weights(self):
        X, y = _linear_data(seed=3)
        Y = np.column_stack([y, -y])
        Y[::4, 1] = np.nan
        # Members mask missing values per target, as every specsoil model does.
        members = [
            ("a", PerTargetRegressor(RecordingRegressor())),
            ("b", PerTargetRegressor(RecordingRegressor(1.0))),
        ]
        stack = StackedRegressor(members).fit(X, Y)
        assert stack.weights_.shape == (2, 2)
        assert stack.predict(X).shape == (X.shape[0], 2)

    @pytest.mark.parametrize(
        ("members", "cv", "match"),
        [
            ([], 5, "non-empty list"),
            ([("a", LinearRegression()), ("a", LinearRegression())], 5, "unique"),
            ([("a", LinearRegression())], 1, "cv must be"),
        ],
    )
    def test_bad_settings_are_rejected(self, members, cv, match):
        X, y = _linear_data()
        with pytest.raises(ValueError, match=match):
            StackedRegressor(members, cv=cv).fit(X, y)


class TestStackRecipe:
    def test_members_and_their_settings_come_from_the_config(self):
        grid = np.arange(400.0, 2500.0, 2.0)
        pipeline = make_recipe(
            "stack",
            grid,
            params={
                "members": [
                    "mbl",
                    {
                        "recipe": "plsr",
                        "name": "plsr_snv",
                        "preprocessing": [{"name": "resample", "step": 10}, {"name": "snv"}],
                        "params": {"max_components": 12},
                    },
                ],
                "cv": 4,
                "sum_to_one": False,
            },
            random_state=7,
        )
        stack = pipeline[-1]
        assert isinstance(stack, StackedRegressor)
        assert stack.member_names == ["mbl", "plsr_snv"]
        assert (stack.cv, stack.sum_to_one, stack.random_state) == (4, False, 7)
        mbl, pls = (member for _, member in stack.members)
        assert isinstance(mbl[-1], ChainSelectCV)  # a member keeps its recipe's chain search
        assert [label for label, _ in pls.steps] == ["resample", "snv", "plsr"]
        assert pls[-1].max_components == 12

    def test_default_members_are_the_installed_classic_recipes(self):
        stack = make_recipe("stack", np.arange(400.0, 2500.0, 2.0))[-1]
        assert {"plsr", "mbl", "svr", "rf"} <= set(stack.member_names)
        assert "cnn1d" not in stack.member_names

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"members": ["stack"]}, "cannot be a member"),
            ({"members": [{"name": "x"}]}, "member 1: expected a recipe name"),
            ({"members": [{"recipe": "plsr", "param": {}}]}, r"unknown key\(s\) \['param'\]"),
            ({"members": ["pls"]}, "unknown recipe 'pls'"),
            ({"folds": 3}, r"unknown parameter\(s\) \['folds'\]"),
            ({"members": ["plsr"], "cv": 0}, "cv must be"),
        ],
    )
    def test_bad_configs_are_user_errors(self, params, match):
        with pytest.raises(SpecsoilError, match=match):
            make_recipe("stack", np.arange(400.0, 2500.0, 2.0), params=params)

    def test_saved_stack_predicts_with_intervals_and_a_domain(self, tmp_path):
        nirsoil = load_dataset("nirsoil")
        train = nirsoil.subset(np.arange(0, nirsoil.n_samples, 8))
        new = nirsoil.subset(np.arange(3, nirsoil.n_samples, 9))
        targets = ["N_total_g_kg", "CEC_meq_100g"]
        model = SpectralModel.fit(
            train,
            targets,
            recipe="stack",
            params={"members": LIGHT_MEMBERS, "cv": 3},
            conformal="cv+",
            conformal_folds=3,
        )
        weights = model.training["fit_details"]["weights"]
        assert set(weights) == {"plsr", "rf"}
        assert all(w >= 0 for values in weights.values() for w in values)
        point, lower, upper = model.predict_interval(new, 0.9)
        assert (lower <= point).all()
        assert (point <= upper).all()
        assert model.assess_domain(new).in_domain.shape == (new.n_samples,)
        loaded = SpectralModel.load(model.save(tmp_path / "stack"))
        assert_allclose(loaded.predict(new), model.predict(new))
        assert_allclose(loaded.predict_interval(new, 0.9)[1], lower)
        manifest = json.loads((tmp_path / "stack" / "manifest.json").read_text())
        assert manifest["training"]["fit_details"]["weights"] == weights
        assert isinstance(loaded.pipeline, Pipeline)
