"""PLS regression with the number of components chosen by inner cross-validation."""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold, check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil.models._per_target import check_targets, format_prediction

_SELECTIONS = ("randomization", "1se", "min")
# van der Voet's test as in pls::selectNcomp: significance level and number of sign flips.
_ALPHA = 0.01
_N_PERMUTATIONS = 999


def truncated_pls_coefficients(
    pls: PLSRegression, X: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Coefficients of the 1..A-component models hidden inside one A-component PLS1 fit.

    sklearn's NIPALS deflation makes ``P.T @ W`` upper triangular, so the first ``a`` columns
    of ``x_rotations_`` (W (P'W)^-1) and ``y_loadings_`` are exactly the rotations and
    loadings of an ``a``-component fit: coef_a = R[:, :a] @ Q[:, :a].T. The centring and
    scaling are recomputed from the training data the way sklearn does it
    (``_center_scale_xy``: ddof=1 standard deviations, zeros replaced by 1).

    Args:
        pls: A fitted single-target ``PLSRegression``.
        X: The data it was fitted on, shape (n_samples, n_features).
        y: The target it was fitted on, shape (n_samples,).

    Returns:
        ``(coefs, intercepts)``: coefs has shape (A, n_features) and intercepts shape (A,),
        so the a-component prediction is ``X @ coefs[a - 1] + intercepts[a - 1]``.
    """
    x_mean = X.mean(axis=0)
    y_mean = float(y.mean())
    if pls.scale:
        x_std = X.std(axis=0, ddof=1)
        x_std[x_std == 0.0] = 1.0
        y_std = float(y.std(ddof=1)) or 1.0
    else:
        x_std = np.ones(X.shape[1])
        y_std = 1.0
    rotations = np.asarray(pls.x_rotations_, dtype=np.float64)  # (p, A)
    loadings = np.asarray(pls.y_loadings_, dtype=np.float64)[0]  # (A,)
    # Column a of the cumulative sum is R[:, :a+1] @ Q[:a+1]: the (a+1)-component model.
    coefs = (np.cumsum(rotations * loadings, axis=1) * y_std / x_std[:, None]).T  # (A, p)
    intercepts = y_mean - coefs @ x_mean
    return coefs, intercepts


def pls_cv_curve(
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    n_components: int,
    splits: list[tuple[NDArray[np.intp], NDArray[np.intp]]],
    *,
    scale: bool,
    chain: Any = None,
) -> NDArray[np.float64]:
    """Out-of-fold residuals of the 1..n_components PLS1 models, one fit per fold.

    Args:
        X: Predictors, shape (n_samples, n_features).
        y: Target, shape (n_samples,), all finite.
        n_components: Largest number of components; at most each training fold's size - 1
            and n_features.
        splits: (train, test) index pairs covering every sample once as test.
        scale: Passed to ``PLSRegression``.
        chain: An unfitted preprocessing transformer applied first, fitted on each fold's
            training rows only (an MSC reference, say, never sees the fold's test rows);
            None for none.

    Returns:
        Residuals (predicted - observed), shape (n_samples, n_components).
    """
    residuals = np.full((y.shape[0], n_components), np.nan)
    for train, test in splits:
        X_train, X_test = X[train], X[test]
        if chain is not None:
            fitted = clone(chain).fit(X_train)
            X_train, X_test = fitted.transform(X_train), fitted.transform(X_test)
        pls = PLSRegression(n_components=n_components, scale=scale)
        with warnings.catch_warnings():
            # Past the rank of a small fold the y residual is exactly zero and sklearn stops
            # early (the extra components contribute nothing); that is expected here.
            warnings.filterwarnings("ignore", message="y residual is constant")
            pls.fit(X_train, y[train])
        coefs, intercepts = truncated_pls_coefficients(pls, X_train, y[train])
        residuals[test] = X_test @ coefs.T + intercepts - y[test, None]
    return residuals


def select_n_components(
    residuals: NDArray[np.float64], selection: str, *, random_state: int | None = 0
) -> int:
    """Pick the number of components from out-of-fold residuals (n_samples, A).

    The rules are those of ``pls::selectNcomp`` (Mevik & Wehrens, 2007):

    - ``"randomization"``: the fewest components whose squared residuals are not
      significantly larger than those of the lowest-RMSE count, by van der Voet's (1994,
      Chemometr. Intell. Lab. Syst. 25:313) paired randomization test (999 random sign
      flips of the per-sample differences, alpha = 0.01). The comparison is paired, so it
      uses the fact that all counts are evaluated on the same samples.
    - ``"1se"``: the fewest components whose RMSE minus its standard error,
      sd(residuals) / sqrt(n), is below the lowest RMSE (Hastie et al., 2009, sec. 7.10).
    - ``"min"``: the lowest RMSE.

    Args:
        residuals: Out-of-fold residuals of the 1..A-component models.
        selection: ``"randomization"``, ``"1se"`` or ``"min"``.
        random_state: Seed of the random sign flips.

    Returns:
        The chosen number of components (1-based).
    """
    rmse = np.sqrt(np.mean(residuals**2, axis=0))
    best = int(np.argmin(rmse))
    if selection == "min" or best == 0:
        return best + 1
    n = residuals.shape[0]
    if selection == "1se":
        standard_error = residuals.std(axis=0, ddof=1) / np.sqrt(n)
        within = np.flatnonzero(rmse - standard_error < rmse[best])
        return int(within[0]) + 1 if within.size else best + 1
    rng = np.random.default_rng(random_state)
    signs = rng.integers(0, 2, size=(_N_PERMUTATIONS, n)) * 2.0 - 1.0  # (perm, n)
    reference = residuals[:, best] ** 2
    for a in range(best):
        diff = residuals[:, a] ** 2 - reference
        observed = diff.mean()
        flipped = (signs @ diff) / n  # (perm,) means under "no difference"
        p_value = (np.count_nonzero(flipped >= observed) + 0.5) / (_N_PERMUTATIONS + 1)
        if p_value > _ALPHA:
            return a + 1
    return best + 1


def _target_rows(Y: NDArray[np.float64]) -> list[tuple[int, NDArray[np.bool_]]]:
    """Each target column with the rows where its value is present."""
    return [(j, np.isfinite(Y[:, j])) for j in range(Y.shape[1])]


class PLSRegressionCV(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """PLS1 regression per target, its number of components chosen by inner K-fold CV.

    Each target gets its own PLS1 model (Wold et al., 2001) fitted on the samples where it
    is present. The number of components is chosen by cross-validation on the training data
    only: in each inner fold the largest model is fitted once and every smaller model is read
    off it by truncation (see :func:`truncated_pls_coefficients`), which gives the same error
    curve as refitting each size at a fraction of the cost. The count is capped by the
    smallest inner training fold minus one and by the number of features.

    Args:
        max_components: Largest number of components tried.
        cv: Number of shuffled inner folds, or a scikit-learn CV splitter.
        scale: Scale X (and y) to unit variance before PLS, as ``PLSRegression(scale=...)``.
            Spectra are usually only centred, so the default is False.
        selection: How the count is read off the CV curve (see :func:`select_n_components`):
            ``"1se"`` (default; the fewest components within one standard error of the
            lowest RMSE, the parsimonious choice recommended with the R ``pls`` package),
            ``"randomization"`` (van der Voet's test, more conservative still) or ``"min"``
            (the lowest RMSE).
        random_state: Seed of the inner fold shuffle (and of the randomization test).

    Attributes:
        n_components_: Chosen number of components: an int for 1-D y, else an int array
            (n_targets,).
        cv_rmse_: Inner-CV RMSE per number of components (index 0 = 1 component), shape
            (max_components,) for 1-D y, else (n_targets, max_components); NaN beyond a cap.
        estimators_: The final ``PLSRegression`` per target, refitted on all its samples.
        coef_: Coefficients on the raw X, shape (n_targets, n_features).
        intercept_: Intercepts, shape (n_targets,); ``y = X @ coef_.T + intercept_``.
        n_features_in_: Number of features seen in ``fit``.
    """

    def __init__(
        self,
        max_components: int = 30,
        *,
        cv: int | Any = 5,
        scale: bool = False,
        selection: str = "1se",
        random_state: int | None = 0,
    ) -> None:
        self.max_components = max_components
        self.cv = cv
        self.scale = scale
        self.selection = selection
        self.random_state = random_state

    def _check_params(self) -> None:
        if isinstance(self.max_components, bool) or not isinstance(
            self.max_components, int | np.integer
        ):
            raise ValueError(f"max_components must be an int >= 1; got {self.max_components!r}")
        if self.max_components < 1:
            raise ValueError(f"max_components must be an int >= 1; got {self.max_components}")
        if isinstance(self.cv, int | np.integer) and not isinstance(self.cv, bool):
            if self.cv < 2:
                raise ValueError(f"cv must be >= 2 folds or a CV splitter; got {self.cv}")
        elif not hasattr(self.cv, "split"):
            raise ValueError(f"cv must be an int >= 2 or a CV splitter; got {self.cv!r}")
        if self.selection not in _SELECTIONS:
            raise ValueError(f"selection must be one of {_SELECTIONS}; got {self.selection!r}")

    def _splits(
        self, X: NDArray[np.float64], y: NDArray[np.float64]
    ) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
        if isinstance(self.cv, int | np.integer):
            splitter = KFold(
                n_splits=min(int(self.cv), y.shape[0]),
                shuffle=True,
                random_state=self.random_state,
            )
        else:
            splitter = check_cv(self.cv)
        return [(np.asarray(a), np.asarray(b)) for a, b in splitter.split(X, y)]

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Choose the number of components per target by inner CV, then refit on all rows.

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
        curves = [self.cv_residuals(X_checked[rows], Y[rows, j]) for j, rows in _target_rows(Y)]
        return self._fit_from_residuals(X_checked, Y, y_ndim, curves)

    def fit_with_residuals(
        self, X: ArrayLike, y: ArrayLike, residuals: NDArray[np.float64] | None
    ) -> Self:
        """``fit`` for one target whose inner-CV residuals are already known.

        Used where the curve came from :meth:`cv_residuals` already (the chain search of
        :class:`~specsoil.models.ChainSelectCV`), so no inner fold is fitted twice.

        Args:
            X: Spectra, shape (n_samples, n_features).
            y: The target, shape (n_samples,), all finite.
            residuals: What :meth:`cv_residuals` returned for these rows.

        Returns:
            The fitted estimator.
        """
        self._check_params()
        X_checked = validate_data(self, X, dtype=np.float64, ensure_min_samples=2, reset=True)
        Y, y_ndim = check_targets(y, X_checked.shape[0], type(self).__name__)
        if Y.shape[1] != 1 or not np.isfinite(Y).all():
            raise ValueError("fit_with_residuals takes one target without missing values")
        return self._fit_from_residuals(X_checked, Y, y_ndim, [residuals])

    def cv_residuals(
        self, X: NDArray[np.float64], y: NDArray[np.float64], *, chain: Any = None
    ) -> NDArray[np.float64] | None:
        """Inner-CV residuals of the 1..A-component models of one target (``fit``'s curve).

        Args:
            X: Spectra of the rows where the target is present, shape (n, n_features).
            y: That target, shape (n,), all finite.
            chain: An unfitted preprocessing transformer fitted inside each inner fold.

        Returns:
            Residuals (n_scored, A), A capped by the smallest inner training fold minus one
            and by n_features; None when too few samples are left to cross-validate.
        """
        splits = self._splits(X, y)
        smallest_train = min(len(train) for train, _ in splits)
        # Bounded by the rank of the centred training block (Wegelin, 2000, p. 25).
        cap = min(self.max_components, X.shape[1], smallest_train - 1)
        if cap < 1:
            return None
        residuals = pls_cv_curve(X, y, cap, splits, scale=self.scale, chain=chain)
        # A user splitter (e.g. ShuffleSplit) may leave samples out of every test fold.
        return residuals[np.isfinite(residuals[:, 0])]

    def _fit_from_residuals(
        self,
        X: NDArray[np.float64],
        Y: NDArray[np.float64],
        y_ndim: int,
        residuals: list[NDArray[np.float64] | None],
    ) -> Self:
        """Choose each target's count from its inner-CV residuals and fit the final models."""
        n_targets, n_features = Y.shape[1], X.shape[1]
        chosen = np.empty(n_targets, dtype=np.intp)
        curves = np.full((n_targets, self.max_components), np.nan)
        estimators = []
        coef = np.empty((n_targets, n_features))
        intercept = np.empty(n_targets)
        for (j, rows), curve in zip(_target_rows(Y), residuals, strict=True):
            Xj, yj = X[rows], Y[rows, j]
            if curve is not None:
                curves[j, : curve.shape[1]] = np.sqrt(np.mean(curve**2, axis=0))
                chosen[j] = select_n_components(
                    curve, self.selection, random_state=self.random_state
                )
            else:
                chosen[j] = 1  # too few samples to cross-validate: the simplest model
            final = PLSRegression(n_components=int(chosen[j]), scale=self.scale)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="y residual is constant")
                final.fit(Xj, yj)
            estimators.append(final)
            coef[j] = final.coef_[0]
            intercept[j] = float(final.intercept_[0]) - float(final.coef_[0] @ Xj.mean(axis=0))
        self._y_ndim = y_ndim
        self.estimators_ = estimators
        self.coef_ = coef
        self.intercept_ = intercept
        if self._y_ndim == 1:
            self.n_components_: int | NDArray[np.intp] = int(chosen[0])
            self.cv_rmse_ = curves[0]
        else:
            self.n_components_ = chosen
            self.cv_rmse_ = curves
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predict every target.

        Args:
            X: Spectra, shape (n_samples, n_features).

        Returns:
            Predictions, shape (n_samples,) if fitted on 1-D y, else (n_samples, n_targets).
        """
        check_is_fitted(self)
        X_checked = validate_data(self, X, dtype=np.float64, reset=False)
        pred = X_checked @ self.coef_.T + self.intercept_
        return format_prediction(np.asarray(pred, dtype=np.float64), self._y_ndim)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
