"""Spatial interpolation of point values onto a grid: IDW, ordinary and regression-kriging.

Methods (all in a projected CRS, distances in metres):

* ``idw``: inverse-distance weighting, weights ``1 / d**power`` over the ``neighbours``
  nearest points (``scipy.spatial.cKDTree``); a cell that falls on a point takes its value
  (the mean of coincident points' values).
* ``kriging``: ordinary kriging with ``gstools.krige.Ordinary``. The variogram is fitted
  automatically: the empirical (Matheron) variogram is estimated on up to
  ``VARIOGRAM_SAMPLE`` points, and the Exponential, Spherical, Gaussian, Matern and Stable
  models (each with a nugget) are fitted to it; the one with the highest R² is used. The
  nugget is treated as measurement error (gstools' ``exact=False``), so the map is smooth at
  the points. Up to ``neighbours`` points (default 100) are kriged with one global system.
  Beyond that the targets are cut into square tiles and each tile is kriged from the
  ``neighbours`` points nearest its centre (a moving neighbourhood, as gstat's ``nmax``
  does). Each estimate costs O(neighbours²), so 20,000 points cost a few thousand small
  solves instead of one 20,000 x 20,000 system. Neighbourhoods change from tile to tile;
  tiles hold ~5 points each so the resulting seams stay at the scale of a point spacing.
* ``regression-kriging``: a spectral model's predictions are the trend and the kriged lab
  residuals correct it. Trend: ordinary kriging of the model predictions at every spectrum's
  location (with their own fitted variogram) over the grid, since a cell has no spectrum.
  Residuals: lab value minus that trend surface at the rows that have a lab value,
  ordinary-kriged with their own fitted variogram. Map = trend + kriged residual. The
  variance band is the residual kriging variance; it leaves out the trend's own error, so
  it understates the total uncertainty.

Cross-validation (``cross_validate_interpolation``) holds out one fold of points at a time
and predicts it from the others with the same method; the variogram is the one fitted on all
points, as gstat's ``krige.cv`` does. For regression-kriging the held-out point keeps the
trend the map has there (``make_map`` passes the trend surface; it comes from the spectra,
not from lab values) and only its residual is held out. When the model was calibrated on
these same rows, its predictions there are in-sample and the regression-kriging CV is
optimistic; map a table the model was not trained on, or read the model's own CV, for an
independent figure.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.evaluate import kfold_splits, regression_metrics
from specsoil.maps._deps import require_maps_module

logger = logging.getLogger(__name__)

Method = Literal["idw", "kriging", "regression-kriging"]
METHODS: tuple[Method, ...] = ("idw", "kriging", "regression-kriging")

# The empirical variogram of n points has n²/2 pairs; a random subset this large estimates
# it well and keeps 20,000 points from needing 200 M pair distances.
VARIOGRAM_SAMPLE = 2000
VARIOGRAM_BINS = 15
VARIOGRAM_MODELS = ("Exponential", "Spherical", "Gaussian", "Matern", "Stable")
# Kriging neighbourhood: each grid cell costs O(neighbours²) in gstools, so 100 keeps a
# 40,000-cell map to seconds while matching global kriging closely wherever the variogram
# range spans fewer points than that (gstat users typically set nmax to 30-100).
DEFAULT_NEIGHBOURS = 100
IDW_NEIGHBOURS = 12
MIN_POINTS = 5


@dataclass(frozen=True)
class EmpiricalVariogram:
    """The binned empirical semivariogram.

    Attributes:
        bin_centres: Lag distances in CRS units, shape (n_bins,).
        gamma: Semivariance per bin, shape (n_bins,).
        counts: Point pairs per bin, shape (n_bins,).
        n_points: Points the estimate used (a random subset when there are many).
    """

    bin_centres: NDArray[np.float64]
    gamma: NDArray[np.float64]
    counts: NDArray[np.int64]
    n_points: int


@dataclass(frozen=True)
class VariogramFit:
    """The chosen variogram model, the empirical variogram and every candidate's fit.

    Attributes:
        model_name: The best candidate (``"Exponential"``, ...).
        params: Its parameters (``var``, ``len_scale``, ``nugget``, plus ``nu``/``alpha``).
        r2: R² of its fit to the empirical variogram.
        model: The fitted ``gstools.CovModel``.
        empirical: The empirical variogram it was fitted to.
        candidates: Every model that could be fitted: name -> (fitted model, R²).
    """

    model_name: str
    params: dict[str, float]
    r2: float
    model: Any
    empirical: EmpiricalVariogram
    candidates: dict[str, tuple[Any, float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of the fit."""
        return {
            "model": self.model_name,
            "params": self.params,
            "r2": self.r2,
            "n_points": self.empirical.n_points,
            "candidates_r2": {name: r2 for name, (_, r2) in self.candidates.items()},
        }


