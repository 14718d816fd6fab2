"""Regression targets of ``CNNRegressor``: checked, then standardised per target.

Shared by ``fit`` and ``finetune``; torch-free.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_array


def check_regression_targets(
    y: ArrayLike | None, n_samples: int
) -> tuple[NDArray[np.float64], int]:
    """Targets as float64 (n, k) with NaN for missing, and the number of dimensions of y.

    Raises:
        ValueError: If y is missing, infinite, mis-shaped, or a target has no finite value.
    """
    if y is None:
        raise ValueError("CNNRegressor requires y to be passed, but the target y is None")
    Y = check_array(
        y,
        ensure_2d=False,
        allow_nd=True,
        dtype=np.float64,
        ensure_all_finite="allow-nan",
        input_name="y",
    )
    y_ndim = int(Y.ndim)
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2 or Y.shape[1] == 0:
        raise ValueError(f"y must be (n_samples,) or (n_samples, n_targets); got shape {Y.shape}")
    if Y.shape[0] != n_samples:
        raise ValueError(f"y has {Y.shape[0]} rows but X has {n_samples} samples")
    empty = np.flatnonzero(~np.isfinite(Y).any(axis=0))
    if empty.size:
        raise ValueError(f"target column {int(empty[0])} of y has no finite value to learn from")
    return np.asarray(Y, dtype=np.float64), y_ndim


def target_standardisation(
    Y: NDArray[np.float64], standardize: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-target mean and scale of the finite values (0 and 1 without standardising)."""
    if not standardize:
        return np.zeros(Y.shape[1]), np.ones(Y.shape[1])
    mean = np.nanmean(Y, axis=0)
    scale = np.nanstd(Y, axis=0)
    # A constant (or single-valued) target has no spread to divide by.
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64)
