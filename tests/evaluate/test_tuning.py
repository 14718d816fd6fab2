"""Optuna search with inner CV: objective, pruning, leakage, shared storage, search spaces."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold

from specsoil._errors import SpecsoilError
from specsoil.evaluate import (
    ParamSpec,
    _tuning,
    default_search_space,
    parse_search_space,
    tune_recipe,
)
from specsoil.evaluate._tuning import nest_params


@pytest.fixture
def rank3():
    """(X (90, 40), Y (90, 2) with NaNs, wavelengths): X and Y driven by 3 latent scores."""
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(90, 3))
    X = scores @ rng.normal(size=(3, 40)) + 0.05 * rng.normal(size=(90, 40))
    Y = np.column_stack(
        [
            scores @ np.array([1.0, -2.0, 0.5]),
            100.0 * (scores @ np.array([0.3, 1.0, -1.0])),  # other units: weighs the same
        ]
    ) + 0.05 * rng.normal(size=(90, 2))
    Y[[3, 17, 40, 66], 1] = np.nan
    return X, Y, 1100.0 + 2.0 * np.arange(40)


def independent_score(X, Y, n_components, folds, seed):
    """Mean over folds of mean over targets of RMSE / SD, written from scratch."""
    sd = np.array([np.std(col[~np.isnan(col)]) for col in Y.T])
    fold_scores = []
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
        per_target = []
        for j in range(Y.shape[1]):
            ok_train = ~np.isnan(Y[train, j])
            model = PLSRegression(n_components=n_components, scale=False)
            model.fit(X[train][ok_train], Y[train][ok_train, j])
            ok_test = ~np.isnan(Y[test, j])
            resid = Y[test][ok_test, j] - model.predict(X[test][ok_test]).ravel()
            per_target.append(np.sqrt(np.mean(resid**2)) / sd[j])
        fold_scores.append(np.mean(per_target))
    return float(np.mean(fold_scores))


class TestObjective:
    def test_score_matches_an_independent_inner_cv(self, rank3):
        X, Y, wl = rank3
        result = tune_recipe(
            "plsr",
            X,
            Y,
            wl,
            search_space={"max_components": 1, "selection": "min"},
            preprocessing=[],
            n_trials=1,
            inner_folds=4,
            random_state=5,
        )
        expected = independent_score(X, Y, 1, folds=4, seed=5)
        assert result.best_value == pytest.approx(expected, rel=1e-5)
        assert result.best_params == {"max_components": 1, "selection": "min"}

    def test_finds_the_known_rank_and_prunes_bad_trials(self, rank3):
        X, Y, wl = rank3
        result = tune_recipe(
            "plsr",
            X,
            Y,
            wl,
            search_space={
                "max_components": {"type": "int", "low": 1, "high": 8},
                "selection": "min",
                "cv": 3,
            },
            preprocessing=[],
            n_trials=15,
            inner_folds=3,
        )
        # The signal has rank 3: fewer components underfit, more are selected down by the
        # recipe's own inner CV, so every bound >= 3 is optimal.
        assert result.best_params["max_components"] >= 3
        one_component = independent_score(X, Y, 1, folds=3, seed=0)
        assert result.best_value < 0.5 * one_component
        trials = result.trials
        assert len(trials) == result.n_trials == 15
        assert (trials["state"] == "PRUNED").any()
        pruned = trials[trials["state"] == "PRUNED"]
        assert (pruned["params_max_components"] < 3).all()

    def test_sees_only_the_rows_it_is_given(self, rank3, monkeypatch):
        X, Y, wl = rank3
        X = X.copy()
        X[:, 0] = np.arange(X.shape[0])  # row ids travel with the spectra
        given = np.arange(10, 70)
        seen: list[tuple[set[int], set[int]]] = []

        class Spy:
            def fit(self, X_fit, y):
                self.train_ids = set(X_fit[:, 0].astype(int).tolist())
                return self

            def predict(self, X_pred):
                seen.append((self.train_ids, set(X_pred[:, 0].astype(int).tolist())))
                return np.zeros((len(X_pred), 2))

        monkeypatch.setattr(_tuning, "make_recipe", lambda *a, **k: Spy())
        tune_recipe(
            "plsr",
            X[given],
            Y[given],
            wl,
            search_space={"max_components": 2},
            n_trials=1,
            inner_folds=3,
        )
        assert len(seen) == 3
        allowed = set(given.tolist())
        tested: set[int] = set()
        for train_ids, test_ids in seen:
            assert train_ids <= allowed
            assert test_ids <= allowed
            assert not train_ids & test_ids
            tested |= test_ids
        assert tested == allowed

    def test_targets_in_other_units_weigh_equally(self, rank3):
        X, Y, wl = rank3
        kwargs = dict(search_space={"max_components": 3}, preprocessing=[], n_trials=1)
        base = tune_recipe("plsr", X, Y, wl, **kwargs)
        rescaled = tune_recipe("plsr", X, Y * np.array([1.0, 1e-3]), wl, **kwargs)
        assert rescaled.best_value == pytest.approx(base.best_value, rel=1e-4)


class TestStorage:
    def test_two_workers_share_one_sqlite_study(self, rank3, tmp_path):
        X, Y, wl = rank3
        storage = f"sqlite:///{tmp_path / 'tune.db'}"
        space = {"max_components": {"type": "int", "low": 1, "high": 6}}
        first = tune_recipe(
            "plsr", X, Y, wl, search_space=space, n_trials=3, storage=storage, study_name="s"
        )
        second = tune_recipe(
            "plsr",
            X,
            Y,
            wl,
            search_space=space,
            n_trials=2,
            storage=storage,
            study_name="s",
            random_state=1,
        )
        assert first.n_trials == 3
        assert second.n_trials == 5
        assert list(second.trials["number"]) == [0, 1, 2, 3, 4]
        assert second.best_value <= first.best_value

    @pytest.mark.parametrize("storage", ["tune.db", "", "nonsense://x"])
    def test_bad_storage(self, rank3, storage):
        X, Y, wl = rank3
        with pytest.raises(SpecsoilError, match="storage"):
            tune_recipe("plsr", X, Y, wl, search_space={"max_components": 2}, storage=storage)


class TestSearchSpace:
    def test_parses_the_yaml_form(self):
        space = parse_search_space(
            {
                "lr": {"type": "float", "low": "1e-4", "high": 1e-2, "log": True},
                "module_params.dropout": {"type": "float", "low": 0, "high": 0.5},
                "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
                "max_epochs": 5,
            }
        )
        assert space["lr"] == ParamSpec("lr", "float", low=1e-4, high=1e-2, log=True)
        assert space["batch_size"].choices == (16, 32, 64)
        assert space["max_epochs"] == ParamSpec("max_epochs", "fixed", value=5)

    @pytest.mark.parametrize(
        ("spec", "match"),
        [
            ({"type": "uniform", "low": 0, "high": 1}, "type must be one of"),
            ({"type": "float", "low": 1, "high": 0}, "low=1 must be <= high=0"),
            ({"type": "float", "low": 0, "high": 1, "log": True}, "log scale needs low > 0"),
            ({"type": "float", "low": "a", "high": 1}, "'low' must be a finite number"),
            ({"type": "int", "low": 1.5, "high": 4}, "'low' must be an integer"),
            ({"type": "int", "low": 1, "high": 4, "step": 0}, "'step' must be a number > 0"),
            ({"type": "float", "low": 1, "high": 4, "step": 1, "log": True}, "cannot be combined"),
            ({"type": "categorical", "choices": []}, "'choices' must be a non-empty list"),
            ({"type": "categorical", "choices": [[1]]}, "choices must be numbers"),
            ({"type": "float", "low": 0, "high": 1, "hi": 2}, r"unknown key\(s\) \['hi'\]"),
            ({"type": "fixed"}, "needs 'value'"),
        ],
    )
    def test_bad_specs_name_the_parameter(self, spec, match):
        with pytest.raises(SpecsoilError, match=match) as info:
            parse_search_space({"lr": spec}, source="space.yaml")
        assert "space.yaml: parameter 'lr'" in str(info.value)

    @pytest.mark.parametrize("space", [{}, [1, 2], {"a..b": 1}, {"a.b.c": 1}])
    def test_bad_spaces(self, space):
        with pytest.raises(SpecsoilError, match="search space"):
            parse_search_space(space)

    @pytest.mark.parametrize("recipe", ["plsr", "svr", "mbl", "rf", "cnn1d", "cnn2d"])
    def test_defaults_exist_and_are_valid(self, recipe):
        space = default_search_space(recipe)
        assert space
        assert all(isinstance(spec, ParamSpec) for spec in space.values())

    def test_cnn_defaults_tune_training_and_dropout(self):
        space = default_search_space("cnn1d")
        assert space["lr"].log
        assert space["batch_size"].type == "categorical"
        assert space["max_epochs"].type == "fixed"
        assert "module_params.dropout" in space
        assert "module_params.dropout" not in default_search_space("seed_cnn")

    def test_unknown_recipe(self):
        with pytest.raises(SpecsoilError, match="no default search space"):
            default_search_space("nope")

    def test_nest_params(self):
        flat = {"lr": 0.1, "module_params.dropout": 0.2, "augment.noise": 0.01}
        assert nest_params(flat) == {
            "lr": 0.1,
            "module_params": {"dropout": 0.2},
            "augment": {"noise": 0.01},
        }
        with pytest.raises(SpecsoilError, match="both whole and by key"):
            nest_params({"augment": None, "augment.noise": 0.01})

    def test_unknown_parameter_of_the_recipe_fails_clearly(self, rank3):
        X, Y, wl = rank3
        with pytest.raises(SpecsoilError, match="unknown parameter"):
            tune_recipe("plsr", X, Y, wl, search_space={"n_trees": 3}, n_trials=1)


def test_cnn_tune_is_quick_and_returns_network_params(rank3):
    pytest.importorskip("torch")
    X, Y, wl = rank3
    result = tune_recipe(
        "cnn1d",
        X[:48],
        Y[:48],
        wl,
        search_space={
            "max_epochs": 2,
            "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "module_params.dropout": {"type": "float", "low": 0.0, "high": 0.5},
            "augment.noise": {"type": "float", "low": 0.0, "high": 0.05},
        },
        preprocessing=[{"name": "autoscale"}],
        n_trials=2,
        inner_folds=2,
    )
    assert set(result.best_params) == {"max_epochs", "lr", "module_params", "augment"}
    assert 0.0 <= result.best_params["module_params"]["dropout"] <= 0.5
    assert np.isfinite(result.best_value)


_WORKER = """
import sys
import numpy as np
from specsoil.evaluate import tune_recipe
rng = np.random.default_rng(0)
scores = rng.normal(size=(60, 2))
X = scores @ rng.normal(size=(2, 30)) + 0.05 * rng.normal(size=(60, 30))
y = scores @ np.array([1.0, -1.0])
tune_recipe("plsr", X, y, np.arange(30.0), search_space={
    "max_components": {"type": "int", "low": 1, "high": 5}}, n_trials=3,
    storage=sys.argv[1], study_name="shared", random_state=int(sys.argv[2]))
"""


@pytest.mark.slow  # two interpreter start-ups: about 6 s on 2 cores
def test_two_concurrent_processes_share_one_study(tmp_path):
    import subprocess
    import sys

    import optuna

    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    # Create the study first so the two workers do not race to create its tables.
    optuna.create_study(storage=storage, study_name="shared", direction="minimize")
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, storage, str(seed)]) for seed in (0, 1)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    study = optuna.load_study(study_name="shared", storage=storage)
    assert len(study.trials) == 6
    assert sorted(t.number for t in study.trials) == list(range(6))
