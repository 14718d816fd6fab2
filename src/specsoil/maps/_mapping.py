"""One call from points to a map: grid, boundary clip, interpolation, variance and CV metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.maps._boundary import boundary_mask
from specsoil.maps._grid import Grid, make_grid
from specsoil.maps._interpolate import (
    DEFAULT_NEIGHBOURS,
    METHODS,
    MIN_POINTS,
    Method,
    VariogramFit,
    cross_validate_interpolation,
    fit_variogram,
    idw,
    ordinary_kriging,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MapResult:
    """An interpolated map and how well it predicts the points.

    Attributes:
        method: ``idw``, ``kriging`` or ``regression-kriging``.
        grid: The grid the bands lie on.
        values: The mapped value, shape ``grid.shape``; NaN outside the boundary.
        variance: Kriging variance (regression-kriging: of the residuals), same shape, or
            None for IDW.
        variograms: Fitted variograms by role: ``"values"`` (kriging), ``"trend"`` and
            ``"residuals"`` (regression-kriging).
        cv: Cross-validated accuracy at the points (see ``cross_validate_interpolation``).
        seconds: Wall time per stage (``variogram``, ``interpolate``, ``cv``).
    """

    method: Method
    grid: Grid
    values: NDArray[np.float64]
    variance: NDArray[np.float64] | None
    variograms: dict[str, VariogramFit] = field(default_factory=dict)
    cv: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def make_map(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    values: NDArray[np.float64],
    *,
    crs: str,
    method: Method = "kriging",
    trend: NDArray[np.float64] | None = None,
    resolution: float | None = None,
    boundary: Any = None,
    folds: int = 10,
    neighbours: int = DEFAULT_NEIGHBOURS,
    random_state: int = 0,
) -> MapResult:
    """Interpolate point values onto a grid over their extent, clipped to a boundary.

    Args:
        x: Point eastings in ``crs`` (projected, so distances are metres), shape (n,).
        y: Point northings, shape (n,).
        values: The values to map, shape (n,); NaN rows are left out. For
            regression-kriging: the lab values (NaN where a spectrum has none).
        crs: CRS of ``x``/``y`` and of the grid.
        method: ``idw``, ``kriging`` or ``regression-kriging``.
        trend: Regression-kriging only: model predictions at every point, shape (n,).
        resolution: Cell size in CRS units; default: 200 cells along the longer side.
        boundary: A shapely (Multi)Polygon in ``crs``; cells outside become NaN.
        folds: Cross-validation folds (``>= n`` gives leave-one-out; 0 skips CV).
        neighbours: Points per local kriging neighbourhood for large data.
        random_state: Seed for the variogram subset and the folds.

    Raises:
        SpecsoilError: For an unknown method, too few points or a missing trend.
    """
    if method not in METHODS:
        raise SpecsoilError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    x, y, values = (np.asarray(a, dtype=np.float64) for a in (x, y, values))
    if not (x.shape == y.shape == values.shape):
        raise ValueError(f"x, y and values differ in shape: {x.shape}, {y.shape}, {values.shape}")
    if method == "regression-kriging":
        if trend is None:
            raise SpecsoilError("regression-kriging needs a model's predictions as the trend")
        trend = np.asarray(trend, dtype=np.float64)
        if trend.shape != x.shape or not np.all(np.isfinite(trend)):
            raise ValueError("trend must be finite with one value per point")
    elif trend is not None:
        raise ValueError(f"trend is used by regression-kriging only, not {method}")
    observed = np.isfinite(values)
    if observed.sum() < MIN_POINTS:
        raise SpecsoilError(
            f"{int(observed.sum())} points have a value; at least {MIN_POINTS} are needed to map"
        )
    # The grid covers every point that informs the map (all spectra for regression-kriging).
    grid_points = np.ones_like(observed) if trend is not None else observed
    grid = make_grid(x[grid_points], y[grid_points], crs=crs, resolution=resolution)
    inside = np.ones(grid.shape, dtype=bool) if boundary is None else boundary_mask(boundary, grid)
    cell_x, cell_y = grid.cell_centres()
    cells = inside.ravel()
    cx, cy = cell_x[cells], cell_y[cells]
    logger.info(
        "grid: %d x %d cells of %g (%s), %d inside the boundary",
        grid.width,
        grid.height,
        grid.resolution,
        crs,
        int(cells.sum()),
    )
    ox, oy, ov = x[observed], y[observed], values[observed]
    seconds: dict[str, float] = {}
    variograms: dict[str, VariogramFit] = {}
    started = time.perf_counter()
    estimate: NDArray[np.float64]
    variance: NDArray[np.float64] | None = None
    if method == "idw":
        estimate = idw(ox, oy, ov, cx, cy)
        seconds["interpolate"] = time.perf_counter() - started
        cv_variogram = None
        cv_trend = None
    elif method == "kriging":
        variograms["values"] = fit_variogram(ox, oy, ov, random_state=random_state)
        seconds["variogram"] = time.perf_counter() - started
        started = time.perf_counter()
        estimate, variance = ordinary_kriging(
            ox, oy, ov, cx, cy, variograms["values"], neighbours=neighbours
        )
        seconds["interpolate"] = time.perf_counter() - started
        cv_variogram, cv_trend = variograms["values"], None
    else:
        if trend is None:  # checked above; repeated so the type narrows
            raise SpecsoilError("regression-kriging needs a model's predictions as the trend")
        variograms["trend"] = fit_variogram(x, y, trend, random_state=random_state)
        # A cell has no spectrum, only the trend kriged from the spectra around it. The
        # residuals are taken from that same surface, so the map (surface + kriged
        # residual) follows the lab values at the samples, and the CV predicts a held-out
        # point as the map would.
        trend_at_points, _ = ordinary_kriging(
            x, y, trend, ox, oy, variograms["trend"], neighbours=neighbours
        )
        residuals = ov - trend_at_points
        variograms["residuals"] = fit_variogram(ox, oy, residuals, random_state=random_state)
        seconds["variogram"] = time.perf_counter() - started
        started = time.perf_counter()
        trend_map, _ = ordinary_kriging(
            x, y, trend, cx, cy, variograms["trend"], neighbours=neighbours
        )
        residual_map, variance = ordinary_kriging(
            ox, oy, residuals, cx, cy, variograms["residuals"], neighbours=neighbours
        )
        estimate = trend_map + residual_map
        seconds["interpolate"] = time.perf_counter() - started
        cv_variogram, cv_trend = variograms["residuals"], trend_at_points
    values_band = np.full(grid.height * grid.width, np.nan)
    values_band[cells] = estimate
    variance_band = None
    if variance is not None:
        flat = np.full(grid.height * grid.width, np.nan)
        flat[cells] = np.maximum(variance, 0.0)  # pinv round-off can dip below 0
        variance_band = flat.reshape(grid.shape)
    cv: dict[str, Any] = {}
    if folds:
        started = time.perf_counter()
        cv = cross_validate_interpolation(
            ox,
            oy,
            ov,
            method=method,
            variogram=cv_variogram,
            trend=cv_trend,
            folds=folds,
            neighbours=neighbours,
            random_state=random_state,
        )
        seconds["cv"] = time.perf_counter() - started
    return MapResult(
        method=method,
        grid=grid,
        values=values_band.reshape(grid.shape),
        variance=variance_band,
        variograms=variograms,
        cv=cv,
        seconds=seconds,
    )
