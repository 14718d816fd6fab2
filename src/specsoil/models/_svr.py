"""Support vector regression tuned by an inner grid search on the training data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.utils.validation import validate_data

from specsoil.models._per_target import PerTargetPredictMixin, check_targets, fit_per_target


def _positive_floats(value: object, name: str) -> tuple[float, ...]:
    values = (value,) if isinstance(value, int | float) else value
    if (
        isinstance(values, str)
        or not isinstance(values, Sequence)
        or len(values) == 0
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in values)
    ):
        raise ValueError(
            f"{name} must be a number > 0 or a non-empty sequence of them; got {value!r}"
        )
    return tuple(float(v) for v in values)


class SVRCV(PerTargetPredictMixin, RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """RBF support vector regression per target, with C and gamma tuned by inner CV.

    Each target gets ``StandardScaler -> SVR(kernel="rbf")`` with y standardised too
    (``TransformedTargetRegressor``), so one grid suits any units of X and y. C, the RBF
    width and epsilon are chosen by a grid search with shuffled K-fold CV on the training
    rows of that target only (lowest RMSE). The RBF widths are given as multiples of
    scikit-learn's ``gamma="scale"`` heuristic, 1 / (n_features * var(X)), which is 1 /
    n_features after autoscaling, so the grid does not depend on the number of bands. The
    default 3 x 3 decade grid centred on that heuristic and on C = 10 (for standardised y)
    follows the coarse-grid advice of Hsu, Chang & Lin (2003, "A practical guide to support
    vector classification"); a wider grid costs time and, on a few hundred samples, adds
    selection noise rather than accuracy.

    Args:
        C: Candidate regularisation constants (for standardised y).
        gamma_factors: Candidate RBF widths, as multiples of 1 / n_features.
        epsilon: Candidate widths of the insensitive tube, in standard deviations of y.
        cv: Number of inner folds.
        random_state: Seed of the inner fold shuffle.

    Attributes:
        estimators_: The fitted ``GridSearchCV`` per target (``best_params_`` inside).
        best_params_: The chosen parameters per target: a dict for 1-D y, else a list.
        n_features_in_: Number of features seen in ``fit``.
    """

    def __init__(
        self,
        C: float | Sequence[float] = (1.0, 10.0, 100.0),
        *,
        gamma_factors: float | Sequence[float] = (0.1, 1.0, 10.0),
        epsilon: float | Sequence[float] = (0.1,),
        cv: int = 5,
        random_state: int | None = 0,
    ) -> None:
        self.C = C
        self.gamma_factors = gamma_factors
        self.epsilon = epsilon
        self.cv = cv
        self.random_state = random_state

    def _check_params(self) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        if isinstance(self.cv, bool) or not isinstance(self.cv, int | np.integer) or self.cv < 2:
            raise ValueError(f"cv must be an int >= 2; got {self.cv!r}")
        return (
            _positive_floats(self.C, "C"),
            _positive_floats(self.gamma_factors, "gamma_factors"),
            _positive_floats(self.epsilon, "epsilon"),
        )

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Tune and fit one SVR per target on the rows where that target is present.

        Args:
            X: Predictors, shape (n_samples, n_features).
            y: Targets, shape (n_samples,) or (n_samples, n_targets); NaN marks a missing
                value.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: If a parameter, X or y is invalid.
        """
        c_grid, gamma_grid, eps_grid = self._check_params()
        X_checked = validate_data(self, X, dtype=np.float64, ensure_min_samples=2, reset=True)
        Y, y_ndim = check_targets(y, X_checked.shape[0], type(self).__name__)
        n_features = X_checked.shape[1]
        grid = {
            "regressor__svr__C": list(c_grid),
            "regressor__svr__gamma": [g / n_features for g in gamma_grid],
            "regressor__svr__epsilon": list(eps_grid),
        }
        finite_counts = np.isfinite(Y).sum(axis=0)

        def make_for(n_rows: int) -> Any:
            model = TransformedTargetRegressor(
                regressor=Pipeline([("scale", StandardScaler()), ("svr", SVR(kernel="rbf"))]),
                transformer=StandardScaler(),
            )
            folds = KFold(
                n_splits=min(self.cv, n_rows), shuffle=True, random_state=self.random_state
            )
            return GridSearchCV(
                model, grid, scoring="neg_root_mean_squared_error", cv=folds, refit=True
            )

        counts = iter(finite_counts)
        self._y_ndim = y_ndim
        self.estimators_ = fit_per_target(lambda: make_for(int(next(counts))), X_checked, Y)
        best = [
            {key.rsplit("__", 1)[1]: value for key, value in est.best_params_.items()}
            for est in self.estimators_
        ]
        self.best_params_: dict[str, Any] | list[dict[str, Any]] = (
            best[0] if self._y_ndim == 1 else best
        )
        return self
