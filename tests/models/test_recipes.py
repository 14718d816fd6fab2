import numpy as np
import pytest
import skops.io as sio
from numpy.testing import assert_allclose
from sklearn.cross_decomposition import PLSRegression
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import Pipeline

from specsoil._errors import SpecsoilError
from specsoil.models import (
    MemoryBasedLearning,
    PerTargetRegressor,
    PLSRegressionCV,
    available_recipes,
    default_recipes,
    list_recipes,
    make_recipe,
    recipe_description,
    recipe_estimator,
    recipe_preprocessing,
)
from specsoil.preprocess import list_preprocessing_steps

RECIPES = list_recipes()


def _runnable(name):
    if name not in available_recipes():
        pytest.skip(f"optional dependency of recipe {name!r} is not installed")


class TestRegistry:
    def test_lists_the_classic_and_cnn_recipes(self):
        assert RECIPES == [
            "cnn1d",
            "cnn1d2d",
            "cnn2d",
            "cubist",
            "gru1d",
            "lstm1d",
            "mbl",
            "plsr",
            "rf",
            "seed_cnn",
            "stack",
            "svr",
            "transformer1d",
        ]
        assert set(available_recipes()) <= set(RECIPES)

    def test_cv_defaults_to_the_installed_classic_recipes_and_cnn1d(self):
        assert set(default_recipes()) <= {"plsr", "cubist", "rf", "svr", "mbl", "cnn1d"}
        assert {"plsr", "rf", "svr", "mbl"} <= set(default_recipes())
        assert ("cnn1d" in default_recipes()) == ("cnn1d" in available_recipes())

    @pytest.mark.parametrize("name", RECIPES)
    def test_default_preprocessing_is_data_for_make_preprocessing(self, name):
        steps = recipe_preprocessing(name)
        if name == "stack":  # each member resamples in its own pipeline
            assert steps == []
        else:
            assert steps[0] == {"name": "resample", "step": 10, "method": "mean"}
        known = {*list_preprocessing_steps(), "select_chain"}
        assert {step["name"] for step in steps} <= known
        assert recipe_description(name)

    def test_preprocessing_is_a_fresh_copy(self):
        steps = recipe_preprocessing("mbl")
        steps[0]["step"] = 99
        steps.append({"name": "snv"})
        assert recipe_preprocessing("mbl")[0]["step"] == 10
        assert len(recipe_preprocessing("mbl")) == 2

    def test_unknown_recipe_lists_the_recipes(self):
        with pytest.raises(SpecsoilError, match=r"unknown recipe 'pls'.*'plsr'"):
            make_recipe("pls", np.arange(400.0, 1000.0, 10.0))
        with pytest.raises(SpecsoilError, match="available recipes"):
            recipe_preprocessing("cnn")


