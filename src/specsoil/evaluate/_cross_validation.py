"""Out-of-fold evaluation of several models on the same split plan.

Every (model, fold) pair gets a fresh clone of the estimator, fitted on the training rows only
and asked to predict the test rows. Estimators tune themselves by inner CV inside ``fit``, so no
test row ever influences a model that predicts it.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from numpy.typing import ArrayLike, NDArray
from sklearn.base import clone

from specsoil.evaluate._metrics import METRIC_NAMES, regression_metrics
from specsoil.evaluate._splits import Fold
from specsoil.models import fit_details

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "fold",
    "target",
    "model",
    "observed",
    "predicted",
)
"""Columns of :attr:`CVResult.predictions`, in order."""

METRIC_COLUMNS: tuple[str, ...] = ("model", "target", "n", *METRIC_NAMES)
"""Columns of :attr:`CVResult.metrics`, in order."""

FOLD_METRIC_COLUMNS: tuple[str, ...] = ("model", "fold", "target", "n", *METRIC_NAMES)
"""Columns of :attr:`CVResult.fold_metrics`, in order."""

ProgressCallback = Callable[[str, str, int, int], None]
"""Called as ``progress(model, fold, completed, total)`` after each (model, fold) fit."""


@dataclass(frozen=True, slots=True, eq=False)
class CVResult:
    """Out-of-fold predictions and their metrics.

    Attributes:
        predictions: One row per (model, fold, target, test sample) with an observed value:
            columns sample_id, fold, target, model, observed, predicted. Test samples whose
            observed value is missing are omitted, since nothing can be scored on them.
        metrics: One row per (model, target), on the pooled out-of-fold predictions: columns
            model, target, n, r2, rmse, bias, rpd, rpiq, ccc. With a single fold (a
            calibration/validation split) these equal the fold's metrics.
        fold_metrics: The same metrics for each fold: columns model, fold, target, n, r2, ...
        fit_seconds: Wall time spent fitting and predicting each model, summed over folds.
        fit_details: What each model chose inside each fold's training rows (its
            preprocessing chain per target, a stack's member weights), by model and then
            fold name; models that choose nothing worth reporting are absent.
    """

    predictions: pd.DataFrame
    metrics: pd.DataFrame
    fold_metrics: pd.DataFrame
    fit_seconds: dict[str, float]
    fit_details: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def _fit_predict(
    estimator: Any, X: NDArray[Any], Y: NDArray[np.float64], fold: Fold
) -> tuple[NDArray[np.float64], float, dict[str, Any]]:
    """Fit a clone on the fold's training rows: test predictions (n_test, k), time, choices."""
    start = time.perf_counter()
    model = clone(estimator)
    # One target goes in 1-D, the scikit-learn convention that every regressor accepts.
    y_train = Y[fold.train, 0] if Y.shape[1] == 1 else Y[fold.train]
    model.fit(X[fold.train], y_train)
    predicted = np.asarray(model.predict(X[fold.test]), dtype=np.float64)
    seconds = time.perf_counter() - start
    return predicted.reshape(fold.test.size, -1), seconds, fit_details(model)


def _check_inputs(
    estimators: Mapping[str, Any],
    X: ArrayLike,
    Y: ArrayLike,
    target_names: Sequence[str],
    folds: Sequence[Fold],
    sample_ids: Sequence[str] | None,
) -> tuple[NDArray[Any], NDArray[np.float64], NDArray[np.str_]]:
    if not estimators:
        raise ValueError("estimators is empty; expected at least one named model")
    if not folds:
        raise ValueError("folds is empty; expected at least one Fold")
    features = np.asarray(X)
    if features.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {features.shape}")
    targets = np.asarray(Y, dtype=np.float64)
    if targets.ndim == 1:
        targets = targets[:, None]
    n = features.shape[0]
    if targets.ndim != 2 or targets.shape[0] != n:
        raise ValueError(f"Y must have shape ({n},) or ({n}, n_targets); got {targets.shape}")
    if isinstance(target_names, str) or len(target_names) != targets.shape[1]:
        raise ValueError(
            f"target_names must list {targets.shape[1]} names, one per column of Y; "
            f"got {target_names!r}"
        )
    if sample_ids is None:
        ids = np.arange(1, n + 1).astype(str)  # 1-based row numbers, as SpectraTable does
    else:
        ids = np.asarray([str(s) for s in sample_ids])
        if ids.shape != (n,):
            raise ValueError(f"sample_ids must have {n} entries; got {ids.shape[0]}")
    fold_names = [fold.name for fold in folds]
    if len(set(fold_names)) != len(fold_names):
        raise ValueError(f"fold names must be unique; got {fold_names}")
    for fold in folds:
        highest = max(int(fold.train.max()), int(fold.test.max()))
        lowest = min(int(fold.train.min()), int(fold.test.min()))
        if lowest < 0 or highest >= n:
            raise ValueError(
                f"fold {fold.name!r} refers to row {highest if highest >= n else lowest}; "
                f"X has rows 0..{n - 1}"
            )
    return features, targets, ids


