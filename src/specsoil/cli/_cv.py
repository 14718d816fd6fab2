"""``specsoil cv``: cross-validated comparison of models under one protocol."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from specsoil._errors import SpecsoilError
from specsoil.cli._common import (
    add_coordinate_flags,
    add_output_flags,
    add_run_flags,
    console,
    data_source,
    progress_bar,
)
from specsoil.config import load_config
from specsoil.evaluate import VALIDATION_TITLES, CVResult
from specsoil.ops import CVRequest, run_cv
from specsoil.ops._cv import DEFAULT_FOLDS


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
    config = load_config(args.config)
    if args.folds is None and config.folds == 1:
        raise SpecsoilError("folds must be at least 2 for K-fold CV; got 1 (from the config)")
    request = CVRequest(
        source=data_source(args, config),
        targets=tuple(args.target or config.targets),
        models=tuple(args.model or ()),
        variants=config.models,
        seed=args.seed if args.seed is not None else config.seed,
        folds=args.folds if args.folds is not None else config.folds,
        fold_column=args.fold_column or config.fold_column,
        group_column=args.group_column or config.group_column,
        train_column=args.train_column or config.train_column,
        jobs=args.jobs,
        spatial_blocks=args.spatial_blocks,
        location_tolerance=args.location_tolerance,
        x=args.x,
        y=args.y,
        crs=args.crs,
        out=args.out,
        overwrite=args.overwrite,
        other_inputs=(args.config,) if args.config else (),
    )
    with progress_bar("cv", quiet=args.quiet) as progress:
        outcome = run_cv(request, progress=progress)
    show = console()
    for note in outcome.notes:
        show.print(note)
    if not outcome.spatial:
        split = outcome.descriptions["random"]
        random = outcome.results["random"]
        _print_results(show, random, outcome.lab_values, outcome.targets, outcome.seconds, split)
    else:
        _print_comparison(
            show, outcome.results, outcome.targets, outcome.seconds, outcome.descriptions
        )
    show.print(f"report written to {args.out}/")
    return 0


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
