"""``specsoil cv``: cross-validated comparison of models under one protocol."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from specsoil._atomic import atomic_directory
from specsoil._errors import SpecsoilError
from specsoil.cli._common import (
    LoadedData,
    add_coordinate_flags,
    add_output_flags,
    add_run_flags,
    console,
    coordinates_from_flags,
    load_run,
    plan_output_folder,
    resolve_models,
    run_inputs,
)
from specsoil.config import RunConfig
from specsoil.data import SpectraTable
from specsoil.evaluate import (
    VALIDATION_TITLES,
    CVResult,
    Fold,
    column_folds,
    cross_validate,
    group_splits,
    kfold_splits,
    location_groups,
    location_splits,
    spatial_block_splits,
    spatial_blocks,
    train_test_column,
    write_report,
    write_validation_report,
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
    add_output_flags(parser, help="report directory to write")
    spatial = parser.add_argument_group("spatial validation")
    spatial.add_argument(
        "--spatial-blocks",
        type=float,
        metavar="SIZE",
        help="also cross-validate over square spatial blocks of SIZE map units (metres when "
        "longitude/latitude are projected to the local UTM zone), K = --folds, and "
        "leave-location-out; the report shows random and spatial CV side by side",
    )
    spatial.add_argument(
        "--location-tolerance",
        type=float,
        default=0.0,
        metavar="DIST",
        help="for leave-location-out, samples within DIST map units of each other (chained) "
        "share a location "
        "(default 0: only identical coordinates)",
    )
    add_coordinate_flags(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil cv``."""
    if args.folds is not None and args.folds < 2:
        raise SpecsoilError(f"--folds must be at least 2; got {args.folds}")
    out = plan_output_folder(args, "cv-report", *run_inputs(args))
    run_ = load_run(args)
    config, seed, loaded, targets = run_.config, run_.seed, run_.loaded, run_.targets
    table = loaded.table
    names = args.model or list(config.models) or default_recipes()
    specs = resolve_models(names, config)
    descriptions: dict[str, str] = {}
    spatial: dict[str, Any] = {}
    if args.spatial_blocks is None:
        if args.x or args.y or args.crs:
            raise SpecsoilError("--x, --y and --crs are used with --spatial-blocks SIZE only")
        folds, split_desc = _resolve_folds(args, config, loaded, seed)
        plans = {"random": folds}  # the one plan, whatever made it; no label on the bar
    else:
        plans, descriptions, spatial = _spatial_plans(args, config, table, seed)
        split_desc = descriptions["random"]
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
    results: dict[str, CVResult] = {}
    with _progress(args) as progress:
        total = len(specs) * sum(len(folds) for folds in plans.values())
        task = progress.add_task("cv", total=total)
        finished = 0  # fits of the schemes already run, so the bar spans all of them
        for validation, folds in plans.items():
            results[validation] = cross_validate(
                estimators,
                table.X,
                Y,
                target_names=targets,
                folds=folds,
                sample_ids=list(table.sample_ids),
                progress=_advancer(progress, task, finished, validation if spatial else ""),
                n_jobs=args.jobs,
            )
            finished += len(specs) * len(folds)
    resolved = {
        "data": table.source,
        "dataset": loaded.dataset,
        "n_samples": table.n_samples,
        "wavelength_range_nm": [float(table.wavelengths[0]), float(table.wavelengths[-1])],
        "n_wavelengths": int(table.wavelengths.size),
        "spectra_kind": table.spectra_kind,
        "spectra_kind_detected": table.kind_detected,
        "dropped_rows": list(table.dropped_rows),
        # Missing and censored (<x, >x) lab values of the targets, and what was done with <x, >x.
        "lab_values": {
            "censored": table.censored,
            "counts": {
                t: dict(table.lab_value_counts[t]) for t in targets if t in table.lab_value_counts
            },
        },
        "targets": targets,
        "split": split_desc,
        "seed": seed,
        "models": {
            s.name: {"recipe": s.recipe, "preprocessing": s.preprocessing, "params": s.params}
            for s in specs
        },
    }
    seconds = time.perf_counter() - started
    if spatial:
        resolved["spatial"] = spatial
    with atomic_directory(out, kind="cv-report") as folder:
        if not spatial:
            write_report(results["random"], folder, config=resolved)
        else:
            write_validation_report(results, folder, config=resolved, descriptions=descriptions)
        text = yaml.safe_dump(resolved, sort_keys=False)
        (folder / "config.resolved.yaml").write_text(text, encoding="utf-8")
    if not spatial:
        _print_results(console(), results["random"], Y, targets, seconds, split_desc)
    else:
        _print_comparison(console(), results, targets, seconds, descriptions)
    console().print(f"report written to {args.out}/")
    return 0


