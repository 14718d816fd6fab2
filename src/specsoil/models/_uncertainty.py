"""Conformal prediction intervals and the spectral applicability domain of a fitted model.

Intervals. Split conformal (Lei et al., 2018, JASA 113:1094) and CV+ (Barber et al., 2021,
Ann. Stat. 49:486), both with absolute residuals as the conformity score and the
finite-sample quantile: the ``ceil((n + 1)(1 - alpha))``-th smallest of ``n`` scores. Each
target is calibrated on its own rows with a lab value (missing values are skipped, never
imputed). When ``n`` is too small for the requested level the bound is infinite, which is
the honest conformal answer. Split conformal holds out a calibration share and fits the
saved model on the rest. CV+ fits the saved model on every row and keeps the K fold models:
the interval of a new spectrum comes from the fold models' predictions shifted by the
held-out residuals of their folds, so the saved point prediction (from the full model) may
sit off-centre. CV+ guarantees at least ``1 - 2 alpha`` coverage and in practice gives
about ``1 - alpha``; split conformal guarantees ``1 - alpha`` (both under exchangeability).

Applicability domain. PCA of the spectra as the estimator sees them (after the pipeline's
preprocessing steps, e.g. the 10 nm band averaging, derivative and SNV of the recipe), with
the fewest components that explain 99.999 % of the variance, at most 20. So many nines
because absorbance variance is almost all baseline and albedo: on geeves, 99 % is reached
with 2 components and 99.9 % with 4, which leaves absorption features to a Q statistic
swamped by baseline noise (a 0.03-absorbance band at 1750 nm, or nirsoil spectra scored
against a geeves model, were then flagged no more often than held-out geeves spectra); with
the cap of 20 both are flagged in 95-100 % of spectra while held-out spectra of the training
population are flagged at 2-3 %, for 40 to 250 training spectra, on absorbance and on
derivative + SNV spectra alike. Hotelling's T² measures
how far a spectrum's scores lie from the training centre within the model space; the Q
residual (squared prediction error) measures what the components do not reproduce, e.g. an
absorption feature never seen in training. The limits come from cross-validated statistics
(each fold's spectra scored against a PCA fitted without them): in-sample Q values are
biased low because the components were fitted to those very spectra, so in-sample limits
would flag ordinary new spectra. A scaled chi-square ``g * chi2(h)`` is fitted to the
cross-validated values by their mean and variance (Box, 1954; Nomikos & MacGregor, 1995,
Technometrics 37:41) and its quantile is the limit; unlike an empirical quantile it also
gives a 99 % limit from a few dozen spectra. A spectrum is outside the domain when either
statistic exceeds its limit (99 % each by default, so about 2 % of new spectra from the
training population are flagged).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from specsoil._errors import SpecsoilError

logger = logging.getLogger(__name__)

ConformalMethod = Literal["split", "cv+"]
CONFORMAL_METHODS: tuple[str, ...] = ("split", "cv+")
# Share of the rows held out for split conformal: ~50 calibration spectra from 250 rows is
# enough for a finite 95 % bound (19 needed) while the model keeps 80 % of the data.
DEFAULT_CALIBRATION_FRACTION = 0.2
DEFAULT_CONFORMAL_FOLDS = 5
DOMAIN_VARIANCE = 0.99999
DOMAIN_MAX_COMPONENTS = 20
DOMAIN_FOLDS = 5
DEFAULT_DOMAIN_CONFIDENCE = 0.99
# Fewer spectra than this give no meaningful PCA limits: no domain is kept.
MIN_DOMAIN_SAMPLES = 10
# Bound on the (test rows x calibration rows) matrix CV+ builds per target, in elements.
_CV_PLUS_CHUNK = 4_000_000


def conformal_rank(n: int, alpha: float) -> int:
    """The 1-based rank of the finite-sample conformal quantile, ``ceil((n + 1)(1 - alpha))``.

    A rank above ``n`` means the bound is infinite.
    """
    # The tiny epsilon keeps e.g. (19 + 1) * 0.95 = 19.000000000000004 from rounding up to 20.
    return math.ceil((n + 1) * (1.0 - alpha) - 1e-9)


def min_calibration_rows(alpha: float) -> int:
    """The fewest calibration rows whose conformal bound at ``1 - alpha`` is finite.

    The smallest ``n`` with ``conformal_rank(n, alpha) <= n``, i.e. ``n >= (1 - alpha) / alpha``
    (9 for 90 %, 19 for 95 %), found with the same rounding as :func:`conformal_rank`.
    """
    # Start just below the closed form; round-off (0.9 / 0.09999999999999998 = 9.000000000000002)
    # can only put it one off.
    n = max(0, math.floor((1.0 - alpha) / alpha) - 1)
    while conformal_rank(n, alpha) > n:
        n += 1
    return n


def _check_confidence(confidence: float, *, what: str = "interval") -> float:
    value = float(confidence)
    if not 0.0 < value < 1.0:
        raise SpecsoilError(f"{what} confidence must be between 0 and 1 (e.g. 0.9); got {value}")
    return value


@dataclass(frozen=True, eq=False)
class ConformalCalibration:
    """Held-out absolute residuals that turn point predictions into conformal intervals.

    Attributes:
        method: ``"split"`` or ``"cv+"``.
        targets: Target names, in column order.
        residuals: Absolute held-out residuals, shape (n_calibration, n_targets); NaN where
            the lab value is missing.
        folds: For CV+, the fold (0..K-1) each calibration row was held out in; for split
            conformal, all zeros.
        n_folds: K for CV+, 1 for split conformal.
    """

    method: ConformalMethod
    targets: tuple[str, ...]
    residuals: NDArray[np.float64]
    folds: NDArray[np.int64]
    n_folds: int

    @classmethod
    def from_predictions(
        cls,
        method: ConformalMethod,
        targets: tuple[str, ...] | list[str],
        y_true: ArrayLike,
        y_pred: ArrayLike,
        folds: ArrayLike | None = None,
    ) -> ConformalCalibration:
        """Calibrate from held-out predictions.

        Args:
            method: ``"split"`` (``y_pred`` from one model that never saw these rows) or
                ``"cv+"`` (``y_pred`` from the model of each row's fold).
            targets: Target names.
            y_true: Lab values, shape (n, n_targets); NaN where missing.
            y_pred: Held-out predictions, same shape.
            folds: For CV+, each row's fold index (0..K-1).

        Raises:
            SpecsoilError: For an unknown method, mismatched shapes or missing folds.
        """
        if method not in CONFORMAL_METHODS:
            raise SpecsoilError(
                f"conformal method must be one of {list(CONFORMAL_METHODS)}; got {method!r}"
            )
        names = tuple(targets)
        truth = np.asarray(y_true, dtype=np.float64).reshape(-1, len(names))
        pred = np.asarray(y_pred, dtype=np.float64).reshape(-1, len(names))
        if truth.shape != pred.shape:
            raise SpecsoilError(
                f"conformal calibration: {truth.shape[0]} lab rows but {pred.shape[0]} predictions"
            )
        if method == "cv+":
            if folds is None:
                raise SpecsoilError("CV+ calibration needs the fold of every row")
            fold_ids = np.asarray(folds, dtype=np.int64).reshape(-1)
            if fold_ids.shape[0] != truth.shape[0]:
                raise SpecsoilError(
                    f"CV+ calibration: {fold_ids.shape[0]} fold ids for {truth.shape[0]} rows"
                )
            n_folds = int(fold_ids.max()) + 1 if fold_ids.size else 0
        else:
            fold_ids = np.zeros(truth.shape[0], dtype=np.int64)
            n_folds = 1
        return cls(
            method=method,
            targets=names,
            residuals=np.abs(truth - pred),
            folds=fold_ids,
            n_folds=n_folds,
        )

    def n_calibration(self) -> dict[str, int]:
        """Rows with a lab value per target: the ``n`` of each target's quantile."""
        counts = np.isfinite(self.residuals).sum(axis=0)
        return {name: int(c) for name, c in zip(self.targets, counts, strict=True)}

    def min_confidence_with_finite_bounds(self) -> dict[str, float]:
        """Per target, the highest confidence whose bounds are still finite, ``n / (n + 1)``."""
        return {name: n / (n + 1) for name, n in self.n_calibration().items()}

    def interval(
        self,
        point: ArrayLike,
        confidence: float,
        fold_predictions: ArrayLike | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lower and upper bounds at ``confidence`` (e.g. 0.9) for new spectra.

        Args:
            point: The model's predictions, shape (n_new, n_targets) (split conformal).
            confidence: Nominal coverage ``1 - alpha``.
            fold_predictions: For CV+, each fold model's predictions, shape
                (n_folds, n_new, n_targets).

        Returns:
            ``(lower, upper)``, each of shape (n_new, n_targets); infinite where a target has
            too few calibration rows for ``confidence``.

        Raises:
            SpecsoilError: For a confidence outside (0, 1) or missing fold predictions.
        """
        alpha = 1.0 - _check_confidence(confidence)
        pred = np.asarray(point, dtype=np.float64).reshape(-1, len(self.targets))
        lower = np.full_like(pred, -np.inf)
        upper = np.full_like(pred, np.inf)
        fold_pred: NDArray[np.float64] | None = None
        if self.method == "cv+":
            if fold_predictions is None:
                raise SpecsoilError("CV+ intervals need the predictions of every fold model")
            fold_pred = np.asarray(fold_predictions, dtype=np.float64).reshape(
                self.n_folds, pred.shape[0], len(self.targets)
            )
        for j, name in enumerate(self.targets):
            known = np.isfinite(self.residuals[:, j])
            scores = self.residuals[known, j]
            n = scores.size
            rank = conformal_rank(n, alpha)
            if rank > n:
                logger.warning(
                    "%s: %d calibration rows give no finite %g%% conformal bound (needs at "
                    "least %d); its bounds are infinite",
                    name,
                    n,
                    100 * (1 - alpha),
                    min_calibration_rows(alpha),
                )
                continue
            if fold_pred is None:
                half_width = np.partition(scores, rank - 1)[rank - 1]
                lower[:, j] = pred[:, j] - half_width
                upper[:, j] = pred[:, j] + half_width
            else:
                lower[:, j], upper[:, j] = _cv_plus_bounds(
                    fold_pred[:, :, j], scores, self.folds[known], rank
                )
        return lower, upper


def _cv_plus_bounds(
    fold_pred: NDArray[np.float64], scores: NDArray[np.float64], folds: NDArray[np.int64], rank: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """CV+ bounds of one target (Barber et al., 2021, eq. 6), in chunks of new rows.

    The upper bound is the ``rank``-th smallest of ``mu_{-k(i)}(x) + R_i`` over calibration
    rows i, the lower bound the ``rank``-th largest of ``mu_{-k(i)}(x) - R_i``.
    """
    n_new = fold_pred.shape[1]
    n = scores.size
    lower = np.empty(n_new)
    upper = np.empty(n_new)
    step = max(1, _CV_PLUS_CHUNK // max(n, 1))
    for start in range(0, n_new, step):
        stop = min(start + step, n_new)
        mu = fold_pred[folds, start:stop].T  # (chunk, n): each row's own fold model
        high = mu + scores
        low = mu - scores
        upper[start:stop] = np.partition(high, rank - 1, axis=1)[:, rank - 1]
        lower[start:stop] = np.partition(low, n - rank, axis=1)[:, n - rank]
    return lower, upper


@dataclass(frozen=True, slots=True)
class DomainAssessment:
    """Applicability-domain statistics of new spectra.

    Attributes:
        hotelling_t2: Hotelling's T² of each spectrum in the training PCA space.
        q_residual: Squared residual of each spectrum off the PCA space (Q, SPE).
        in_domain: True where both statistics are within their limits.
        t2_limit: The T² limit applied.
        q_limit: The Q limit applied.
        confidence: The level of each limit.
    """

    hotelling_t2: NDArray[np.float64]
    q_residual: NDArray[np.float64]
    in_domain: NDArray[np.bool_]
    t2_limit: float
    q_limit: float
    confidence: float


@dataclass(frozen=True, eq=False)
class ApplicabilityDomain:
    """A PCA model of the training spectra with cross-validated T² and Q reference values.

    Build it with :meth:`fit`; score new spectra (in the same feature space) with
    :meth:`assess`.

    Attributes:
        mean: Training mean of each feature, shape (n_features,).
        components: Principal axes, shape (n_components, n_features).
        score_variances: Variance of each component's training scores.
        explained_variance: Share of the training variance the components explain.
        reference_t2: Cross-validated T² of the training spectra.
        reference_q: Cross-validated Q of the training spectra.
    """

    mean: NDArray[np.float64]
    components: NDArray[np.float64]
    score_variances: NDArray[np.float64]
    explained_variance: float
    reference_t2: NDArray[np.float64]
    reference_q: NDArray[np.float64]

    @property
    def n_components(self) -> int:
        """Number of principal components kept."""
        return int(self.components.shape[0])

    @classmethod
    def fit(
        cls,
        features: ArrayLike,
        *,
        variance: float = DOMAIN_VARIANCE,
        max_components: int = DOMAIN_MAX_COMPONENTS,
        folds: int = DOMAIN_FOLDS,
        random_state: int = 0,
    ) -> ApplicabilityDomain:
        """Fit the PCA on the training features and cross-validate its T² and Q.

        Args:
            features: Training spectra as the estimator sees them, (n_samples, n_features).
            variance: Keep the fewest components explaining at least this share.
            max_components: Cap on the number of components.
            folds: Folds for the cross-validated reference statistics.
            random_state: Seed of the fold assignment.

        Raises:
            SpecsoilError: With fewer than ``MIN_DOMAIN_SAMPLES`` spectra or non-finite values.
        """
        X = _features(features)
        n, p = X.shape
        if n < MIN_DOMAIN_SAMPLES:
            raise SpecsoilError(
                f"applicability domain: needs at least {MIN_DOMAIN_SAMPLES} training spectra; "
                f"got {n}"
            )
        if not np.isfinite(X).all():
            raise SpecsoilError("applicability domain: the training spectra hold NaN or inf")
        if not 0.0 < variance <= 1.0:
            raise SpecsoilError(f"variance must be in (0, 1]; got {variance}")
        mean, axes, singular = _pca(X)
        share = singular**2 / max(float(np.sum(singular**2)), np.finfo(float).tiny)
        cumulative = np.cumsum(share)
        needed = int(np.searchsorted(cumulative, variance - 1e-12) + 1)
        # n - folds keeps every fold's PCA (fitted on fewer rows) able to hold as many axes.
        k = max(1, min(needed, max_components, p, n - math.ceil(n / folds) - 1, axes.shape[0]))
        components = axes[:k]
        score_variances = np.maximum(singular[:k] ** 2 / (n - 1), np.finfo(float).tiny)
        rng = np.random.default_rng(random_state)
        fold_of = rng.permutation(np.arange(n) % folds)
        t2_cv = np.empty(n)
        q_cv = np.empty(n)
        for fold in range(folds):
            held = fold_of == fold
            if not held.any():
                continue
            fold_mean, fold_axes, fold_singular = _pca(X[~held])
            fold_variances = np.maximum(
                fold_singular[:k] ** 2 / (int((~held).sum()) - 1), np.finfo(float).tiny
            )
            t2_cv[held], q_cv[held] = _statistics(X[held], fold_mean, fold_axes[:k], fold_variances)
        return cls(
            mean=mean,
            components=components,
            score_variances=score_variances,
            explained_variance=float(cumulative[k - 1]),
            reference_t2=t2_cv,
            reference_q=q_cv,
        )

    def statistics(self, features: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Hotelling's T² and Q of each spectrum, shape (n,) each."""
        X = _features(features)
        if X.shape[1] != self.mean.size:
            raise SpecsoilError(
                f"applicability domain: spectra have {X.shape[1]} features but the training "
                f"PCA has {self.mean.size}"
            )
        return _statistics(X, self.mean, self.components, self.score_variances)

    def limits(self, confidence: float = DEFAULT_DOMAIN_CONFIDENCE) -> tuple[float, float]:
        """The T² and Q limits at ``confidence`` (each statistic on its own)."""
        level = _check_confidence(confidence, what="applicability-domain")
        return _scaled_chi2_quantile(self.reference_t2, level), _scaled_chi2_quantile(
            self.reference_q, level
        )

    def assess(
        self, features: ArrayLike, confidence: float = DEFAULT_DOMAIN_CONFIDENCE
    ) -> DomainAssessment:
        """T², Q and the in-domain flag of each spectrum.

        Args:
            features: Spectra in the training feature space, (n, n_features).
            confidence: Level of each limit; a spectrum is outside when T² or Q exceeds
                its limit.
        """
        t2, q = self.statistics(features)
        t2_limit, q_limit = self.limits(confidence)
        # Non-finite statistics (e.g. NaN in a spectrum) are never in the domain.
        inside = np.isfinite(t2) & np.isfinite(q) & (t2 <= t2_limit) & (q <= q_limit)
        return DomainAssessment(
            hotelling_t2=t2,
            q_residual=q,
            in_domain=inside,
            t2_limit=t2_limit,
            q_limit=q_limit,
            confidence=float(confidence),
        )

    def summary(self) -> dict[str, float | int]:
        """The PCA size and the 95 % / 99 % limits, as JSON-ready data for the manifest."""
        t2_95, q_95 = self.limits(0.95)
        t2_99, q_99 = self.limits(0.99)
        return {
            "n_components": self.n_components,
            "explained_variance": self.explained_variance,
            "n_reference": int(self.reference_t2.size),
            "t2_limit_95": t2_95,
            "t2_limit_99": t2_99,
            "q_limit_95": q_95,
            "q_limit_99": q_99,
            "default_confidence": DEFAULT_DOMAIN_CONFIDENCE,
        }


def _features(features: ArrayLike) -> NDArray[np.float64]:
    X = np.asarray(features, dtype=np.float64)
    return X.reshape(X.shape[0], -1)  # (n, n_features): e.g. channel stacks are flattened


def _pca(
    X: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Mean, principal axes (rows) and singular values of centred ``X``."""
    mean = X.mean(axis=0)
    _, singular, axes = np.linalg.svd(X - mean, full_matrices=False)
    return mean, axes, singular


def _statistics(
    X: NDArray[np.float64],
    mean: NDArray[np.float64],
    components: NDArray[np.float64],
    variances: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    centred = X - mean
    scores = centred @ components.T  # (n, k)
    t2 = np.sum(scores**2 / variances, axis=1)
    residual = centred - scores @ components
    q = np.sum(residual**2, axis=1)
    return t2, q


def _scaled_chi2_quantile(values: NDArray[np.float64], level: float) -> float:
    """The ``level`` quantile of ``g * chi2(h)`` matched to the mean and variance of ``values``."""
    from scipy.stats import chi2

    finite = values[np.isfinite(values)]
    mean = float(finite.mean())
    var = float(finite.var(ddof=1)) if finite.size > 1 else 0.0
    if mean <= 0.0 or var <= 0.0:
        return mean  # all equal (e.g. Q of spectra the PCA reproduces exactly)
    g = var / (2.0 * mean)
    h = 2.0 * mean**2 / var
    return float(g * chi2.ppf(level, h))