def _metric_rows(
    frame: pd.DataFrame, keys: Sequence[str], key_values: Iterator[tuple[str, ...]]
) -> list[dict[str, Any]]:
    """Metrics for each combination of ``keys``, in the order given (groupby would sort)."""
    grouped = {name: part for name, part in frame.groupby(list(keys), sort=False)}
    rows = []
    for values in key_values:
        part = grouped.get(values)
        if part is None:
            scores = regression_metrics(np.empty(0), np.empty(0))
        else:
            scores = regression_metrics(part["observed"].to_numpy(), part["predicted"].to_numpy())
        rows.append({**dict(zip(keys, values, strict=True)), **scores})
    return rows


def cross_validate(
    estimators: Mapping[str, Any],
    X: ArrayLike,
    Y: ArrayLike,
    *,
    target_names: Sequence[str],
    folds: Sequence[Fold],
    sample_ids: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    n_jobs: int = 1,
) -> CVResult:
    """Fit every model on every fold's training rows and score its out-of-fold predictions.

    Args:
        estimators: Named scikit-learn regressors (never fitted here: each fold fits a clone).
            A single target is passed to ``fit`` as a 1-D y, several as (n_train, n_targets);
            y may hold NaN for missing lab values, which the estimators must mask.
        X: Spectra, shape (n_samples, n_wavelengths).
        Y: Lab values, shape (n_samples,) or (n_samples, n_targets); NaN where missing.
        target_names: One name per column of Y.
        folds: The split plan (see :func:`kfold_splits` and friends).
        sample_ids: One identifier per row; defaults to 1-based row numbers.
        progress: Called as ``progress(model, fold, completed, total)`` after each fit.
        n_jobs: Number of (model, fold) fits run in parallel by joblib; -1 uses every core.

    Returns:
        The predictions, pooled and per-fold metrics, and fit times.

    Raises:
        ValueError: If the shapes of X, Y, target_names, sample_ids or folds disagree.
    """
    features, targets, ids = _check_inputs(estimators, X, Y, target_names, folds, sample_ids)
    names = list(target_names)
    tasks = [(model, fold) for model in estimators for fold in folds]
    logger.info("Cross-validating %d models on %d folds", len(estimators), len(folds))

    def jobs() -> Iterator[Any]:
        for model, fold in tasks:
            yield delayed(_fit_predict)(estimators[model], features, targets, fold)

    outputs = Parallel(n_jobs=n_jobs, return_as="generator")(jobs())
    fit_seconds = dict.fromkeys(estimators, 0.0)
    chosen: dict[str, dict[str, dict[str, Any]]] = {}
    blocks = []
    for done, ((model, fold), (predicted, seconds, details)) in enumerate(
        zip(tasks, outputs, strict=True), start=1
    ):
        if predicted.shape != (fold.test.size, len(names)):
            raise ValueError(
                f"model {model!r} predicted shape {predicted.shape} on fold {fold.name!r}; "
                f"expected ({fold.test.size}, {len(names)})"
            )
        bad = int(np.count_nonzero(~np.isfinite(predicted)))
        if bad:
            warnings.warn(
                f"model {model!r} predicted {bad} NaN or infinite values on fold {fold.name!r}; "
                "those samples are left out of its metrics",
                UserWarning,
                stacklevel=2,
            )
        fit_seconds[model] += seconds
        if details:
            chosen.setdefault(model, {})[fold.name] = details
        observed = targets[fold.test]  # (n_test, k)
        block = pd.DataFrame(
            {
                "sample_id": np.tile(ids[fold.test], len(names)),
                "fold": fold.name,
                "target": np.repeat(names, fold.test.size),
                "model": model,
                "observed": observed.T.ravel(),  # target-major, matching the repeat above
                "predicted": np.where(np.isinf(predicted), np.nan, predicted).T.ravel(),
            }
        )
        blocks.append(block[block["observed"].notna()])
        if progress is not None:
            progress(model, fold.name, done, len(tasks))

    predictions = pd.concat(blocks, ignore_index=True).loc[:, list(PREDICTION_COLUMNS)]
    predictions = predictions.astype({"sample_id": str, "fold": str, "target": str, "model": str})
    metrics = pd.DataFrame(
        _metric_rows(
            predictions,
            ("model", "target"),
            ((model, target) for model in estimators for target in names),
        ),
        columns=list(METRIC_COLUMNS),
    )
    fold_metrics = pd.DataFrame(
        _metric_rows(
            predictions,
            ("model", "fold", "target"),
            (
                (model, fold.name, target)
                for model in estimators
                for fold in folds
                for target in names
            ),
        ),
        columns=list(FOLD_METRIC_COLUMNS),
    )
    return CVResult(predictions, metrics, fold_metrics, fit_seconds, chosen)
