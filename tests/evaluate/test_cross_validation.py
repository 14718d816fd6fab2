from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from specsoil.evaluate import (
    CVResult,
    Fold,
    cross_validate,
    kfold_splits,
    regression_metrics,
    train_test_column,
)

from ._estimators import MaskedLinearRegression


class RowRecorder(RegressorMixin, BaseEstimator):
    """Column 0 of X holds the row number. Records the rows it was fitted on, and predicts 1
    for any row it saw in training (a leak) and 0 otherwise."""

    log: ClassVar[list] = []  # class-level: clones made inside cross_validate all append here

    def fit(self, X, y):
        self.rows_ = set(np.asarray(X)[:, 0].astype(int).tolist())
        RowRecorder.log.append(("fit", frozenset(self.rows_)))
        return self

    def predict(self, X):
        rows = np.asarray(X)[:, 0].astype(int)
        RowRecorder.log.append(("predict", frozenset(rows.tolist())))
        return np.array([1.0 if r in self.rows_ else 0.0 for r in rows])


class NaNPredictor(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        return self

    def predict(self, X):
        out = np.zeros(len(X))
        out[0] = np.nan
        return out


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n = 60
    X = rng.normal(size=(n, 4))
    Y = np.column_stack(
        [
            X @ np.array([1.0, -0.5, 0.0, 2.0]) + rng.normal(scale=0.3, size=n),
            X @ np.array([0.0, 1.0, 1.0, 0.0]) + 5.0 + rng.normal(scale=0.5, size=n),
        ]
    )
    return X, Y


@pytest.fixture(autouse=True)
def _clear_log():
    RowRecorder.log.clear()


def _independent_oof(X, y, folds):
    """Out-of-fold predictions of ordinary least squares, fitted with numpy directly."""
    out = np.full(len(y), np.nan)
    for fold in folds:
        train = fold.train[~np.isnan(y[fold.train])]
        design = np.column_stack([np.ones(train.size), X[train]])
        coef, *_ = np.linalg.lstsq(design, y[train], rcond=None)
        out[fold.test] = np.column_stack([np.ones(fold.test.size), X[fold.test]]) @ coef
    return out


class TestCrossValidate:
    def test_kfold_covers_every_sample_once(self, data):
        X, Y = data
        folds = kfold_splits(len(X), n_splits=5)
        result = cross_validate(
            {"ols": LinearRegression(), "masked": MaskedLinearRegression()},
            X,
            Y,
            target_names=["a", "b"],
            folds=folds,
        )
        assert isinstance(result, CVResult)
        assert list(result.predictions.columns) == [
            "sample_id", "fold", "target", "model", "observed", "predicted"
        ]  # fmt: skip
        for (_, _), part in result.predictions.groupby(["model", "target"]):
            assert sorted(part["sample_id"].astype(int)) == list(range(1, 61))
        assert len(result.predictions) == 2 * 2 * 60

    def test_predictions_match_independent_least_squares(self, data):
        X, Y = data
        folds = kfold_splits(len(X), n_splits=4, random_state=1)
        ids = [f"S{i:03d}" for i in range(len(X))]
        result = cross_validate(
            {"masked": MaskedLinearRegression()},
            X,
            Y,
            target_names=["a", "b"],
            folds=folds,
            sample_ids=ids,
        )
        for j, target in enumerate(["a", "b"]):
            expected = _independent_oof(X, Y[:, j], folds)
            part = result.predictions[result.predictions["target"] == target]
            rows = part["sample_id"].str[1:].astype(int).to_numpy()
            np.testing.assert_allclose(part["predicted"], expected[rows], rtol=1e-9)
            np.testing.assert_allclose(part["observed"], Y[rows, j])
            fold_of_row = {int(r): f.name for f in folds for r in f.test}
            assert part["fold"].tolist() == [fold_of_row[r] for r in rows]
            row = result.metrics[result.metrics["target"] == target].iloc[0]
            assert row["r2"] == pytest.approx(r2_score(Y[:, j], expected), rel=1e-9)

    def test_no_test_row_is_seen_in_training(self, data):
        X, Y = data
        X = np.column_stack([np.arange(len(X)), X])
        folds = kfold_splits(len(X), n_splits=6)
        result = cross_validate(
            {"recorder": RowRecorder()}, X, Y[:, 0], target_names=["a"], folds=folds
        )
        assert (result.predictions["predicted"] == 0.0).all()  # 1.0 would mean a leak
        fits = [rows for kind, rows in RowRecorder.log if kind == "fit"]
        tests = [rows for kind, rows in RowRecorder.log if kind == "predict"]
        assert len(fits) == len(tests) == 6
        for fitted, tested, fold in zip(fits, tests, folds, strict=True):
            assert fitted == frozenset(fold.train.tolist())
            assert tested == frozenset(fold.test.tolist())
            assert not fitted & tested

    def test_estimator_itself_is_not_fitted(self, data):
        X, Y = data
        model = LinearRegression()
        cross_validate({"m": model}, X, Y[:, 0], target_names=["a"], folds=kfold_splits(60))
        assert not hasattr(model, "coef_")

    def test_missing_targets_are_excluded_and_counted(self, data):
        X, Y = data
        Y = Y.copy()
        missing = [3, 10, 11, 40, 59]
        Y[missing, 1] = np.nan
        folds = kfold_splits(len(X), n_splits=5)
        result = cross_validate(
            {"masked": MaskedLinearRegression()}, X, Y, target_names=["a", "b"], folds=folds
        )
        metrics = result.metrics.set_index("target")
        assert metrics.loc["a", "n"] == 60
        assert metrics.loc["b", "n"] == 55
        b_rows = result.predictions[result.predictions["target"] == "b"]
        assert set(b_rows["sample_id"].astype(int)) == set(range(1, 61)) - {m + 1 for m in missing}
        assert not result.predictions["observed"].isna().any()
        expected = _independent_oof(X, Y[:, 1], folds)
        keep = ~np.isnan(Y[:, 1])
        assert metrics.loc["b", "rmse"] == pytest.approx(
            np.sqrt(np.mean((expected[keep] - Y[keep, 1]) ** 2)), rel=1e-9
        )
        assert result.fold_metrics.groupby("target")["n"].sum().to_dict() == {"a": 60, "b": 55}

    def test_single_split_pooled_equals_fold(self, data):
        X, Y = data
        split = pd.Series(np.where(np.arange(60) < 45, "cal", "val"))
        folds = [train_test_column(split, column="set")]
        result = cross_validate(
            {"ols": LinearRegression()}, X, Y, target_names=["a", "b"], folds=folds
        )
        assert len(result.predictions) == 2 * 15
        pooled = result.metrics.drop(columns=["model", "target"]).to_numpy(dtype=float)
        per_fold = result.fold_metrics.drop(columns=["model", "fold", "target"]).to_numpy(
            dtype=float
        )
        np.testing.assert_allclose(pooled, per_fold)
        assert result.fold_metrics["fold"].tolist() == ["test", "test"]

    def test_tables_layout(self, data):
        X, Y = data
        folds = kfold_splits(60, n_splits=3)
        result = cross_validate(
            {"z": LinearRegression(), "a": MaskedLinearRegression()},
            X,
            Y,
            target_names=["t2", "t1"],
            folds=folds,
        )
        assert list(result.metrics.columns) == [
            "model", "target", "n", "r2", "rmse", "bias", "rpd", "rpiq", "ccc"
        ]  # fmt: skip
        # Order follows the inputs, not the alphabet.
        assert list(zip(result.metrics["model"], result.metrics["target"], strict=True)) == [
            ("z", "t2"), ("z", "t1"), ("a", "t2"), ("a", "t1")
        ]  # fmt: skip
        assert list(result.fold_metrics.columns[:4]) == ["model", "fold", "target", "n"]
        assert len(result.fold_metrics) == 2 * 3 * 2
        assert set(result.fit_seconds) == {"z", "a"}
        assert all(s >= 0.0 for s in result.fit_seconds.values())
        for _, row in result.metrics.iterrows():
            part = result.predictions[
                (result.predictions["model"] == row["model"])
                & (result.predictions["target"] == row["target"])
            ]
            expected = regression_metrics(part["observed"], part["predicted"])
            assert row["n"] == expected["n"]
            assert row["rmse"] == pytest.approx(expected["rmse"])

    def test_progress_callback(self, data):
        X, Y = data
        calls = []
        folds = kfold_splits(60, n_splits=3)
        cross_validate(
            {"m1": LinearRegression(), "m2": LinearRegression()},
            X,
            Y[:, 0],
            target_names=["a"],
            folds=folds,
            progress=lambda *args: calls.append(args),
        )
        assert [c[2:] for c in calls] == [(k, 6) for k in range(1, 7)]
        assert {(c[0], c[1]) for c in calls} == {(m, f.name) for m in ("m1", "m2") for f in folds}

    def test_parallel_gives_same_result(self, data):
        X, Y = data
        kwargs = {"target_names": ["a", "b"], "folds": kfold_splits(60, n_splits=3)}
        serial = cross_validate({"m": MaskedLinearRegression()}, X, Y, **kwargs)
        parallel = cross_validate({"m": MaskedLinearRegression()}, X, Y, n_jobs=2, **kwargs)
        pd.testing.assert_frame_equal(serial.predictions, parallel.predictions)
        pd.testing.assert_frame_equal(serial.metrics, parallel.metrics)

    def test_non_finite_predictions_warn(self, data):
        X, Y = data
        with pytest.warns(UserWarning, match="'nan' predicted 1 NaN"):
            result = cross_validate(
                {"nan": NaNPredictor()},
                X,
                Y[:, 0],
                target_names=["a"],
                folds=[train_test_column(np.arange(60) % 2, column="s")],
            )
        assert result.metrics["n"].iloc[0] == 29


class TestInputErrors:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"target_names": ["a"]}, "target_names must list 2"),
            ({"target_names": "ab"}, "target_names must list 2"),
            ({"sample_ids": ["x"] * 5}, "sample_ids must have 10"),
            ({"folds": []}, "folds is empty"),
            ({"folds": [Fold("f", np.arange(5), np.array([10]))]}, "refers to row 10"),
            (
                {"folds": [Fold("f", np.arange(5), np.arange(5, 10))] * 2},
                "fold names must be unique",
            ),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        arguments = {
            "target_names": ["a", "b"],
            "folds": kfold_splits(10, n_splits=2),
            **kwargs,
        }
        with pytest.raises(ValueError, match=match):
            cross_validate(
                {"m": LinearRegression()}, np.zeros((10, 3)), np.zeros((10, 2)), **arguments
            )

    def test_no_models(self):
        with pytest.raises(ValueError, match="estimators is empty"):
            cross_validate({}, np.zeros((4, 1)), np.zeros(4), target_names=["a"], folds=[])

    def test_y_length(self):
        with pytest.raises(ValueError, match=r"Y must have shape \(10,\)"):
            cross_validate(
                {"m": LinearRegression()},
                np.zeros((10, 3)),
                np.zeros(9),
                target_names=["a"],
                folds=kfold_splits(10, n_splits=2),
            )
