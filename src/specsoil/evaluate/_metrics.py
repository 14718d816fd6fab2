"""Regression metrics used in soil spectroscopy, computed on paired observed/predicted values.

Every metric drops the pairs where either value is NaN, so masked (missing) lab values never
count. With fewer than two valid pairs a metric is undefined and returns NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

METRIC_NAMES: tuple[str, ...] = ("r2", "rmse", "bias", "rpd", "rpiq", "ccc")
"""Names of the metrics returned by :func:`regression_metrics`, after ``n``."""


def _valid_pairs(
    y_true: ArrayLike, y_pred: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the observed and predicted values as 1-D float64, without NaN pairs."""
    obs = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    # A single-target column (n, 1) is as good as a vector; anything wider is ambiguous.
    if obs.ndim == 2 and obs.shape[1] == 1:
        obs = obs[:, 0]
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if obs.ndim != 1 or pred.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D (one target); got shapes {obs.shape} and {pred.shape}"
        )
    if obs.shape != pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length; got {obs.shape[0]} and {pred.shape[0]}"
        )
    keep = ~(np.isnan(obs) | np.isnan(pred))
    return obs[keep], pred[keep]


def _ratio(numerator: float, denominator: float) -> float:
    """Divide, giving inf for x/0 and NaN for 0/0 without numpy warnings."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(numerator) / np.float64(denominator))


def _rmse(obs: NDArray[np.float64], pred: NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean((pred - obs) ** 2)))


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination, 1 - SSE/SST (not the squared correlation).

    It is negative when the predictions are worse than the mean of the observations, and NaN
    when the observations are constant (SST = 0).

    Args:
        y_true: Observed values, shape (n_samples,).
        y_pred: Predicted values, shape (n_samples,).

    Returns:
        R², or NaN with fewer than two valid pairs.
    """
    obs, pred = _valid_pairs(y_true, y_pred)
    if obs.size < 2:
        return float("nan")
    sse = float(np.sum((obs - pred) ** 2))
    sst = float(np.sum((obs - obs.mean()) ** 2))
    if sst == 0.0:
        return float("nan")
    return 1.0 - sse / sst


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error, in the units of the target.

    Args:
        y_true: Observed values, shape (n_samples,).
        y_pred: Predicted values, shape (n_samples,).

    Returns:
        RMSE, or NaN with fewer than two valid pairs.
    """
    obs, pred = _valid_pairs(y_true, y_pred)
    if obs.size < 2:
        return float("nan")
    return _rmse(obs, pred)


def bias(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean error, mean(predicted - observed): positive when the model over-predicts.

    Args:
        y_true: Observed values, shape (n_samples,).
        y_pred: Predicted values, shape (n_samples,).

    Returns:
        The bias, or NaN with fewer than two valid pairs.
    """
    obs, pred = _valid_pairs(y_true, y_pred)
    if obs.size < 2:
        return float("nan")
    return float(np.mean(pred - obs))


def rpd(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Ratio of performance to deviation: SD(observed, ddof=1) / RMSE (Williams, 1987).

    Args:
        y_true: Observed values, shape (n_samples,).
        y_pred: Predicted values, shape (n_samples,).

    Returns:
        RPD (inf for a perfect fit), or NaN with fewer than two valid pairs.
    """
    obs, pred = _valid_pairs(y_true, y_pred)
    if obs.size < 2:
        return float("nan")
    return _ratio(float(np.std(obs, ddof=1)), _rmse(obs, pred))


def rpiq(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Ratio of performance to inter-quartile distance: IQR(observed) / RMSE.

    Bellon-Maurel et al. (2010) proposed it because soil properties are rarely normal, so the
    IQR (Q3 - Q1, numpy's default linear quantiles) describes their spread better than the SD.

    Args:
        y_true: Observed values, shape (n_samples,).
        y_pred: Predicted values, shape (n_samples,).

    Returns:
        RPIQ (inf for a perfect fit), or NaN with fewer than two valid pairs.
    """
    obs, pred = _valid_pairs(y_true, y_pred)
    if obs.size < 2:
        return float("nan")
    q1, q3 = np.quantile(obs, [0.25, 0.75])
    return _ratio(float(q3 - q1), _rmse(obs, pred))


def ccc(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Lin's concordance correlation coefficient (Lin, 1989), with population moments.

    ``2 s_xy / (s_x² + s_y² + (mean_x - mean_y)²)``: agreement with the 1:1 line, so it
    penalises bias and scale errors that the Pearson correlation ignores.

    Args:
        y_true: Observed values, shape (n_samples,).
        y_pred: Predicted values, shape (n_samples,).

    Returns:
        The CCC in [-1, 1], or NaN with fewer than two valid pairs or when both are constant
        and equal.
    """
    obs, pred = _valid_pairs(y_true, y_pred)
    if obs.size < 2:
        return float("nan")
    obs_dev = obs - obs.mean()
    pred_dev = pred - pred.mean()
    covariance = float(np.mean(obs_dev * pred_dev))  # 1/n moments, Lin (1989) eq. 2
    denominator = float(
        np.mean(obs_dev**2) + np.mean(pred_dev**2) + (obs.mean() - pred.mean()) ** 2
    )
    return _ratio(2.0 * covariance, denominator)


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """All metrics at once, on the pairs where neither value is NaN.

    Args:
        y_true: Observed values, shape (n_samples,); NaN marks a missing lab value.
        y_pred: Predicted values, shape (n_samples,).

    Returns:
        ``{"n", "r2", "rmse", "bias", "rpd", "rpiq", "ccc"}``; ``n`` (an int) is the number of
        valid pairs, and every other value is NaN when ``n < 2``.
    """
    obs, pred = _valid_pairs(y_true, y_pred)
    return {
        "n": int(obs.size),
        "r2": r2(obs, pred),
        "rmse": rmse(obs, pred),
        "bias": bias(obs, pred),
        "rpd": rpd(obs, pred),
        "rpiq": rpiq(obs, pred),
        "ccc": ccc(obs, pred),
    }
