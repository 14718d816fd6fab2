"""Memory-based learning: a local weighted-average PLS model for every spectrum to predict."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Self, TypeGuard

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil.models._per_target import check_targets, format_prediction

# Working-set sizes (float64 elements) that keep the batched arrays in cache and bounded in
# memory whatever the training-set size: local blocks (batch, k, p) and distance blocks.
_LOCAL_BLOCK = 1_000_000
_DISTANCE_BLOCK = 4_000_000
# The "opc" search compares all pairs of a subsample of at most this many training spectra.
_OPC_MAX_SAMPLES = 1000
# Guards divisions by quantities that are exactly zero in degenerate neighbourhoods.
_TINY = 1e-300


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def wapls_predict(
    X_local: NDArray[np.float64],
    y_local: NDArray[np.float64],
    x_query: NDArray[np.float64],
    min_components: int,
    max_components: int,
) -> NDArray[np.float64]:
    """Weighted-average PLS1 predictions for a batch of neighbourhoods (Shenk et al., 1997).

    Each neighbourhood gets a centred (not scaled) PLS1 model with 1..A components, A =
    min(max_components, k - 1, p). The predictions of the models with min_components..A
    components are averaged with weights w_a = 1 / (s_a * g_a), where s_a is the RMS of the
    query spectrum's X residual after a components and g_a the RMS of the a-component
    regression coefficients, as in resemble's ``local_fit_wapls`` (Ramirez-Lopez et al.,
    2013). With min_components == max_components this is plain PLS1.

    The NIPALS weights are computed from the undeflated X: for PLS1, X_{a-1}' y_{a-1} =
    X' y_{a-1}, and the scores X_{a-1} w_a are X w_a orthogonalised against earlier scores,
    so the (batch, k, p) block is only read, never rewritten.

    Args:
        X_local: Neighbour spectra, shape (batch, k, p).
        y_local: Neighbour targets, shape (batch, k), finite.
        x_query: The spectrum to predict for each neighbourhood, shape (batch, p).
        min_components: Smallest number of components in the average.
        max_components: Largest number of components in the average.

    Returns:
        Predictions, shape (batch,).
    """
    batch, k, p = X_local.shape
    n_comp = max(1, min(max_components, k - 1, p))
    first = min(max(min_components, 1), n_comp) - 1
    x_mean = X_local.mean(axis=1)
    y_mean = y_local.mean(axis=1)
    Xc = X_local - x_mean[:, None, :]  # (batch, k, p)
    residual = y_local - y_mean[:, None]  # (batch, k)
    scores = np.zeros((batch, k, n_comp))  # unit-norm scores, for orthogonalisation
    rotations = np.zeros((batch, p, n_comp))
    x_loadings = np.zeros((batch, p, n_comp))
    y_loadings = np.zeros((batch, n_comp))
    for a in range(n_comp):
        w = (residual[:, None, :] @ Xc)[:, 0, :]  # (batch, p) = X' y_{a-1}
        w /= np.maximum(np.linalg.norm(w, axis=1, keepdims=True), _TINY)
        t = (Xc @ w[:, :, None])[:, :, 0]  # (batch, k)
        if a:
            previous = scores[:, :, :a]
            t -= (previous @ (t[:, None, :] @ previous).transpose(0, 2, 1))[:, :, 0]
        tt = np.einsum("bk,bk->b", t, t)
        live = tt > _TINY  # a dead component (y residual already zero) contributes nothing
        inv_tt = np.where(live, 1.0 / np.where(live, tt, 1.0), 0.0)
        p_a = (t[:, None, :] @ Xc)[:, 0, :] * inv_tt[:, None]  # (batch, p)
        q_a = np.einsum("bk,bk->b", residual, t) * inv_tt
        residual -= q_a[:, None] * t
        # r_a = w_a - R_{a-1} (P_{a-1}' w_a): the rotations W (P'W)^-1 built one at a time.
        r_a = w
        if a:
            r_a = (
                w
                - (rotations[:, :, :a] @ (w[:, None, :] @ x_loadings[:, :, :a]).transpose(0, 2, 1))[
                    :, :, 0
                ]
            )
        r_a = r_a * live[:, None]
        rotations[:, :, a] = r_a
        x_loadings[:, :, a] = p_a
        y_loadings[:, a] = q_a
        scores[:, :, a] = t * np.sqrt(inv_tt)[:, None]
    xq = x_query - x_mean  # (batch, p)
    query_scores = (xq[:, None, :] @ rotations)[:, 0, :]  # (batch, A)
    predictions = y_mean[:, None] + np.cumsum(query_scores * y_loadings, axis=1)  # (batch, A)
    # Cumulative coefficient vectors and query reconstructions for 1..A components.
    coefs = np.cumsum(rotations * y_loadings[:, None, :], axis=2)  # (batch, p, A)
    reconstruction = np.cumsum(x_loadings * query_scores[:, None, :], axis=2)  # (batch, p, A)
    spectral_rms = np.sqrt(np.mean((xq[:, :, None] - reconstruction) ** 2, axis=1))
    coef_rms = np.sqrt(np.mean(coefs**2, axis=1))
    weights = 1.0 / np.maximum(spectral_rms[:, first:] * coef_rms[:, first:], _TINY)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.asarray(np.sum(weights * predictions[:, first:], axis=1), dtype=np.float64)


def _blocks(n: int, size: int) -> Iterator[slice]:
    size = max(1, size)
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class MemoryBasedLearning(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Memory-based learning (local PLS) as in the resemble package (Ramirez-Lopez et al., 2013).

    For every spectrum to predict, the ``k`` most similar training spectra are found by the
    Mahalanobis distance in the space of the training set's principal components (Euclidean
    distance between PC scores scaled to unit variance), and a local weighted-average PLS
    model (:func:`wapls_predict`, Shenk et al., 1997) fitted on those neighbours predicts it.
    One neighbour search serves all targets; each target's local models use the nearest
    neighbours whose value of that target is present.

    Everything is tuned on the training data only. The number of PCs follows resemble's
    ``"opc"`` rule: the count whose distance puts each training sample closest in y to its
    nearest neighbour (RMSD between y_i and y of its nearest neighbour, scaled by sd(y) and
    averaged over targets). When ``k`` is a sequence, each target's k is chosen by resemble's
    nearest-neighbour validation (NNv): the training samples (up to ``n_validation``) are predicted
    from their neighbours, themselves excluded, and the k with the lowest RMSE wins.
    Unlike resemble's default, the local dissimilarities are not added as predictors.

    References:
        Ramirez-Lopez, L. et al. (2013). The spectrum-based learner: a new local approach
        for modeling soil vis-NIR spectra of complex datasets. Geoderma 195-196, 268-279.
        Shenk, J. S., Westerhaus, M. O., Berzaghi, P. (1997). Investigation of a LOCAL
        calibration procedure for near infrared instruments. J. Near Infrared Spectrosc. 5.

    Args:
        k: Neighbourhood size, or a sequence of candidate sizes to choose from by NNv. Sizes
            beyond the available training samples are clipped.
        n_pcs: PCs for the distance: ``"opc"`` (optimised), an int (fixed count) or a float
            in (0, 1] (smallest count reaching that cumulative explained variance).
        max_pcs: Largest number of PCs considered, whatever ``n_pcs`` says.
        pls_components: ``(min, max)`` components averaged by the local weighted-average PLS.
        n_validation: Most training samples used for NNv. resemble uses all of them; beyond
            this cap a seeded random subset keeps large libraries fast.
        random_state: Seed of the NNv and "opc" subsamples.

    Attributes:
        n_pcs_: Number of principal components used for the distance.
        k_: Chosen neighbourhood size: an int for 1-D y, else an int array (n_targets,).
        nnv_rmse_: NNv RMSE per candidate in ``k`` (after clipping), shape (len(k),) for 1-D
            y, else (n_targets, len(k)); all NaN when ``k`` is a single int.
        X_train_: The training spectra, shape (n_samples, n_features): the model's memory.
        Y_train_: The training targets, shape (n_samples, n_targets), NaN where missing.
        pca_mean_: Mean training spectrum, shape (n_features,).
        pca_components_: Principal axes scaled so scores have unit variance, shape
            (n_features, n_pcs_).
        n_features_in_: Number of features seen in ``fit``.
    """

    def __init__(
        self,
        k: int | Sequence[int] = (50, 100, 150, 200),
        *,
        n_pcs: str | int | float = "opc",
        max_pcs: int = 40,
        pls_components: tuple[int, int] = (3, 15),
        n_validation: int = 1000,
        random_state: int | None = 0,
    ) -> None:
        self.k = k
        self.n_pcs = n_pcs
        self.max_pcs = max_pcs
        self.pls_components = pls_components
        self.n_validation = n_validation
        self.random_state = random_state

    def _k_values(self) -> tuple[int, ...]:
        values: Any = (self.k,) if _is_int(self.k) else self.k
        if (
            isinstance(values, str)
            or not isinstance(values, Sequence)
            or len(values) == 0
            or not all(_is_int(v) and v >= 1 for v in values)
        ):
            raise ValueError(f"k must be an int >= 1 or a sequence of them; got {self.k!r}")
        return tuple(int(v) for v in values)

    def _check_params(self) -> tuple[int, int]:
        n = self.n_pcs
        valid_pcs = (
            n == "opc" or (_is_int(n) and n >= 1) or (isinstance(n, float) and 0.0 < n <= 1.0)
        )
        if not valid_pcs:
            raise ValueError(
                "n_pcs must be 'opc', an int >= 1 or a float in (0, 1] (cumulative "
                f"explained variance); got {n!r}"
            )
        for name in ("max_pcs", "n_validation"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")
        comps = self.pls_components
        if (
            not isinstance(comps, Sequence)
            or len(comps) != 2
            or not all(_is_int(c) for c in comps)
            or not 1 <= comps[0] <= comps[1]
        ):
            raise ValueError(
                f"pls_components must be (min, max) ints with 1 <= min <= max; got {comps!r}"
            )
        return int(comps[0]), int(comps[1])

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Store the training set, fit the PCA distance and tune n_pcs and k on it.

        Args:
            X: Spectra, shape (n_samples, n_features).
            y: Targets, shape (n_samples,) or (n_samples, n_targets); NaN marks a missing
                value, so that sample is never a neighbour for that target.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: If a parameter, X or y is invalid.
        """
        k_values = self._k_values()
        comps = self._check_params()
        X_checked = validate_data(self, X, dtype=np.float64, ensure_min_samples=2, reset=True)
        Y, y_ndim = check_targets(y, X_checked.shape[0], type(self).__name__)
        rng = np.random.default_rng(self.random_state)
        self._y_ndim = y_ndim
        self.X_train_ = X_checked
        self.Y_train_ = Y
        self.pca_mean_, axes, variances = self._pca(X_checked)
        scores = (X_checked - self.pca_mean_) @ axes  # (n, max PCs), unit variance
        self.n_pcs_ = self._choose_n_pcs(scores, variances, Y, rng)
        self.pca_components_ = axes[:, : self.n_pcs_]
        self._scores = np.ascontiguousarray(scores[:, : self.n_pcs_])
        chosen, rmse = self._choose_k(k_values, comps, rng)
        self.nnv_rmse_ = rmse[0] if self._y_ndim == 1 else rmse
        self.k_: int | NDArray[np.intp] = int(chosen[0]) if self._y_ndim == 1 else chosen
        return self

    def _pca(
        self, X: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Mean, unit-variance-score axes (p, m) and explained-variance ratios (m,)."""
        mean = X.mean(axis=0)
        _, singular, vt = np.linalg.svd(X - mean, full_matrices=False)
        n = X.shape[0]
        total = float(np.sum(singular**2))
        # Components with (numerically) no variance would divide by zero when scaled.
        rank = int(np.sum(singular > singular[0] * 1e-10)) if total > 0 else 0
        m = max(1, min(self.max_pcs, rank, n - 1))
        sd = singular[:m] / np.sqrt(max(n - 1, 1))
        axes = vt[:m].T / np.where(sd > 0, sd, 1.0)
        ratios = singular[:m] ** 2 / total if total > 0 else np.ones(m)
        return mean, axes, ratios

    def _choose_n_pcs(
        self,
        scores: NDArray[np.float64],
        ratios: NDArray[np.float64],
        Y: NDArray[np.float64],
        rng: np.random.Generator,
    ) -> int:
        m_max = int(scores.shape[1])
        if _is_int(self.n_pcs):
            return min(int(self.n_pcs), m_max)
        if isinstance(self.n_pcs, float):
            reached = np.flatnonzero(np.cumsum(ratios) >= self.n_pcs - 1e-12)
            return int(reached[0]) + 1 if reached.size else m_max
        n = scores.shape[0]
        keep = (
            np.sort(rng.choice(n, size=_OPC_MAX_SAMPLES, replace=False))
            if (n > _OPC_MAX_SAMPLES)
            else np.arange(n)
        )
        S, Ys = scores[keep], Y[keep]
        finite = np.isfinite(Ys)
        sd = np.nanstd(Ys, axis=0)
        sd[~(sd > 0)] = 1.0
        distance = np.zeros((keep.size, keep.size))
        np.fill_diagonal(distance, np.inf)
        criterion = np.full(m_max, np.inf)
        for m in range(m_max):
            distance += (S[:, m, None] - S[None, :, m]) ** 2
            per_target = []
            for j in range(Y.shape[1]):
                rows = np.flatnonzero(finite[:, j])
                if rows.size < 2:
                    continue
                block = distance if rows.size == keep.size else distance[np.ix_(rows, rows)]
                nearest = rows[np.argmin(block, axis=1)]
                diff = Ys[rows, j] - Ys[nearest, j]
                per_target.append(np.sqrt(np.mean(diff**2)) / sd[j])
            if per_target:
                criterion[m] = float(np.mean(per_target))
        return int(np.argmin(criterion)) + 1

    def _query_scores(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray((X - self.pca_mean_) @ self.pca_components_, dtype=np.float64)

    def _neighbours(
        self,
        query: NDArray[np.float64],
        k: int,
        candidates: NDArray[np.bool_],
        exclude: NDArray[np.intp] | None = None,
    ) -> NDArray[np.intp]:
        """Indices (n_query, k) of the nearest candidate training rows, nearest first.

        Args:
            query: Unit-variance PC scores of the queries, shape (n_query, n_pcs).
            k: Neighbours per query; at most the number of candidates.
            candidates: Training rows allowed as neighbours, shape (n_train,).
            exclude: Per query, one training row to leave out (itself, for NNv).
        """
        train = self._scores
        out = np.empty((query.shape[0], k), dtype=np.intp)
        train_sq = np.einsum("ij,ij->i", train, train)
        block = max(1, _DISTANCE_BLOCK // max(train.shape[0], 1))
        for rows in _blocks(query.shape[0], block):
            q = query[rows]
            # Squared Euclidean distances by one matrix product: |q|^2 + |t|^2 - 2 q.t
            distance = train_sq[None, :] - 2.0 * (q @ train.T)
            distance += np.einsum("ij,ij->i", q, q)[:, None]
            distance[:, ~candidates] = np.inf
            if exclude is not None:
                distance[np.arange(q.shape[0]), exclude[rows]] = np.inf
            if k < distance.shape[1]:
                part = np.argpartition(distance, k - 1, axis=1)[:, :k]
            else:
                part = np.broadcast_to(np.arange(distance.shape[1]), distance.shape).copy()
            order = np.argsort(np.take_along_axis(distance, part, axis=1), axis=1, kind="stable")
            out[rows] = np.take_along_axis(part, order, axis=1)
        return out

    def _local_predictions(
        self,
        queries: NDArray[np.float64],
        neighbours: NDArray[np.intp],
        target: int,
        comps: tuple[int, int],
    ) -> NDArray[np.float64]:
        """Local WAPLS prediction of ``target`` for each query from its neighbour rows."""
        n_query, k = neighbours.shape
        p = self.X_train_.shape[1]
        out = np.empty(n_query)
        for rows in _blocks(n_query, _LOCAL_BLOCK // max(k * p, 1)):
            idx = neighbours[rows]
            out[rows] = wapls_predict(
                self.X_train_[idx], self.Y_train_[idx, target], queries[rows], *comps
            )
        return out

    def _choose_k(
        self, k_values: tuple[int, ...], comps: tuple[int, int], rng: np.random.Generator
    ) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Per target, the k with the lowest NNv RMSE and the RMSE of every candidate."""
        n_targets = self.Y_train_.shape[1]
        finite = np.isfinite(self.Y_train_)
        chosen = np.empty(n_targets, dtype=np.intp)
        rmse = np.full((n_targets, len(k_values)), np.nan)
        if len(k_values) == 1:
            for j in range(n_targets):
                chosen[j] = min(k_values[0], int(finite[:, j].sum()))
            return chosen, rmse
        for j in range(n_targets):
            observed = np.flatnonzero(finite[:, j])
            size = min(self.n_validation, observed.size)
            rows = np.sort(rng.choice(observed, size=size, replace=False))
            available = observed.size - 1  # a sample is never its own neighbour
            clipped = [min(k, available) for k in k_values]
            neighbours = self._neighbours(
                self._scores[rows], max(clipped), finite[:, j], exclude=rows
            )
            observed = self.Y_train_[rows, j]
            queries = self.X_train_[rows]
            results: dict[int, float] = {}
            for k in sorted(set(clipped)):
                pred = self._local_predictions(queries, neighbours[:, :k], j, comps)
                results[k] = float(np.sqrt(np.mean((pred - observed) ** 2)))
            rmse[j] = [results[k] for k in clipped]
            chosen[j] = clipped[int(np.argmin(rmse[j]))]
        return chosen, rmse

    def kneighbours(self, X: ArrayLike, k: int) -> NDArray[np.intp]:
        """The training rows nearest to each spectrum of X, by this model's distance.

        The distance is the one the local models use: Mahalanobis in the training set's
        principal components (``n_pcs_`` of them). Every training row is a candidate,
        whatever its lab values.

        Args:
            X: Spectra, shape (n_samples, n_features).
            k: Neighbours per spectrum; more than the training rows gives them all.

        Returns:
            Training row indices, shape (n_samples, min(k, n_train)), nearest first.

        Raises:
            ValueError: If ``k`` is not an int >= 1 or X is invalid.
        """
        check_is_fitted(self)
        if not _is_int(k) or k < 1:
            raise ValueError(f"k must be an int >= 1; got {k!r}")
        X_checked = validate_data(self, X, dtype=np.float64, reset=False)
        n_train = self.X_train_.shape[0]
        return self._neighbours(
            self._query_scores(X_checked), min(int(k), n_train), np.ones(n_train, dtype=bool)
        )

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predict every target with a local model per spectrum.

        Args:
            X: Spectra, shape (n_samples, n_features).

        Returns:
            Predictions, shape (n_samples,) if fitted on 1-D y, else (n_samples, n_targets).
        """
        check_is_fitted(self)
        X_checked = validate_data(self, X, dtype=np.float64, reset=False)
        comps = self._check_params()
        query = self._query_scores(X_checked)
        finite = np.isfinite(self.Y_train_)
        k_per_target = np.atleast_1d(self.k_)
        pred = np.empty((X_checked.shape[0], self.Y_train_.shape[1]))
        for j in range(self.Y_train_.shape[1]):
            neighbours = self._neighbours(query, int(k_per_target[j]), finite[:, j])
            pred[:, j] = self._local_predictions(X_checked, neighbours, j, comps)
        return format_prediction(pred, self._y_ndim)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