def _spatial_plans(
    args: argparse.Namespace, config: RunConfig, table: SpectraTable, seed: int
) -> tuple[dict[str, list[Fold]], dict[str, str], dict[str, Any]]:
    """Random K-fold, spatial block K-fold and leave-location-out plans for the same rows.

    Blocks need map units, so longitude/latitude are projected to the local UTM zone first
    (block size and tolerance then in metres). Leave-location-out deals whole locations to
    the K folds when there are more than K of them (one fit per location would be too many
    for most surveys), and leaves one location out at a time otherwise.
    """
    other = args.fold_column or args.group_column or args.train_column
    other = other or config.fold_column or config.group_column or config.train_column
    if other:
        raise SpecsoilError(
            "--spatial-blocks runs K-fold (--folds) beside spatial CV; it cannot be combined "
            f"with a fold, group or train column (got {other!r})"
        )
    k = _fold_count(args, config)
    coordinates = coordinates_from_flags(args, table)
    projected = coordinates.projected()
    units = projected.units
    x, y = projected.x, projected.y
    size, tolerance = float(args.spatial_blocks), float(args.location_tolerance)
    n_blocks = int(spatial_blocks(x, y, block_size=size).max()) + 1
    n_locations = int(location_groups(x, y, tolerance=tolerance).max()) + 1
    plans = {
        "random": kfold_splits(table.n_samples, n_splits=k, random_state=seed),
        "spatial_blocks": spatial_block_splits(
            x, y, block_size=size, n_splits=k, random_state=seed
        ),
        "leave_location_out": location_splits(
            x, y, tolerance=tolerance, n_splits=k, random_state=seed
        ),
    }
    unit = "m" if units == "metre" else f" {units}"
    where = f"in {projected.crs}"
    if projected is not coordinates:
        where += f", projected from {coordinates.crs} to the local UTM zone"
    same_place = f"within {tolerance:g}{unit}" if tolerance > 0 else "at identical coordinates"
    if n_locations <= k:
        location_desc = f"leave one location out ({n_locations} locations; samples {same_place})"
    else:
        location_desc = (
            f"{k}-fold over {n_locations} locations (samples {same_place} share one), seed {seed}"
        )
    if n_locations == table.n_samples:
        location_desc += "; every sample has its own location, so this is a random K-fold"
    descriptions = {
        "random": f"{k}-fold CV, seed {seed}",
        "spatial_blocks": f"{k} folds of {size:g}{unit} square blocks ({n_blocks} hold "
        f"samples) {where}; balanced by sample count, seed {seed}",
        "leave_location_out": location_desc,
    }
    spatial = {
        "columns": list(coordinates.columns),
        "crs": coordinates.crs,
        "projected_crs": projected.crs,
        "units": units,
        "block_size": size,
        "n_blocks": n_blocks,
        "location_tolerance": tolerance,
        "n_locations": n_locations,
        "folds": k,
    }
    console().print(
        f"coordinates {coordinates.columns[0]}/{coordinates.columns[1]} in {coordinates.crs}"
        + (f", projected to {projected.crs}" if projected is not coordinates else "")
        + f"; spatial blocks of {size:g}{unit}: {n_blocks} blocks, {n_locations} locations"
    )
    return plans, descriptions, spatial


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
    k = _fold_count(args, config)
    return list(kfold_splits(table.n_samples, n_splits=k, random_state=seed)), (
        f"{k}-fold CV, seed {seed}"
    )


def _fold_count(args: argparse.Namespace, config: RunConfig) -> int:
    """K of K-fold: ``--folds``, else the config's, else the default; at least 2."""
    k: int = args.folds if args.folds is not None else (config.folds or DEFAULT_FOLDS)
    if k < 2:
        raise SpecsoilError(f"folds must be at least 2 for K-fold CV; got {k} (from the config)")
    return k


def _advancer(
    progress: Progress, task: TaskID, finished: int, validation: str
) -> Callable[[str, str, int, int], None]:
    """A ``cross_validate`` progress callback that continues the bar after ``finished`` fits.

    ``validation`` names the scheme shown before each fit, or is empty for a plain run.
    """
    label = f"{VALIDATION_TITLES[validation]}: " if validation else ""

    def advance(model: str, fold: str, done: int, total: int) -> None:
        progress.update(task, completed=finished + done, description=f"{label}{model} fold {fold}")

    return advance


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
    # Bold shows only on a terminal; in a pipe or a file there is nothing to point at.
    bold = "; best RMSE per target in bold" if out.is_terminal else ""
    out.print(f"total time {seconds:.1f} s{bold}")


def _print_comparison(
    out: Console,
    results: dict[str, CVResult],
    targets: list[str],
    seconds: float,
    descriptions: dict[str, str],
) -> None:
    names = list(results)
    table = Table(title="Random vs spatial cross-validation")
    table.add_column("target")
    table.add_column("model")
    for metric in ("R²", "RMSE"):
        for validation in names:
            table.add_column(f"{metric} {VALIDATION_TITLES[validation]}", justify="right")
    scores: dict[tuple[str, str, str, str], float] = {}
    for v, result in results.items():
        columns = result.metrics.loc[:, ["target", "model", "r2", "rmse"]]
        for target, model, r2, rmse in columns.itertuples(index=False, name=None):
            scores[v, str(target), str(model), "r2"] = float(r2)
            scores[v, str(target), str(model), "rmse"] = float(rmse)
    for target in targets:
        for model in results[names[0]].fit_seconds:
            cells = [
                _fmt(scores.get((v, target, model, metric), float("nan")))
                for metric in ("r2", "rmse")
                for v in names
            ]
            table.add_row(target, model, *cells)
        table.add_section()
    out.print(table)
    for validation in names:
        out.print(f"{VALIDATION_TITLES[validation]}: {descriptions[validation]}")
    out.print(f"total time {seconds:.1f} s")


def _fmt(value: float) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.3f}"
