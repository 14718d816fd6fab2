"""Leak-free evaluation: split plans, out-of-fold cross-validation, metrics and reports."""

from specsoil.evaluate._cross_validation import CVResult, cross_validate
from specsoil.evaluate._metrics import bias, ccc, r2, regression_metrics, rmse, rpd, rpiq
from specsoil.evaluate._report import (
    VALIDATION_TITLES,
    plot_observed_vs_predicted,
    write_report,
    write_validation_report,
)
from specsoil.evaluate._splits import (
    Fold,
    KennardStoneSplit,
    column_folds,
    group_splits,
    kennard_stone,
    kfold_splits,
    location_groups,
    location_splits,
    spatial_block_splits,
    spatial_blocks,
    train_test_column,
)
from specsoil.evaluate._transfer import (
    ModelSpecLike,
    TransferResult,
    plot_transfer_rmse,
    transfer_cv,
    transfer_markdown,
)
from specsoil.evaluate._tuning import (
    ParamSpec,
    TuneResult,
    default_search_space,
    parse_search_space,
    tune_recipe,
)

__all__ = [
    "VALIDATION_TITLES",
    "CVResult",
    "Fold",
    "KennardStoneSplit",
    "ModelSpecLike",
    "ParamSpec",
    "TransferResult",
    "TuneResult",
    "bias",
    "ccc",
    "column_folds",
    "cross_validate",
    "default_search_space",
    "group_splits",
    "kennard_stone",
    "kfold_splits",
    "location_groups",
    "location_splits",
    "parse_search_space",
    "plot_observed_vs_predicted",
    "plot_transfer_rmse",
    "r2",
    "regression_metrics",
    "rmse",
    "rpd",
    "rpiq",
    "spatial_block_splits",
    "spatial_blocks",
    "train_test_column",
    "transfer_cv",
    "transfer_markdown",
    "tune_recipe",
    "write_report",
    "write_validation_report",
]
