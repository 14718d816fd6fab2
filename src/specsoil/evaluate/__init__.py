"""Leak-free evaluation: split plans, out-of-fold cross-validation, metrics and reports."""

from specsoil.evaluate._cross_validation import CVResult, cross_validate
from specsoil.evaluate._metrics import bias, ccc, r2, regression_metrics, rmse, rpd, rpiq
from specsoil.evaluate._report import plot_observed_vs_predicted, write_report
from specsoil.evaluate._splits import (
    Fold,
    KennardStoneSplit,
    column_folds,
    group_splits,
    kennard_stone,
    kfold_splits,
    train_test_column,
)

__all__ = [
    "CVResult",
    "Fold",
    "KennardStoneSplit",
    "bias",
    "ccc",
    "column_folds",
    "cross_validate",
    "group_splits",
    "kennard_stone",
    "kfold_splits",
    "plot_observed_vs_predicted",
    "r2",
    "regression_metrics",
    "rmse",
    "rpd",
    "rpiq",
    "train_test_column",
    "write_report",
]
