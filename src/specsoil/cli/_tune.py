"""``specsoil tune``: search a model's hyper-parameters with Optuna and inner cross-validation."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.table import Table

from specsoil._atomic import atomic_directory
from specsoil._errors import SpecsoilError
from specsoil.cli._common import (
    add_output_flags,
    add_run_flags,
    console,
    load_run,
    plan_output_folder,
    resolve_models,
    run_inputs,
)
from specsoil.cli._scan_flags import scan_config_entries
from specsoil.evaluate import ParamSpec, default_search_space, parse_search_space, tune_recipe
from specsoil.library import is_library_url

DEFAULT_TRIALS = 20
DEFAULT_INNER_FOLDS = 3
_SHOWN_TRIALS = 10


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``tune``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "tune",
        help="search a model's hyper-parameters (Optuna, inner CV, pruning)",
        description="Tune one model by inner cross-validation on the rows given. Workers "
        "that pass the same --storage and --study share one study. Writes best_params.json, "
        "trials.csv and config.yaml (usable as `specsoil cv --config DIR/config.yaml`).",
    )
    add_run_flags(parser)
    parser.add_argument("--model", required=True, help="recipe or config model name to tune")
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help="trials to run")
    parser.add_argument(
        "--inner-folds", type=int, default=DEFAULT_INNER_FOLDS, help="inner CV folds"
    )
    parser.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
    parser.add_argument(
        "--storage",
        help="Optuna storage URL shared by workers: sqlite:///tune.db or postgresql://...",
    )
    parser.add_argument("--study", help="study name (default specsoil-<recipe>)")
    parser.add_argument("--search-space", help="YAML file: parameter name -> spec")
    add_output_flags(parser, help="directory to write the results to")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil tune``."""
    storage = _sqlite_file(args.storage)
    out = plan_output_folder(args, "tune", *run_inputs(args), args.search_space, storage)
    _quiet_optuna()
    run_ = load_run(args)
    config, seed, loaded, targets = run_.config, run_.seed, run_.loaded, run_.targets
    (spec,) = resolve_models([args.model], config)
    space = _search_space(args.search_space, spec.recipe, spec.params)
    table = loaded.table
    result = tune_recipe(
        spec.recipe,
        table.X,
        table.targets(targets),
        table.wavelengths,
        search_space=space,
        preprocessing=spec.preprocessing,
        n_trials=args.trials,
        inner_folds=args.inner_folds,
        timeout=args.timeout,
        storage=optuna_storage(args.storage),
        study_name=args.study,
        random_state=seed,
    )
    local = args.data and not is_library_url(args.data)  # a library's source hides its password
    data = loaded.dataset or (str(Path(args.data).resolve()) if local else table.source)
    run_config = {
        "data": data,
        "spectra_kind": args.spectra_kind or config.spectra_kind,
        "targets": targets,
        "seed": seed,
        "models": {
            spec.name: {
                "recipe": spec.recipe,
                "preprocessing": spec.preprocessing,
                "params": result.best_params,
            }
        },
    }
    if run_config["spectra_kind"] is None:
        del run_config["spectra_kind"]
    run_config.update(scan_config_entries(run_.scans))
    with atomic_directory(out, kind="tune") as folder:
        text = json.dumps(result.best_params, indent=2) + "\n"
        (folder / "best_params.json").write_text(text, encoding="utf-8")
        result.trials.to_csv(folder / "trials.csv", index=False)
        text = yaml.safe_dump(run_config, sort_keys=False)
        (folder / "config.yaml").write_text(text, encoding="utf-8")
    _print(result.trials, result.best_params, result.best_value, spec.name, result.study_name)
    shown = args.out.rstrip("/")
    console().print(f"results written to {shown}/; next: specsoil cv --config {shown}/config.yaml")
    return 0


def _sqlite_file(storage: str | None) -> str | None:
    """The database file of a ``sqlite:///PATH`` storage URL, which the output must not hold."""
    prefix = "sqlite:///"
    return storage[len(prefix) :] if storage and storage.startswith(prefix) else None


def _quiet_optuna() -> None:
    try:
        import optuna
    except ImportError:
        return  # tune_recipe explains how to install it

    # Optuna logs each trial itself; specsoil logs one shorter line per trial instead.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").propagate = False


def _search_space(
    path: str | None, recipe: str, fixed: dict[str, Any]
) -> dict[str, ParamSpec | Any]:
    """The space from ``--search-space`` or the recipe's default, plus the config's params."""
    if path is None:
        space: dict[str, ParamSpec | Any] = dict(default_search_space(recipe))
    else:
        file = Path(path)
        if not file.is_file():
            raise SpecsoilError(f"{file}: no such search-space file")
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SpecsoilError(f"{file}: not valid YAML ({exc})") from None
        space = dict(parse_search_space(raw, source=str(file)))
    # A config variant's own params stay fixed unless the space searches them.
    searched = {name.partition(".")[0] for name in space}
    for name, value in fixed.items():
        if name not in searched:
            space[name] = ParamSpec(name, "fixed", value=value)
    return space


def _print(
    trials: Any, best_params: dict[str, Any], best_value: float, model: str, study: str
) -> None:
    table = Table(title=f"Tuning {model} (study {study}): best {_SHOWN_TRIALS} trials")
    param_columns = [c for c in trials.columns if c.startswith("params_")]
    for column in ("trial", "state", "score", *(c.removeprefix("params_") for c in param_columns)):
        table.add_column(column, justify="left" if column == "state" else "right")
    ranked = trials.assign(_key=trials["value"].where(trials["state"] == "COMPLETE", np.inf))
    for _, row in ranked.sort_values("_key").head(_SHOWN_TRIALS).iterrows():
        value = row["value"]
        table.add_row(
            str(int(row["number"])),
            str(row["state"]).lower(),
            "-" if not np.isfinite(value) else f"{value:.4f}",
            *(_fmt(row[c]) for c in param_columns),
        )
    out = console()
    out.print(table)
    out.print(
        f"score: inner-CV RMSE / SD, averaged over targets; best {best_value:.4f} with "
        f"{json.dumps(best_params)}"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if not np.isfinite(value) else f"{value:.4g}"
    return str(value)


def optuna_storage(storage: str | None) -> str | None:
    """``postgresql://`` storage through psycopg 3 (the library extra), as the library uses."""
    if storage is None or not is_library_url(storage) or storage.startswith("sqlite"):
        return storage
    from specsoil.library import parse_url

    return parse_url(storage).render_as_string(hide_password=False)
