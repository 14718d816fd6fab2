"""Cubist rule-based regression, a thin wrapper over the optional GPL ``cubist`` package."""

from __future__ import annotations

import copy
import importlib
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import validate_data

from specsoil._errors import SpecsoilError
from specsoil.models._per_target import PerTargetPredictMixin, check_targets, fit_per_target

CUBIST_MISSING = "Cubist needs the optional extra: pip install 'specsoil[cubist]' (GPL-3.0)"


class OptionalDependencyError(SpecsoilError, ImportError):
    """An optional extra needed by the chosen model is not installed.

    Both a :class:`SpecsoilError` (the CLI reports it as a usage error) and an
    ``ImportError`` (what callers checking for a missing package expect).
    """


def cubist_available() -> bool:
    """Return True when the optional ``cubist`` package can be imported."""
    try:
        importlib.import_module("cubist")
    except ImportError:
        return False
    return True


def _cubist_class() -> Any:
    try:
        module = importlib.import_module("cubist")
    except ImportError:
        raise OptionalDependencyError(CUBIST_MISSING) from None
    return module.Cubist


def _named(X: NDArray[np.float64]) -> pd.DataFrame:
    """Return X as a DataFrame with fixed column names.

    Cubist names unnamed columns itself in fit, then warns in predict that the (unnamed)
    array lacks those names.
    """
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])], copy=False)


# Marks a DataFrame stored as plain lists, see CubistRegressor.__getstate__.
_FRAME_KEY = "__specsoil_dataframe__"


def _portable(model: Any) -> Any:
    """A shallow copy of a fitted Cubist whose DataFrame attributes are plain lists."""
    clone = copy.copy(model)
    for name, value in vars(model).items():
        if isinstance(value, pd.DataFrame):
            setattr(clone, name, {_FRAME_KEY: value.to_dict(orient="split")})
    return clone


def _restored(model: Any) -> Any:
    for name, value in vars(model).items():
        if isinstance(value, dict) and _FRAME_KEY in value:
            setattr(model, name, pd.DataFrame(**value[_FRAME_KEY]))
    return model


class CubistRegressor(PerTargetPredictMixin, RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Cubist model trees (Quinlan, 1992, 1993) per target, via the ``cubist`` package.

    A rule-based model whose rules end in linear models, optionally boosted into committees
    and corrected by nearest training neighbours. This wrapper adds what the rest of specsoil
    expects: several targets at once, each fitted on the rows where it is present. The
    ``cubist`` package is GPL-3.0, so it is an optional extra of this Apache-2.0 package.

    Args:
        n_rules: Most rules per model.
        n_committees: Number of boosted committee members (1 = a single model).
        neighbors: Training neighbours (1-9) used to adjust each prediction; None for none.
        unbiased: Make each rule's linear model unbiased.
        extrapolation: How far predictions may go beyond the training range (fraction).
        random_state: Seed of Cubist's sampling.

    Attributes:
        estimators_: The fitted ``cubist.Cubist`` model per target.
        n_features_in_: Number of features seen in ``fit``.
    """

    def __init__(
        self,
        n_rules: int = 500,
        *,
        n_committees: int = 1,
        neighbors: int | None = None,
        unbiased: bool = False,
        extrapolation: float = 0.05,
        random_state: int | None = 0,
    ) -> None:
        self.n_rules = n_rules
        self.n_committees = n_committees
        self.neighbors = neighbors
        self.unbiased = unbiased
        self.extrapolation = extrapolation
        self.random_state = random_state

    def _check_params(self) -> Any:
        """Return the ``cubist.Cubist`` class after checking the parameters against it."""
        cubist = _cubist_class()
        cubist(**self._cubist_params())._validate_params()
        return cubist

    def _cubist_params(self) -> dict[str, Any]:
        return {
            "n_rules": self.n_rules,
            "n_committees": self.n_committees,
            "neighbors": self.neighbors,
            "unbiased": self.unbiased,
            "extrapolation": self.extrapolation,
            "random_state": self.random_state,
        }

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit one Cubist model per target on the rows where that target is present.

        Args:
            X: Predictors, shape (n_samples, n_features).
            y: Targets, shape (n_samples,) or (n_samples, n_targets); NaN marks a missing
                value.

        Returns:
            The fitted estimator.

        Raises:
            OptionalDependencyError: If the ``cubist`` package is not installed.
            ValueError: If X, y or a parameter is invalid (as reported by Cubist).
        """
        cubist = self._check_params()
        X_checked = validate_data(self, X, dtype=np.float64, ensure_min_samples=2, reset=True)
        Y, y_ndim = check_targets(y, X_checked.shape[0], type(self).__name__)
        self._y_ndim = y_ndim

        params = self._cubist_params()
        self.estimators_ = fit_per_target(lambda: cubist(**params), _named(X_checked), Y)
        return self

    def _predict_input(self, X: NDArray[np.float64]) -> Any:
        return _named(X)  # Cubist needs column names

    def __getstate__(self) -> dict[str, Any]:
        # A fitted Cubist keeps its rules and statistics as DataFrames, which skops (the
        # safe format specsoil saves models in) cannot store; they travel as plain lists.
        state: dict[str, Any] = super().__getstate__()
        if "estimators_" in state:
            state = {**state, "estimators_": [_portable(m) for m in state["estimators_"]]}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "estimators_" in state:
            state = {**state, "estimators_": [_restored(m) for m in state["estimators_"]]}
        super().__setstate__(state)