class TestMakeRecipe:
    @pytest.mark.parametrize("name", RECIPES)
    @pytest.mark.parametrize("dataset", ["geeves_subset", "nirsoil_subset"])
    def test_fits_and_predicts_real_spectra(self, name, dataset, request):
        _runnable(name)
        X, Y, wavelengths = request.getfixturevalue(dataset)
        Y = Y.copy()
        Y[::7, 0] = np.nan  # missing lab values are masked, never imputed
        train = np.arange(X.shape[0]) < 60
        pipeline = make_recipe(name, wavelengths, params=_small(name))
        assert isinstance(pipeline, Pipeline)
        assert pipeline.steps[-1][0] == name
        pipeline.fit(X[train], Y[train])
        pred = pipeline.predict(X[~train])
        assert pred.shape == (int((~train).sum()), 2)
        assert np.isfinite(pred).all()
        # Fitted recipes must survive skops, the format saved models use.
        data = sio.dumps(pipeline)
        loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
        assert_allclose(loaded.predict(X[~train]), pred)

    def test_params_override_the_estimator(self):
        pipeline = make_recipe("plsr", np.arange(400.0, 1000.0), params={"max_components": 7})
        model = pipeline[-1].estimator  # inside the chain selection
        assert isinstance(model, PLSRegressionCV)
        assert model.max_components == 7

    def test_plsr_recipe_takes_the_lowest_ten_fold_inner_cv_error(self, geeves_subset):
        X, Y, wavelengths = geeves_subset
        fixed = [{"name": "resample", "step": 10, "method": "mean"}]  # absorbance, no choice
        pipeline = make_recipe(
            "plsr", wavelengths, preprocessing=fixed, params={"max_components": 12}
        )
        pipeline.fit(X, Y[:, 0])
        model = pipeline[-1]
        curve = model.cv_rmse_
        assert model.n_components_ == int(np.argmin(curve)) + 1
        # The curve is plain shuffled 10-fold CV of refitted PLS models on the recipe's
        # 10 nm features, recomputed here with scikit-learn alone.
        Z = pipeline[:-1].transform(X)
        folds = KFold(n_splits=10, shuffle=True, random_state=0)
        for n_components in (1, 5, 12):
            pred = cross_val_predict(PLSRegression(n_components, scale=False), Z, Y[:, 0], cv=folds)
            rmse = np.sqrt(np.mean((pred.ravel() - Y[:, 0]) ** 2))
            assert_allclose(curve[n_components - 1], rmse, rtol=1e-6)

    def test_rf_params_reach_the_forest_inside_the_per_target_wrapper(self):
        pipeline = make_recipe("rf", np.arange(400.0, 1000.0), params={"n_estimators": 12})
        wrapper = pipeline[-1]
        assert isinstance(wrapper, PerTargetRegressor)
        assert isinstance(wrapper.estimator, RandomForestRegressor)
        assert wrapper.estimator.n_estimators == 12

    @pytest.mark.parametrize("name", RECIPES)
    def test_random_state_is_passed_on(self, name):
        _runnable(name)
        if name == "stack":
            pytest.skip("the stack is built by make_recipe (see tests/models/test_stack.py)")
        model = recipe_estimator(name, random_state=11)
        inner = model.estimator if isinstance(model, PerTargetRegressor) else model
        if "random_state" in inner.get_params():
            assert inner.get_params()["random_state"] == 11

    def test_explicit_params_win_over_random_state(self):
        model = recipe_estimator("mbl", params={"random_state": 3}, random_state=11)
        assert isinstance(model, MemoryBasedLearning)
        assert model.random_state == 3

    def test_preprocessing_override(self):
        wavelengths = np.arange(1100.0, 2500.0, 2.0)
        pipeline = make_recipe("plsr", wavelengths, preprocessing=[{"name": "snv"}])
        assert [label for label, _ in pipeline.steps] == ["snv", "plsr"]
        bare = make_recipe("plsr", wavelengths, preprocessing=[])
        assert len(bare.steps) == 2  # identity, then the model

    def test_unknown_param_lists_the_valid_ones(self):
        with pytest.raises(
            SpecsoilError, match=r"unknown parameter\(s\) \['n_comp'\].*max_components"
        ):
            make_recipe("plsr", np.arange(400.0, 1000.0), params={"n_comp": 5})

    @pytest.mark.parametrize(
        ("name", "params", "match"),
        [
            ("plsr", {"max_components": 0}, "max_components"),
            ("plsr", {"selection": "best"}, "selection"),
            ("mbl", {"k": "many"}, "k must be"),
            ("mbl", {"pls_components": [9, 2]}, "pls_components"),
            ("svr", {"C": -1}, "C must be"),
            ("rf", {"n_estimators": 0}, "n_estimators"),
        ],
    )
    def test_invalid_param_values_fail_before_fitting(self, name, params, match):
        with pytest.raises(SpecsoilError, match=match):
            make_recipe(name, np.arange(400.0, 1000.0), params=params)

    def test_bad_preprocessing_is_a_user_error(self):
        with pytest.raises(SpecsoilError, match="unknown step"):
            make_recipe("plsr", np.arange(400.0, 1000.0), preprocessing=[{"name": "fft"}])

    def test_yaml_style_lists_are_accepted(self):
        model = recipe_estimator("mbl", params={"k": [10, 20], "pls_components": [2, 5]})
        assert model.k == [10, 20]


def _small(name):
    """Lighter settings so the real-data smoke test stays fast; defaults are tested above."""
    cnn = {"max_epochs": 2, "batch_size": 16}
    return {
        "rf": {"n_estimators": 20},
        "cubist": {"n_committees": 2},
        "cnn1d": cnn,
        "cnn1d2d": cnn,
        "cnn2d": cnn,
        "seed_cnn": cnn,
        "lstm1d": cnn,
        "gru1d": cnn,
        "transformer1d": cnn,
        "stack": {"members": ["plsr", {"recipe": "rf", "params": {"n_estimators": 10}}], "cv": 3},
    }.get(name, {})