def _require_gstools() -> Any:
    return require_maps_module("gstools", "kriging")


def _check_points(
    x: NDArray[np.float64], y: NDArray[np.float64], values: NDArray[np.float64], what: str
) -> None:
    if not (x.shape == y.shape == values.shape) or x.ndim != 1:
        raise ValueError(
            f"x, y and values must be 1-D and equally long; got {x.shape}, {y.shape}, "
            f"{values.shape}"
        )
    if x.size < MIN_POINTS:
        raise SpecsoilError(f"{what}: {x.size} points; at least {MIN_POINTS} are needed to map")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what}: values must be finite (drop rows without values first)")


def estimate_variogram(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    values: NDArray[np.float64],
    *,
    n_bins: int = VARIOGRAM_BINS,
    max_points: int = VARIOGRAM_SAMPLE,
    random_state: int = 0,
) -> EmpiricalVariogram:
    """The isotropic empirical semivariogram (Matheron estimator) up to a third of the extent.

    Args:
        x: Eastings, shape (n,).
        y: Northings, shape (n,).
        values: Values at the points, shape (n,).
        n_bins: Number of lag bins.
        max_points: Use a random subset of this many points when there are more.
        random_state: Seed for the subset.
    """
    gs = _require_gstools()
    rng = np.random.default_rng(random_state)
    if x.size > max_points:
        keep = np.sort(rng.choice(x.size, max_points, replace=False))
        x, y, values = x[keep], y[keep], values[keep]
    diagonal = math.hypot(float(np.ptp(x)), float(np.ptp(y)))
    if diagonal <= 0:
        raise SpecsoilError("all points share one location; a variogram cannot be estimated")
    # A third of the diagonal: beyond it too few pairs span the lag for a stable estimate.
    edges = np.linspace(0.0, diagonal / 3.0, n_bins + 1)
    centres, gamma, counts = gs.vario_estimate((x, y), values, edges, return_counts=True)
    filled = counts > 0
    return EmpiricalVariogram(
        bin_centres=np.asarray(centres, dtype=np.float64)[filled],
        gamma=np.asarray(gamma, dtype=np.float64)[filled],
        counts=np.asarray(counts, dtype=np.int64)[filled],
        n_points=int(x.size),
    )


def fit_variogram(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    values: NDArray[np.float64],
    *,
    models: tuple[str, ...] = VARIOGRAM_MODELS,
    random_state: int = 0,
) -> VariogramFit:
    """Estimate the empirical variogram and fit each candidate model; keep the best R².

    Args:
        x: Eastings, shape (n,).
        y: Northings, shape (n,).
        values: Values at the points, shape (n,).
        models: gstools covariance model names to try.
        random_state: Seed for the variogram's point subset.

    Raises:
        SpecsoilError: If the values do not vary or no model can be fitted.
    """
    gs = _require_gstools()
    _check_points(x, y, values, "variogram")
    if float(np.var(values)) == 0.0:
        raise SpecsoilError("every value is the same; there is no spatial variation to krige")
    empirical = estimate_variogram(x, y, values, random_state=random_state)
    if empirical.gamma.size < 3:
        raise SpecsoilError(
            f"only {empirical.gamma.size} lag bins hold point pairs; too few to fit a variogram"
        )
    # Pairs per bin as weights: the short lags that matter most for kriging are well sampled.
    weights = empirical.counts / empirical.counts.sum()
    candidates: dict[str, tuple[Any, float]] = {}
    for name in models:
        model = getattr(gs, name)(dim=2)
        try:
            _, _, r2 = model.fit_variogram(
                empirical.bin_centres,
                empirical.gamma,
                nugget=True,
                weights=weights,
                return_r2=True,
            )
        except (RuntimeError, ValueError) as exc:  # curve_fit did not converge
            logger.info("variogram: %s could not be fitted (%s)", name, exc)
            continue
        if np.isfinite(r2):
            candidates[name] = (model, float(r2))
    if not candidates:
        raise SpecsoilError(f"none of the variogram models {list(models)} could be fitted")
    best = max(candidates, key=lambda n: candidates[n][1])
    model, r2 = candidates[best]
    params = {name: float(getattr(model, name)) for name in model.opt_arg}
    params |= {"var": float(model.var), "len_scale": float(model.len_scale)}
    params["nugget"] = float(model.nugget)
    logger.info(
        "variogram: %s (R² %.3f), sill %.4g, range %.4g, nugget %.4g",
        best,
        r2,
        model.var + model.nugget,
        model.len_scale,
        model.nugget,
    )
    return VariogramFit(best, params, r2, model, empirical, candidates)


