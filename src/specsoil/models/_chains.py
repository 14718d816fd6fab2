"""Preprocessing chosen inside the training rows: one chain per target, by inner CV."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil.models._per_target import PerTargetPredictMixin, check_targets
from specsoil.models._pls import PLSRegressionCV, select_n_components
from specsoil.preprocess import make_preprocessing


def chain_pipeline(steps: Sequence[Mapping[str, Any]], n_features: int) -> Pipeline:
    """The unfitted transformer of one chain (steps as data; none of them needs the grid)."""
    pipeline, _ = make_preprocessing(steps, np.arange(n_features, dtype=np.float64))
    return pipeline


class ChainSelectCV(PerTargetPredictMixin, RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Per target, the preprocessing chain with the lowest inner-CV RMSE, then the estimator.

    Soil properties differ in what spoils their spectra: scatter matters for clay, baseline
    offsets for carbon, and which of SNV, MSC or a derivative helps differs between
    libraries. So the chain is chosen like any other hyper-parameter, by cross-validation
    on the training rows only, separately for every target. Each chain is scored by a
    ``proxy``, whose cost bounds the search:

    - a :class:`PLSRegressionCV` proxy (the estimator itself for ``plsr``) scores each chain
      by its own component curve: one PLS fit per inner fold and chain, every smaller model
      read off by truncation, so the chain and the number of components are chosen jointly
      from the same inner folds. The chain is fitted inside each inner fold (an MSC
      reference never sees that fold's test rows).
    - any other proxy (a cheap setting of the estimator, say) is fitted on ``cv`` shuffled
      inner folds per chain and scored by its pooled out-of-fold RMSE.

    The estimator is then fitted, with its own tuning, on the chosen chain of all the
    target's training rows (for a PLS estimator scored by itself, straight from the curve
    already computed).

    Args:
        estimator: The unfitted regressor fitted after the chosen chain.
        chains: Candidate chains by name: each a list of preprocessing steps as data (see
            :func:`specsoil.preprocess.make_preprocessing`); ``[]`` is no preprocessing.
        proxy: The unfitted regressor that scores the chains; None scores them with the
            estimator itself.
        cv: Inner folds for a proxy that is not a PLSRegressionCV.
        random_state: Seed of those inner folds.

    Attributes:
        chain_: The chosen chain's name: a str for 1-D y, else a list (n_targets,).
        chain_rmse_: Inner-CV RMSE of every chain by name, per target (a list of dicts).
        estimators_: Per target, the fitted ``Pipeline(chain steps..., estimator)``.
        n_features_in_: Number of features seen in ``fit``.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        chains: Mapping[str, Sequence[Mapping[str, Any]]],
        proxy: Any = None,
        cv: int = 5,
        random_state: int | None = 0,
    ) -> None:
        self.estimator = estimator
        self.chains = chains
        self.proxy = proxy
        self.cv = cv
        self.random_state = random_state

    def _check_params(self) -> None:
        if not isinstance(self.chains, Mapping) or not self.chains:
            raise ValueError(
                f"chains must be a non-empty mapping of name to steps; got {self.chains!r}"
            )
        if isinstance(self.cv, bool) or not isinstance(self.cv, int | np.integer) or self.cv < 2:
            raise ValueError(f"cv must be an int >= 2; got {self.cv!r}")
        for _name, steps in self.chains.items():
            chain_pipeline(steps, 1000)  # raises for an unknown step or option, before any data

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Choose a chain per target on the training rows, then fit the estimator after it.

        Args:
            X: Spectra, shape (n_samples, n_features).
            y: Targets, shape (n_samples,) or (n_samples, n_targets); NaN marks a missing
                value, left out of that target's model.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: If a parameter, X or y is invalid.
        """
        self._check_params()
        X_checked = validate_data(self, X, dtype=np.float64, ensure_min_samples=2, reset=True)
        Y, y_ndim = check_targets(y, X_checked.shape[0], type(self).__name__)
        chosen: list[str] = []
        scores: list[dict[str, float]] = []
        estimators: list[Pipeline] = []
        for j in range(Y.shape[1]):
            rows = np.isfinite(Y[:, j])
            name, rmse, fitted = self._fit_target(X_checked[rows], Y[rows, j])
            chosen.append(name)
            scores.append(rmse)
            estimators.append(fitted)
        self._y_ndim = y_ndim
        self.estimators_ = estimators
        self.chain_rmse_ = scores
        self.chain_: str | list[str] = chosen[0] if y_ndim == 1 else chosen
        return self

    def _fit_target(
        self, X: NDArray[np.float64], y: NDArray[np.float64]
    ) -> tuple[str, dict[str, float], Pipeline]:
        """The chosen chain, every chain's inner-CV RMSE and the fitted pipeline of one target."""
        pipelines = {name: chain_pipeline(steps, X.shape[1]) for name, steps in self.chains.items()}
        proxy = self.estimator if self.proxy is None else self.proxy
        rmse: dict[str, float] = {}
        curves: dict[str, NDArray[np.float64] | None] = {}
        if len(pipelines) == 1:
            rmse = {name: float("nan") for name in pipelines}  # nothing to choose
        elif isinstance(proxy, PLSRegressionCV):
            for name, chain in pipelines.items():
                curve = proxy.cv_residuals(X, y, chain=chain)
                curves[name] = curve
                rmse[name] = _pls_rmse(curve, proxy)
        else:
            splits = list(
                KFold(
                    n_splits=min(self.cv, y.size), shuffle=True, random_state=self.random_state
                ).split(X)
            )
            for name, chain in pipelines.items():
                rmse[name] = _cv_rmse(
                    Pipeline([*clone(chain).steps, ("proxy", proxy)]), X, y, splits
                )
        # The first chain wins ties and a proxy that scored nothing (NaN).
        name = min(
            rmse, key=lambda n: (not np.isfinite(rmse[n]), rmse[n] if np.isfinite(rmse[n]) else 0.0)
        )
        chain = clone(pipelines[name]).fit(X)
        estimator = clone(self.estimator)
        X_chain = chain.transform(X)
        if name in curves and proxy is self.estimator:
            estimator.fit_with_residuals(X_chain, y, curves[name])  # the curve is the estimator's
        else:
            estimator.fit(X_chain, y)
        return name, rmse, Pipeline([*chain.steps, ("estimator", estimator)])

    def fit_details(self) -> dict[str, Any]:
        """What the training rows chose, JSON-ready: the chain of every target (in order)."""
        check_is_fitted(self)
        return {"chain": [str(p_name) for p_name in np.atleast_1d(self.chain_)]}


