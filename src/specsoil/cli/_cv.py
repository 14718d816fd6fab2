"""``specsoil cv``: cross-validated comparison of models under one protocol."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from specsoil._atomic import atomic_write_text
from specsoil.cli._common import LoadedData, add_run_flags, console, load_run, resolve_models
from specsoil.config import RunConfig
from specsoil.evaluate import (
    CVResult,
    Fold,
    column_folds,
    cross_validate,
    group_splits,
    kfold_splits,
    train_test_column,
    write_report,
)
from specsoil.models import default_recipes, make_recipe

DEFAULT_FOLDS = 10


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``cv``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "cv",
        help="cross-validate models and write metrics, predictions and plots",
        description="Cross-validate one or more models on a spectra table. Every tuning "
        "choice (PLS components, SVR grid, MBL neighbours) is made inside the training "
        "folds only.",
    )
    add_run_flags(parser)
    parser.add_argument(
        "--model",
        action="append",
        help="recipe or config model name (repeatable); default: the classic recipes and cnn1d",
    )
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--folds", type=int, help=f"seeded K-fold (default {DEFAULT_FOLDS})")
    split.add_argument("--fold-column", help="column whose values name the test folds")
    split.add_argument("--group-column", help="leave-one-group-out on this column")
    split.add_argument(
        "--train-column", help="rows where this column is 1/true calibrate, the rest test"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="model fits run in parallel; -1 uses every core"
    )
    parser.add_argument("--out", required=True, help="report directory to write")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil cv``."""
    run_ = load_run(args)
    config, seed, loaded, targets = run_.config, run_.seed, run_.loaded, run_.targets
    table = loaded.table
    names = args.model or list(config.models) or default_recipes()
    specs = resolve_models(names, config)
    folds, split_desc = _resolve_folds(args, config, loaded, seed)
    estimators = {
        spec.name: make_recipe(
            spec.recipe,
            table.wavelengths,
            preprocessing=spec.preprocessing,
            params=spec.params,
            random_state=seed,
        )
        for spec in specs
    }
    Y = table.targets(targets)
    started = time.perf_counter()
    with _progress(args) as progress:
        task = progress.add_task("cv", total=len(specs) * len(folds))

        def advance(model: str, fold: str, done: int, total: int) -> None:
            progress.update(task, completed=done, description=f"{model} fold {fold}")

        result = cross_validate(
            estimators,
            table.X,
            Y,
            target_names=targets,
            folds=folds,
            sample_ids=list(table.sample_ids),
            progress=advance,
            n_jobs=args.jobs,
        )
    resolved = {
        "data": table.source,
        "dataset": loaded.dataset,
        "n_samples": table.n_samples,
        "wavelength_range_nm": [float(table.wavelengths[0]), float(table.wavelengths[-1])],
        "n_wavelengths": int(table.wavelengths.size),
        "spectra_kind": table.spectra_kind,
        "spectra_kind_detected": table.kind_detected,
        "dropped_rows": list(table.dropped_rows),
        "targets": targets,
        "split": split_desc,
        "seed": seed,
        "models": {
            s.name: {"recipe": s.recipe, "preprocessing": s.preprocessing, "params": s.params}
            for s in specs
        },
    }
    out = Path(args.out)
    write_report(result, out, config=resolved)
    atomic_write_text(out / "config.resolved.yaml", yaml.safe_dump(resolved, sort_keys=False))
    _print_results(console(), result, Y, targets, time.perf_counter() - started, split_desc)
    console().print(f"report written to {out}/")
    return 0


def _resolve_folds(
    args: argparse.Namespace, config: RunConfig, loaded: LoadedData, seed: int
) -> tuple[list[Fold], str]:
    table = loaded.table
    train_column = args.train_column or config.train_column
    fold_column = args.fold_column or config.fold_column
    group_column = args.group_column or config.group_column
    if train_column:
        return [train_test_column(table.column(train_column), column=train_column)], (
            f"calibration/test split on column {train_column!r}"
        )
    if fold_column:
        return list(column_folds(table.column(fold_column), column=fold_column)), (
            f"folds from column {fold_column!r}"
        )
    if group_column:
        return list(group_splits(table.column(group_column), column=group_column)), (
            f"leave-one-group-out on column {group_column!r}"
        )
    k = args.folds or config.folds or DEFAULT_FOLDS
    return list(kfold_splits(table.n_samples, n_splits=k, random_state=seed)), (
        f"{k}-fold CV, seed {seed}"
    )


def _progress(args: argparse.Namespace) -> Progress:
    return Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=bool(args.quiet),
        transient=True,
    )


def _print_results(
    out: Console,
    result: CVResult,
    Y: np.ndarray,
    targets: list[str],
    seconds: float,
    split_desc: str,
) -> None:
    table = Table(title=f"Cross-validated results ({split_desc})")
    for column in ("target", "model", "n", "R²", "RMSE", "bias", "RPD", "RPIQ", "CCC", "fit s"):
        table.add_column(column, justify="left" if column in ("target", "model") else "right")
    metrics = result.metrics
    for target in targets:
        rows = metrics[metrics["target"] == target]
        best = rows["rmse"].min()
        for _, row in rows.iterrows():
            style = "bold green" if row["rmse"] == best else None
            table.add_row(
                target,
                str(row["model"]),
                str(int(row["n"])),
                *(_fmt(row[k]) for k in ("r2", "rmse", "bias", "rpd", "rpiq", "ccc")),
                f"{result.fit_seconds.get(str(row['model']), float('nan')):.1f}",
                style=style,
            )
        table.add_section()
    out.print(table)
    missing = {t: int(np.isnan(Y[:, j]).sum()) for j, t in enumerate(targets)}
    if any(missing.values()):
        shown = ", ".join(f"{t}: {n}" for t, n in missing.items() if n)
        out.print(f"missing lab values were masked per target ({shown})")
    out.print(f"total time {seconds:.1f} s; best RMSE per target in bold")


def _fmt(value: float) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.3f}"
