from typing import ClassVar

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression

from specsoil._errors import SpecsoilError
from specsoil.models import (
    STANDARD_CHAINS,
    ChainSelectCV,
    PLSRegressionCV,
    fit_details,
    make_recipe,
    recipe_preprocessing,
)
from specsoil.models._chains import chain_pipeline
from specsoil.preprocess import StandardNormalVariate

CHAINS = {name: list(steps) for name, steps in STANDARD_CHAINS.items()}


def _scattered(n=120, p=60, seed=0):
    """Spectra whose only nuisance is a multiplicative scatter factor per spectrum."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, p)
    base = 1.0 + 0.3 * np.sin(3 * grid)
    feature = np.exp(-((grid - 0.5) ** 2) / 0.01)
    y = rng.uniform(0.0, 1.0, n)
    scatter = rng.uniform(0.5, 2.0, n)[:, None]
    X = scatter * (base + 0.4 * y[:, None] * feature) + rng.normal(0, 1e-3, (n, p))
    return X, y


class RecordingRegressor(RegressorMixin, BaseEstimator):
    """Least squares that records which rows (column 0 holds the row id) it was fitted on."""

    fitted_rows: ClassVar[list[set[int]]] = []

    def fit(self, X, y):
        RecordingRegressor.fitted_rows.append({round(v) for v in X[:, 0]})
        self.model_ = LinearRegression().fit(X[:, 1:], y)
        return self

    def predict(self, X):
        return self.model_.predict(X[:, 1:])


class TestChainSelectCV:
    def test_scatter_makes_a_scatter_correcting_chain_win(self):
        X, y = _scattered()
        model = ChainSelectCV(PLSRegressionCV(max_components=10, cv=5), chains=CHAINS).fit(X, y)
        assert model.chain_ in {"snv", "snv_sg1", "msc_sg1"}
        rmse = model.chain_rmse_[0]
        assert set(rmse) == set(CHAINS)
        assert rmse[model.chain_] == min(rmse.values())
        assert rmse["absorbance"] > 2 * rmse[model.chain_]
        assert fit_details(model) == {"chain": [model.chain_]}

    def test_pls_fast_path_equals_the_plain_pls_on_that_chain(self):
        X, y = _scattered(seed=1)
        pls = PLSRegressionCV(max_components=8, cv=5, selection="min")
        model = ChainSelectCV(pls, chains={"absorbance": [], "snv": [{"name": "snv"}]}).fit(X, y)
        # SNV needs no fitting, so the curve of PLS on SNV spectra is the chain's curve.
        plain = PLSRegressionCV(max_components=8, cv=5, selection="min")
        plain.fit(StandardNormalVariate().fit_transform(X), y)
        assert model.chain_ == "snv"
        final = model.estimators_[0][-1]
        assert final.n_components_ == plain.n_components_
        assert_allclose(final.cv_rmse_, plain.cv_rmse_)
        assert_allclose(model.chain_rmse_[0]["snv"], np.nanmin(plain.cv_rmse_))
        assert_allclose(
            model.predict(X[:5]), plain.predict(StandardNormalVariate().fit_transform(X[:5]))
        )

    def test_each_target_gets_its_own_chain_and_missing_values_are_masked(self):
        X, y = _scattered(seed=2)
        Y = np.column_stack([y, X[:, 10]])  # the second target is the raw band itself
        Y[::5, 0] = np.nan
        model = ChainSelectCV(PLSRegressionCV(max_components=5, cv=5), chains=CHAINS).fit(X, Y)
        assert len(model.chain_) == 2
        assert model.chain_[1] == "absorbance"  # any transform only hides that band
        assert model.predict(X).shape == (X.shape[0], 2)

    def test_a_proxy_scores_the_chains_on_training_rows_only(self):
        X, y = _scattered(n=60, p=6, seed=3)
        X = np.column_stack([np.arange(60.0), X])  # column 0: the row id
        train = np.arange(60) < 45
        RecordingRegressor.fitted_rows = []
        # A quadratic Savitzky-Golay over 3 bands fits them exactly: the ids pass unchanged.
        exact = {"name": "savgol", "window_length": 3, "polyorder": 2}
        chains = {"absorbance": [], "smooth": [exact]}
        ChainSelectCV(RecordingRegressor(), chains=chains, cv=3).fit(X[train], y[train])
        # 2 chains x 3 inner folds, then the final fit on every training row.
        assert len(RecordingRegressor.fitted_rows) == 7
        for rows in RecordingRegressor.fitted_rows:
            assert rows <= set(range(45))
        assert RecordingRegressor.fitted_rows[-1] == set(range(45))

    def test_a_reference_chain_yields_only_to_a_significantly_better_one(self):
        X, y = _scattered(seed=5)
        pls = PLSRegressionCV(max_components=10, cv=5)
        scatter = ChainSelectCV(pls, chains=CHAINS, reference="absorbance").fit(X, y)
        assert scatter.chain_ in {"snv", "snv_sg1", "msc_sg1"}  # far better: it replaces
        rng = np.random.default_rng(6)
        clean = rng.normal(size=(80, 30))
        target = clean[:, 3] + rng.normal(0, 0.5, 80)
        # Without scatter the chains differ by noise only: the reference stays.
        kept = ChainSelectCV(pls, chains=CHAINS, reference="absorbance").fit(clean + 5.0, target)
        assert kept.chain_ == "absorbance"
        rmse = kept.chain_rmse_[0]
        assert ChainSelectCV(pls, chains=CHAINS)._choose(rmse, {}) == min(rmse, key=rmse.get)

    def test_one_chain_is_fitted_without_scoring(self):
        X, y = _scattered(seed=4)
        model = ChainSelectCV(PLSRegressionCV(max_components=4), chains={"snv": [{"name": "snv"}]})
        model.fit(X, y)
        assert model.chain_ == "snv"
        assert np.isnan(model.chain_rmse_[0]["snv"])

    def test_chain_pipelines_are_built_from_the_step_registry(self):
        pipeline = chain_pipeline(STANDARD_CHAINS["msc_sg1"], 50)
        assert [label for label, _ in pipeline.steps] == ["msc", "savgol"]
        assert [label for label, _ in chain_pipeline([], 5).steps] == ["identity"]


class TestRecipesChooseTheirChain:
    @pytest.mark.parametrize(
        ("name", "reference"),
        [("plsr", "absorbance"), ("mbl", "sg1"), ("svr", "sg1_snv"), ("cubist", "absorbance")],
    )
    def test_the_classic_recipes_choose_among_the_standard_chains(self, name, reference):
        five = ["absorbance", "snv", "sg1", "snv_sg1", "msc_sg1"]
        steps = recipe_preprocessing(name)
        assert steps[-1]["name"] == "select_chain"
        assert steps[-1]["chains"][:5] == five
        assert steps[-1]["reference"] == reference  # the recipe's earlier fixed chain
        if name == "cubist":
            pytest.importorskip("cubist")
        selector = make_recipe(name, np.arange(400.0, 1000.0, 2.0))[-1]
        assert isinstance(selector, ChainSelectCV)
        assert set(selector.chains) <= set(STANDARD_CHAINS)
        assert selector.reference == reference

    def test_the_proxies_bound_the_cost(self):
        grid = np.arange(400.0, 1000.0, 2.0)
        assert make_recipe("plsr", grid)[-1].proxy is None  # the PLS curve itself
        assert isinstance(make_recipe("mbl", grid)[-1].proxy, PLSRegressionCV)
        svr_proxy = make_recipe("svr", grid)[-1].proxy
        assert svr_proxy.regressor.named_steps["svr"].C == 10.0

    def test_a_config_fixes_or_narrows_the_chain(self):
        grid = np.arange(400.0, 1000.0, 2.0)
        fixed = make_recipe(
            "plsr", grid, preprocessing=[{"name": "resample", "step": 10}, {"name": "snv"}]
        )
        assert isinstance(fixed[-1], PLSRegressionCV)
        narrowed = make_recipe(
            "svr",
            grid,
            preprocessing=[{"name": "select_chain", "chains": ["snv", "sg1"], "cv": 3}],
        )
        assert list(narrowed[-1].chains) == ["snv", "sg1"]
        assert narrowed[-1].cv == 3

    @pytest.mark.parametrize(
        ("steps", "match"),
        [
            ([{"name": "select_chain"}, {"name": "snv"}], "must be the last step"),
            ([{"name": "select_chain", "chains": ["fft"]}], r"unknown chain\(s\) \['fft'\]"),
            ([{"name": "select_chain", "chains": []}], "non-empty list"),
            ([{"name": "select_chain", "folds": 3}], r"unknown option\(s\) \['folds'\]"),
            ([{"name": "select_chain", "cv": 1}], "cv must be"),
            (
                [{"name": "select_chain", "chains": ["snv"], "reference": "sg1"}],
                "reference must be",
            ),
        ],
    )
    def test_bad_select_steps_are_user_errors(self, steps, match):
        with pytest.raises(SpecsoilError, match=match):
            make_recipe("plsr", np.arange(400.0, 1000.0, 2.0), preprocessing=steps)