def _pls_rmse(curve: NDArray[np.float64] | None, pls: PLSRegressionCV) -> float:
    """Inner-CV RMSE at the number of components the PLS estimator's own rule picks."""
    if curve is None:
        return float("nan")
    count = select_n_components(curve, pls.selection, random_state=pls.random_state)
    return float(np.sqrt(np.mean(curve[:, count - 1] ** 2)))


def _cv_rmse(
    model: Any,
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    splits: list[tuple[NDArray[np.intp], NDArray[np.intp]]],
) -> float:
    """Pooled out-of-fold RMSE of ``model`` over ``splits``."""
    residuals = np.empty(y.size)
    for train, test in splits:
        fitted = clone(model).fit(X[train], y[train])
        residuals[test] = (
            np.asarray(fitted.predict(X[test]), dtype=np.float64).reshape(-1) - y[test]
        )
    return float(np.sqrt(np.mean(residuals**2)))


def fit_details(model: Any) -> dict[str, Any]:
    """What a fitted model chose in training (chains, stack weights), JSON-ready.

    Args:
        model: A fitted estimator or pipeline; a pipeline is asked through its last step.

    Returns:
        The final estimator's ``fit_details()``, or ``{}`` when it chooses nothing worth
        reporting. Per-target entries are lists in target order.
    """
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    details = getattr(final, "fit_details", None)
    return dict(details()) if callable(details) else {}