def idw(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    values: NDArray[np.float64],
    target_x: NDArray[np.float64],
    target_y: NDArray[np.float64],
    *,
    power: float = 2.0,
    neighbours: int = IDW_NEIGHBOURS,
) -> NDArray[np.float64]:
    """Inverse-distance-weighted values at the targets from their nearest points.

    Args:
        x: Point eastings, shape (n,).
        y: Point northings, shape (n,).
        values: Values at the points, shape (n,).
        target_x: Target eastings, shape (m,).
        target_y: Target northings, shape (m,).
        power: Distance exponent of the weights.
        neighbours: Points used per target.

    Returns:
        Interpolated values, shape (m,).
    """
    from scipy.spatial import cKDTree

    _check_points(x, y, values, "idw")
    if power <= 0:
        raise SpecsoilError(f"IDW power must be positive; got {power}")
    if neighbours < 1:
        raise SpecsoilError(f"IDW neighbours must be at least 1; got {neighbours}")
    k = min(neighbours, x.size)
    tree = cKDTree(np.column_stack([x, y]))
    distances, index = tree.query(np.column_stack([target_x, target_y]), k=k)
    distances = distances.reshape(target_x.size, k)  # (m, k) even when k == 1
    index = index.reshape(target_x.size, k)
    with np.errstate(divide="ignore"):
        weights = 1.0 / distances**power
    on_point = distances[:, 0] == 0
    # A target on a point takes its value; on several coincident points, their mean.
    weights[on_point] = distances[on_point] == 0
    estimate: NDArray[np.float64] = (weights * values[index]).sum(axis=1) / weights.sum(axis=1)
    return estimate


