"""Stacked regression: non-negative weights on the members' out-of-fold predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil.models._chains import fit_details
from specsoil.models._per_target import check_targets, format_prediction

# Weight of the sum-to-one row appended to the NNLS system, relative to the largest
# prediction: large enough that the constraint holds to ~1e-8, small enough to keep the
# least-squares problem well conditioned.
_SUM_TO_ONE_WEIGHT = 1e4


def stacking_weights(
    predictions: NDArray[np.float64], y: NDArray[np.float64], *, sum_to_one: bool
) -> NDArray[np.float64]:
    """Non-negative least-squares weights of member predictions (Breiman, 1996).

    Args:
        predictions: Out-of-fold predictions of the members, shape (n_samples, n_members).
        y: Observed values, shape (n_samples,).
        sum_to_one: Constrain the weights to sum to 1 (a convex combination), by a heavily
            weighted extra row ``w_1 + ... + w_M = 1`` in the NNLS system.

    Returns:
        Weights, shape (n_members,), all >= 0.
    """
    A, b = predictions, y
    if sum_to_one:
        scale = _SUM_TO_ONE_WEIGHT * max(1.0, float(np.abs(predictions).max()))
        A = np.vstack([predictions, np.full((1, predictions.shape[1]), scale)])
        b = np.append(y, scale)
    weights, _ = nnls(A, b)
    if sum_to_one and weights.sum() > 0:
        weights = weights / weights.sum()  # removes the ~1e-8 slack the penalty leaves
    return np.asarray(weights, dtype=np.float64)


class StackedRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """A weighted sum of member models, the weights learnt on their out-of-fold predictions.

    Stacked regression (Wolpert, 1992; Breiman, 1996): every member is cross-validated on
    the training rows (``cv`` shuffled folds), non-negative weights are fitted per target by
    least squares of the observed values on those out-of-fold predictions, and the members
    are refitted on all training rows. Non-negative weights summing to one (Breiman's
    constrained form) make the stack a convex combination: it cannot extrapolate beyond its
    members and a poor member simply gets weight 0 instead of a compensating negative one.
    Everything happens inside ``fit``, so an outer CV that clones the stack never lets a
    test row reach the weights or the members. Members with weight 0 on every target are
    not refitted and take no part in prediction.

    Each member is any regressor taking the stack's X (typically a whole recipe pipeline
    with its own preprocessing and inner tuning) and y of shape (n,) or (n, k) with NaN for
    missing values; each target's weights use the rows where that target is present.

    Args:
        members: ``[(name, unfitted regressor), ...]``, names unique.
        cv: Number of shuffled inner folds giving the out-of-fold predictions.
        sum_to_one: Constrain each target's weights to sum to 1 (default) or leave them
            only non-negative.
        random_state: Seed of the inner fold shuffle.

    Attributes:
        weights_: Weights, shape (n_targets, n_members), in the order of ``members``.
        oof_predictions_: The members' out-of-fold predictions on the training rows, shape
            (n_samples, n_members, n_targets).
        oof_rmse_: Out-of-fold RMSE per target and member, shape (n_targets, n_members).
        members_: The refitted members by name (only those with a weight above 0).
        n_features_in_: Number of features seen in ``fit``.
    """

    def __init__(
        self,
        members: Sequence[tuple[str, Any]],
        *,
        cv: int = 5,
        sum_to_one: bool = True,
        random_state: int | None = 0,
    ) -> None:
        self.members = members
        self.cv = cv
        self.sum_to_one = sum_to_one
        self.random_state = random_state

    def _check_params(self) -> list[str]:
        if (
            isinstance(self.members, str)
            or not isinstance(self.members, Sequence)
            or len(self.members) == 0
            or not all(isinstance(m, tuple | list) and len(m) == 2 for m in self.members)
        ):
            raise ValueError(
                f"members must be a non-empty list of (name, regressor) pairs; got {self.members!r}"
            )
        names = [str(name) for name, _ in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"member names must be unique; got {names}")
        if isinstance(self.cv, bool) or not isinstance(self.cv, int | np.integer) or self.cv < 2:
            raise ValueError(f"cv must be an int >= 2; got {self.cv!r}")
        return names

    @property
    def member_names(self) -> list[str]:
        """The members' names, in order."""
        return [str(name) for name, _ in self.members]

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Cross-validate the members, learn the weights, refit the weighted members.

        Args:
            X: Spectra, shape (n_samples, n_features).
            y: Targets, shape (n_samples,) or (n_samples, n_targets); NaN marks a missing
                value.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: If a parameter, X or y is invalid.
        """
        names = self._check_params()
        X_checked = validate_data(self, X, dtype=np.float64, ensure_min_samples=2, reset=True)
        Y, y_ndim = check_targets(y, X_checked.shape[0], type(self).__name__)
        n, n_targets = Y.shape
        folds = KFold(n_splits=min(self.cv, n), shuffle=True, random_state=self.random_state)
        oof = np.full((n, len(names), n_targets), np.nan)
        for m, (_, member) in enumerate(self.members):
            for train, test in folds.split(X_checked):
                oof[test, m] = _predict(
                    clone(member).fit(X_checked[train], _y(Y[train])), X_checked[test], n_targets
                )
        weights = np.zeros((n_targets, len(names)))
        rmse = np.full((n_targets, len(names)), np.nan)
        for j in range(n_targets):
            rows = np.isfinite(Y[:, j]) & np.isfinite(oof[:, :, j]).all(axis=1)
            residuals = oof[rows, :, j] - Y[rows, j, None]
            rmse[j] = np.sqrt(np.mean(residuals**2, axis=0))
            weights[j] = stacking_weights(oof[rows, :, j], Y[rows, j], sum_to_one=self.sum_to_one)
        self._y_ndim = y_ndim
        self.weights_ = weights
        self.oof_predictions_ = oof
        self.oof_rmse_ = rmse
        self.members_ = {
            name: clone(member).fit(X_checked, _y(Y))
            for m, (name, member) in enumerate(self.members)
            if np.any(weights[:, m] > 0)
        }
        return self

    def member_predictions(self, X: ArrayLike) -> dict[str, NDArray[np.float64]]:
        """Each weighted member's predictions, shape (n_samples, n_targets), by name."""
        check_is_fitted(self)
        X_checked = validate_data(self, X, dtype=np.float64, reset=False)
        n_targets = self.weights_.shape[0]
        return {
            name: _predict(model, X_checked, n_targets) for name, model in self.members_.items()
        }

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """The weighted sum of the members' predictions.

        Args:
            X: Spectra, shape (n_samples, n_features).

        Returns:
            Predictions, shape (n_samples,) if fitted on 1-D y, else (n_samples, n_targets).
        """
        index = {name: m for m, name in enumerate(self.member_names)}
        total: NDArray[np.float64] | None = None
        for name, pred in self.member_predictions(X).items():
            part = pred * self.weights_[:, index[name]]
            total = part if total is None else total + part
        assert total is not None  # fit keeps at least one member: the weights sum to > 0
        return format_prediction(total, self._y_ndim)

    def fit_details(self) -> dict[str, Any]:
        """The weight and out-of-fold RMSE of every member per target, JSON-ready.

        Returns:
            ``{"weights": {member: [per target]}, "oof_rmse": {member: [per target]},
            "members": {member: its own fit details, e.g. its chosen chains}}``.
        """
        check_is_fitted(self)
        names = self.member_names
        return {
            "weights": {
                name: [float(w) for w in self.weights_[:, m]] for m, name in enumerate(names)
            },
            "oof_rmse": {
                name: [float(r) for r in self.oof_rmse_[:, m]] for m, name in enumerate(names)
            },
            "members": {
                name: details
                for name, model in self.members_.items()
                if (details := fit_details(model))
            },
        }

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _y(Y: NDArray[np.float64]) -> NDArray[np.float64]:
    """One target as 1-D y, the convention every regressor accepts; several as (n, k)."""
    return Y[:, 0] if Y.shape[1] == 1 else Y


def _predict(model: Any, X: NDArray[np.float64], n_targets: int) -> NDArray[np.float64]:
    return np.asarray(model.predict(X), dtype=np.float64).reshape(X.shape[0], n_targets)
