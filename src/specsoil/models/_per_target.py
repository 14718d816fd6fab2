"""One model per soil property, each fitted on the samples whose lab value is present."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

# Fewer finite values than this and a target cannot be fitted at all (no spread to learn from).
MIN_FINITE_TARGETS = 2


def check_targets(
    y: ArrayLike | None, n_samples: int, estimator_name: str
) -> tuple[NDArray[np.float64], int]:
    """Validate a target array that may hold NaN for missing lab values.

    Args:
        y: Targets, shape (n_samples,) or (n_samples, n_targets); NaN marks a missing value.
        n_samples: Number of rows of X, which y must match.
        estimator_name: Used in the error messages.

    Returns:
        The targets as float64, always 2-D (n_samples, n_targets), and the number of
        dimensions of the y given (1 or 2), which decides the shape of predictions.

    Raises:
        ValueError: If y is missing, has infinite values, the wrong shape or length, or a
            target with fewer than two finite values.
    """
    if y is None:
        raise ValueError(f"{estimator_name} requires y to be passed, but the target y is None")
    Y = check_array(
        y,
        ensure_2d=False,
        dtype=np.float64,
        ensure_all_finite="allow-nan",
        input_name="y",
    )
    y_ndim = int(Y.ndim)
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D (n_samples, n_targets); got shape {Y.shape}")
    if Y.shape[0] != n_samples:
        raise ValueError(f"y has {Y.shape[0]} rows but X has {n_samples} samples")
    if Y.shape[1] == 0:
        raise ValueError("y has no target column")
    counts = np.isfinite(Y).sum(axis=0)
    short = np.flatnonzero(counts < MIN_FINITE_TARGETS)
    if short.size:
        j = int(short[0])
        raise ValueError(
            f"target column {j} has {int(counts[j])} finite value(s); at least "
            f"{MIN_FINITE_TARGETS} are needed to fit it (missing values are skipped per target)"
        )
    return np.asarray(Y, dtype=np.float64), y_ndim


def format_prediction(pred: NDArray[np.float64], y_ndim: int) -> NDArray[np.float64]:
    """Return predictions (n, k) as (n,) when the model was fitted on 1-D y."""
    return pred[:, 0] if y_ndim == 1 else pred


def fit_per_target(make_estimator: Callable[[], Any], X: Any, Y: NDArray[np.float64]) -> list[Any]:
    """Fit a fresh estimator per column of ``Y`` on the rows where that column is finite.

    Rows with a missing value of one property still train the models of the others, and
    missing values are never imputed.

    Args:
        make_estimator: Returns a new unfitted single-output regressor.
        X: Predictors, shape (n_samples, n_features).
        Y: Targets, shape (n_samples, n_targets), NaN where missing.

    Returns:
        The fitted estimators, one per target column.
    """
    fitted = []
    for j in range(Y.shape[1]):
        rows = np.isfinite(Y[:, j])
        estimator = make_estimator()
        if rows.all():
            estimator.fit(X, Y[:, j])
        else:
            estimator.fit(X[rows], Y[rows, j])
        fitted.append(estimator)
    return fitted


def predict_per_target(estimators: Sequence[Any], X: Any, y_ndim: int) -> NDArray[np.float64]:
    """Stack the predictions of per-target estimators into (n,) or (n, k)."""
    columns = [np.asarray(est.predict(X), dtype=np.float64).reshape(-1) for est in estimators]
    return format_prediction(np.stack(columns, axis=1), y_ndim)


class PerTargetPredictMixin:
    """``predict`` and estimator tags shared by regressors that keep one model per target.

    The host sets ``estimators_`` (one fitted model per target) and ``_y_ndim`` in ``fit``;
    ``_predict_input`` adapts the validated X for those models when they need another form.
    """

    estimators_: list[Any]
    _y_ndim: int

    def _predict_input(self, X: NDArray[np.float64]) -> Any:
        return X

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predict every target.

        Args:
            X: Predictors, shape (n_samples, n_features).

        Returns:
            Predictions, shape (n_samples,) if fitted on 1-D y, else (n_samples, n_targets).
        """
        check_is_fitted(self)
        X_checked = validate_data(self, X, dtype=np.float64, reset=False)
        return predict_per_target(self.estimators_, self._predict_input(X_checked), self._y_ndim)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class PerTargetRegressor(PerTargetPredictMixin, RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Fit one clone of a single-output regressor per target, masking missing lab values.

    Soil laboratories rarely measure every property on every sample. Instead of dropping
    whole samples or imputing values, each target's model is trained on exactly the samples
    where that target is finite, so a missing value of one property never changes the model
    of another.

    Args:
        estimator: An unfitted scikit-learn regressor for one target; it is cloned per target.

    Attributes:
        estimators_: The fitted clones, one per target column, in column order.
        n_targets_: Number of target columns seen in ``fit``.
        n_features_in_: Number of features seen in ``fit``.
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit one clone of ``estimator`` per target column.

        Args:
            X: Predictors, shape (n_samples, n_features).
            y: Targets, shape (n_samples,) or (n_samples, n_targets); NaN marks a missing
                value, which is left out of that target's training set.

        Returns:
            The fitted meta-estimator.

        Raises:
            ValueError: If a target has fewer than two finite values, or X or y are invalid.
        """
        if not (hasattr(self.estimator, "fit") and hasattr(self.estimator, "predict")):
            raise ValueError(
                f"estimator must be a scikit-learn regressor with fit and predict; "
                f"got {self.estimator!r}"
            )
        X_checked = validate_data(self, X, dtype=np.float64, ensure_min_samples=2, reset=True)
        Y, self._y_ndim = check_targets(y, X_checked.shape[0], type(self).__name__)
        self.n_targets_ = Y.shape[1]
        self.estimators_ = fit_per_target(lambda: clone(self.estimator), X_checked, Y)
        return self