def ordinary_kriging(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    values: NDArray[np.float64],
    target_x: NDArray[np.float64],
    target_y: NDArray[np.float64],
    variogram: VariogramFit,
    *,
    neighbours: int = DEFAULT_NEIGHBOURS,
    tile_points: float | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Ordinary kriging estimates and variances at the targets (gstools).

    Args:
        x: Point eastings, shape (n,).
        y: Point northings, shape (n,).
        values: Values at the points, shape (n,).
        target_x: Target eastings, shape (m,).
        target_y: Target northings, shape (m,).
        variogram: The fitted variogram.
        neighbours: Points per local neighbourhood; up to this many points are kriged
            with one global system.
        tile_points: Data points per tile (on average) in local kriging. Neighbourhoods
            change from tile to tile, which shows as seams; tiles far smaller than the
            neighbourhood keep them at the scale of a point spacing. Default
            ``neighbours / 20``; scattered targets (cross-validation) can afford larger tiles.

    Returns:
        Estimates and kriging variances, each shape (m,).
    """
    _require_gstools()
    _check_points(x, y, values, "kriging")
    if neighbours < MIN_POINTS:
        raise SpecsoilError(f"kriging neighbours must be at least {MIN_POINTS}; got {neighbours}")
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # sklearn dep

    # Many small solves: BLAS threads add only start-up cost and, on a busy machine,
    # contention that made each 200 x 200 pseudo-inverse 100 times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        return _ordinary_kriging(
            x,
            y,
            values,
            target_x,
            target_y,
            variogram,
            neighbours,
            neighbours / 20 if tile_points is None else tile_points,
        )


def _ordinary_kriging(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    values: NDArray[np.float64],
    target_x: NDArray[np.float64],
    target_y: NDArray[np.float64],
    variogram: VariogramFit,
    neighbours: int,
    tile_points: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    gs = _require_gstools()
    estimate = np.empty(target_x.size)
    variance = np.empty(target_x.size)
    if target_x.size == 0:
        return estimate, variance
    if x.size <= neighbours:
        krige = gs.krige.Ordinary(variogram.model, cond_pos=[x, y], cond_val=values)
        field_, var = krige((target_x, target_y), mesh_type="unstructured", return_var=True)
        return np.asarray(field_, dtype=np.float64), np.asarray(var, dtype=np.float64)

    from scipy.spatial import cKDTree

    k = min(neighbours, x.size)
    # Side of a square holding ~tile_points points; for points along a line (a transect,
    # zero area) the spacing along it sets the side instead of a vanishing area.
    span_x, span_y = float(np.ptp(x)), float(np.ptp(y))
    tile = max(
        math.sqrt(span_x * span_y * tile_points / x.size),
        max(span_x, span_y) * tile_points / x.size,
    )
    if tile <= 0:  # every point at one location: one neighbourhood serves all targets
        tile = math.inf
    tree = cKDTree(np.column_stack([x, y]))
    col = np.floor((target_x - target_x.min()) / tile).astype(np.int64)
    row = np.floor((target_y - target_y.min()) / tile).astype(np.int64)
    # Sorted by (row, col) pairs, not a combined row * n_cols + col id, which overflows.
    order = np.lexsort((col, row))
    changed = (np.diff(row[order]) != 0) | (np.diff(col[order]) != 0)
    starts = np.flatnonzero(np.r_[True, changed])
    ends = np.r_[starts[1:], order.size]
    krige = None
    for start, end in zip(starts, ends, strict=True):
        members = order[start:end]
        centre = (target_x[members].mean(), target_y[members].mean())
        _, near = tree.query(centre, k=k)
        near = np.sort(np.atleast_1d(near))
        if krige is None:
            krige = gs.krige.Ordinary(
                variogram.model, cond_pos=[x[near], y[near]], cond_val=values[near]
            )
        else:
            krige.set_condition([x[near], y[near]], values[near])
        field_, var = krige(
            (target_x[members], target_y[members]), mesh_type="unstructured", return_var=True
        )
        estimate[members] = field_
        variance[members] = var
    logger.debug("kriging: %d tiles, %d neighbours each", starts.size, k)
    return estimate, variance


def cross_validate_interpolation(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    values: NDArray[np.float64],
    *,
    method: Method,
    variogram: VariogramFit | None = None,
    trend: NDArray[np.float64] | None = None,
    folds: int = 10,
    neighbours: int = DEFAULT_NEIGHBOURS,
    random_state: int = 0,
) -> dict[str, Any]:
    """K-fold cross-validation of the interpolation at the points.

    Args:
        x: Point eastings, shape (n,).
        y: Point northings, shape (n,).
        values: Observed values, shape (n,). For regression-kriging: the lab values.
        method: ``idw``, ``kriging`` or ``regression-kriging``.
        variogram: The fitted variogram (kriging: of ``values``; regression-kriging: of the
            residuals ``values - trend``).
        trend: Regression-kriging only: the trend at each point as the map has it there
            (``make_map`` passes the trend surface kriged from the spectra), shape (n,).
        folds: Number of folds; ``folds >= n`` gives leave-one-out.
        neighbours: As in :func:`ordinary_kriging`.
        random_state: Seed for the fold assignment.

    Returns:
        ``{"folds", "n", "r2", "rmse", "bias", ...}`` plus the out-of-fold predictions under
        ``"predicted"`` (a list, in point order).
    """
    if method not in METHODS:
        raise SpecsoilError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    if method != "idw" and variogram is None:
        raise ValueError(f"{method} cross-validation needs the fitted variogram")
    fitted = None if method == "idw" else variogram
    if method == "regression-kriging" and trend is None:
        raise ValueError("regression-kriging cross-validation needs the trend at the points")
    _check_points(x, y, values, "cross-validation")
    k = min(folds, x.size)
    if k < 2:
        raise SpecsoilError(f"cross-validation needs at least 2 folds; got {folds}")
    target = values if trend is None else values - trend
    predicted = np.empty(x.size)
    for fold in kfold_splits(x.size, n_splits=k, random_state=random_state):
        train, test = fold.train, fold.test
        if fitted is None:
            predicted[test] = idw(x[train], y[train], target[train], x[test], y[test])
        else:
            predicted[test], _ = ordinary_kriging(
                x[train],
                y[train],
                target[train],
                x[test],
                y[test],
                fitted,
                neighbours=neighbours,
                tile_points=neighbours / 4,  # scattered targets: seams do not matter
            )
    if trend is not None:
        predicted = predicted + trend
    metrics = regression_metrics(values, predicted)
    return {
        "folds": int(k),
        "scheme": "leave-one-out" if k == x.size else f"{k}-fold, seed {random_state}",
        **{name: float(v) for name, v in metrics.items() if name != "n"},
        "n": int(x.size),
        "predicted": [float(v) for v in predicted],
    }
