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

# Random sign flips of the paired test that a chain must pass to replace the reference.
_N_PERMUTATIONS = 999


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
        reference: The chain kept unless another is significantly better (see
            ``_choose``); None takes the lowest inner-CV RMSE.
        alpha: Significance level of that one-sided paired test.
        random_state: Seed of those inner folds and of the test's sign flips.

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
        reference: str | None = None,
        alpha: float = 0.05,
        random_state: int | None = 0,
    ) -> None:
        self.estimator = estimator
        self.chains = chains
        self.proxy = proxy
        self.cv = cv
        self.reference = reference
        self.alpha = alpha
        self.random_state = random_state

    def _check_params(self) -> None:
        if not isinstance(self.chains, Mapping) or not self.chains:
            raise ValueError(
                f"chains must be a non-empty mapping of name to steps; got {self.chains!r}"
            )
        if isinstance(self.cv, bool) or not isinstance(self.cv, int | np.integer) or self.cv < 2:
            raise ValueError(f"cv must be an int >= 2; got {self.cv!r}")
        if self.reference is not None and self.reference not in self.chains:
            raise ValueError(
                f"reference must be one of the chains {list(self.chains)}; got {self.reference!r}"
            )
        if not (isinstance(self.alpha, float | int) and 0.0 < self.alpha < 1.0):
            raise ValueError(f"alpha must be a number in (0, 1); got {self.alpha!r}")
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
        residuals: dict[str, NDArray[np.float64]] = {}  # per sample, at each chain's best
        if len(pipelines) == 1:
            rmse = {name: float("nan") for name in pipelines}  # nothing to choose
        elif isinstance(proxy, PLSRegressionCV):
            for name, chain in pipelines.items():
                curve = proxy.cv_residuals(X, y, chain=chain)
                curves[name] = curve
                if curve is not None:
                    count = select_n_components(
                        curve, proxy.selection, random_state=proxy.random_state
                    )
                    residuals[name] = curve[:, count - 1]
        else:
            splits = list(
                KFold(
                    n_splits=min(self.cv, y.size), shuffle=True, random_state=self.random_state
                ).split(X)
            )
            for name, chain in pipelines.items():
                model = Pipeline([*clone(chain).steps, ("proxy", proxy)])
                residuals[name] = _cv_residuals(model, X, y, splits)
        for name, values in residuals.items():
            rmse[name] = float(np.sqrt(np.mean(values**2)))
        for name in pipelines:
            rmse.setdefault(name, float("nan"))
        name = self._choose(rmse, residuals)
        chain = clone(pipelines[name]).fit(X)
        estimator = clone(self.estimator)
        X_chain = chain.transform(X)
        if name in curves and proxy is self.estimator:
            estimator.fit_with_residuals(X_chain, y, curves[name])  # the curve is the estimator's
        else:
            estimator.fit(X_chain, y)
        return name, rmse, Pipeline([*chain.steps, ("estimator", estimator)])

    def _choose(self, rmse: dict[str, float], residuals: dict[str, NDArray[np.float64]]) -> str:
        """The lowest-RMSE chain; with a reference, only if significantly better than it.

        Picking the minimum of several noisy inner-CV estimates favours whichever chain was
        luckiest on those folds (selection bias; Cawley & Talbot, 2010, JMLR 11:2079), and a
        chain that wins by noise loses on new data. So, with a ``reference`` (the recipe's
        long-standing chain), another chain replaces it only when its squared out-of-fold
        residuals are lower by a one-sided paired randomization test at ``alpha`` (van der
        Voet, 1994), the test ``select_n_components`` uses for components.
        """
        scored = [n for n in rmse if np.isfinite(rmse[n])]
        if not scored:
            return next(iter(rmse))  # nothing scored: the first chain
        best = min(scored, key=lambda n: rmse[n])  # the first chain wins ties
        reference = self.reference
        if reference is None or reference not in residuals or best == reference:
            return best
        rng = np.random.default_rng(self.random_state)
        for name in sorted(scored, key=lambda n: rmse[n]):
            if name == reference or rmse[name] >= rmse[reference]:
                return reference
            diff = residuals[name] ** 2 - residuals[reference] ** 2  # < 0 where name is better
            signs = rng.integers(0, 2, size=(_N_PERMUTATIONS, diff.size)) * 2.0 - 1.0
            flipped = (signs @ diff) / diff.size
            p_value = (np.count_nonzero(flipped <= diff.mean()) + 0.5) / (_N_PERMUTATIONS + 1)
            if p_value < self.alpha:
                return name
        return reference

    def fit_details(self) -> dict[str, Any]:
        """What the training rows chose, JSON-ready: the chain of every target (in order)."""
        check_is_fitted(self)
        return {"chain": [str(p_name) for p_name in np.atleast_1d(self.chain_)]}


def _cv_residuals(
    model: Any,
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    splits: list[tuple[NDArray[np.intp], NDArray[np.intp]]],
) -> NDArray[np.float64]:
    """Out-of-fold residuals (predicted - observed) of ``model`` over ``splits``."""
    residuals = np.empty(y.size)
    for train, test in splits:
        fitted = clone(model).fit(X[train], y[train])
        predicted = np.asarray(fitted.predict(X[test]), dtype=np.float64).reshape(-1)
        residuals[test] = predicted - y[test]
    return residuals


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
