"""Pieces shared by the subcommands: data flags, loading, targets and model specs."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pandas.api.types import is_numeric_dtype
from rich.console import Console

from specsoil import _output_plan
from specsoil._atomic import OutputKind
from specsoil._errors import SpecsoilError
from specsoil.cli._scan_flags import add_scan_flags, scan_options
from specsoil.config import RunConfig, load_config
from specsoil.data import (
    CENSORED_POLICIES,
    DEFAULT_DATASET,
    SPECTRA_KINDS,
    CensoredPolicy,
    Coordinates,
    DataRead,
    ScanOptions,
    SpectraKind,
    SpectraTable,
    list_readers,
    log_scan_report,
    read_coordinates,
    read_data,
)
from specsoil.models import list_recipes, recipe_preprocessing

logger = logging.getLogger(__name__)

# Fewer lab values than this cannot both calibrate and validate a model.
MIN_TARGET_VALUES = 5


# Off a terminal no line is folded: users grep the output and scripts parse it.
UNWRAPPED_WIDTH = 1_000_000


def console() -> Console:
    """A console for results on stdout; progress and logs go to stderr (hidden by --quiet).

    On a terminal rich fits the output to the window; to a pipe or a file nothing is
    wrapped, whatever the length of the paths and names printed.
    """
    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(highlight=False, width=UNWRAPPED_WIDTH, soft_wrap=True)


def add_output_flags(parser: argparse.ArgumentParser, *, help: str) -> None:
    """Add ``--out`` (described by ``help``) and ``--overwrite``."""
    parser.add_argument("--out", required=True, help=help)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out: a file, or a folder this command wrote before that "
        "holds nothing else (a folder with other files is refused, never emptied)",
    )


def plan_output_folder(
    args: argparse.Namespace, kind: OutputKind, *inputs: str | Path | None
) -> Path:
    """Check ``--out`` as a ``kind`` folder before any work (see :mod:`specsoil._output_plan`)."""
    return _output_plan.plan_output_folder(
        args.out, kind=kind, inputs=inputs, overwrite=args.overwrite
    )


def plan_output_file(args: argparse.Namespace, *inputs: str | Path | None) -> Path:
    """Check ``--out`` as a file before any work (see :mod:`specsoil._output_plan`)."""
    return _output_plan.plan_output_file(args.out, inputs=inputs, overwrite=args.overwrite)


def run_inputs(args: argparse.Namespace) -> list[str | None]:
    """The data table and config file a cv/train/tune run reads (flags win over the config)."""
    return [args.data or load_config(args.config).data, args.config]


def add_data_flags(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Add --data, --format, the table flags and the scan-file flags.

    The table flags are --spectra-kind, --drop-invalid, --spectral-columns and --censored;
    :func:`load_data_from_args` reads them all.
    """
    default = "" if required else f"; default: the bundled {DEFAULT_DATASET!r} dataset"
    parser.add_argument(
        "--data",
        required=required,
        help="spectra table (CSV/TSV, optionally .gz, or Parquet), scan files (a folder, glob, "
        ".zip or instrument file) or a bundled dataset name" + default,
    )
    parser.add_argument(
        "--format",
        dest="data_format",
        metavar="NAME",
        type=_format_name,
        help="read --data with this reader instead of recognising its format (see "
        "'specsoil formats')",
    )
    parser.add_argument(
        "--spectra-kind",
        choices=SPECTRA_KINDS,
        help="what the spectral values are; detected from the values when left out",
    )
    parser.add_argument(
        "--drop-invalid",
        action="store_true",
        help="drop rows with missing, non-numeric or impossible spectral values (or a repeated "
        "header line) instead of stopping; they are counted",
    )
    parser.add_argument(
        "--spectral-columns",
        metavar="REGEX",
        help="regular expression naming the spectral columns (e.g. '^spc\\.'), when the "
        "automatic choice is ambiguous or wrong",
    )
    parser.add_argument(
        "--censored",
        choices=CENSORED_POLICIES,
        default="missing",
        help="lab values written <x or >x: missing (default), half (x/2 for <x) or limit (x)",
    )
    add_scan_flags(parser)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Add the data flags plus ``--target``, ``--seed`` and ``--config`` (cv, train, tune)."""
    add_data_flags(parser)
    parser.add_argument("--target", action="append", help="property column (repeatable)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--config", help="YAML config with targets, models and settings")


@dataclass(frozen=True)
class Run:
    """What cv, train and tune start from: the config, the seed, the data and the targets."""

    config: RunConfig
    seed: int
    loaded: LoadedData
    targets: list[str]
    scans: ScanOptions = field(default_factory=ScanOptions)


def load_run(args: argparse.Namespace) -> Run:
    """Read the config and the data named by the flags (flags win over the config)."""
    config = load_config(args.config)
    scans = scan_options(args, config)
    loaded = load_data(
        args.data or config.data,
        spectra_kind=args.spectra_kind or config.spectra_kind,
        drop_invalid=args.drop_invalid or config.drop_invalid,
        spectral_columns=args.spectral_columns,
        censored=args.censored,
        scans=scans,
        format=args.data_format,
    )
    return Run(
        config=config,
        seed=args.seed if args.seed is not None else config.seed,
        loaded=loaded,
        targets=resolve_targets(loaded, args.target, config),
        scans=scans,
    )


@dataclass(frozen=True)
class LoadedData:
    """A table plus the targets and split column its source suggests."""

    table: SpectraTable
    default_targets: tuple[str, ...] = ()
    split_column: str | None = None
    dataset: str | None = None
    notes: list[str] = field(default_factory=list)


def load_data(
    data: str | None,
    *,
    spectra_kind: str | None = None,
    drop_invalid: bool = False,
    spectral_columns: str | None = None,
    censored: CensoredPolicy = "missing",
    scans: ScanOptions | None = None,
    format: str | None = None,
) -> LoadedData:
    """Read ``data`` with :func:`specsoil.data.read_data` and log what was read.

    ``None`` means the default bundled dataset; see ``read_data`` for the sources taken.
    """
    kind: SpectraKind | None = spectra_kind  # type: ignore[assignment]
    read = read_data(
        data,
        spectra_kind=kind,
        drop_invalid=drop_invalid,
        spectral_columns=spectral_columns,
        censored=censored,
        format=format,
        scans=scans,
    )
    loaded = loaded_data(read)
    describe_table(loaded.table)
    return loaded


def loaded_data(read: DataRead) -> LoadedData:
    """What the commands need of a :class:`DataRead`, its scan report logged."""
    if read.scan_report is not None:
        log_scan_report(read.scan_report)
    info = read.dataset
    if info is None:
        return LoadedData(read.table, notes=list(read.notes))
    logger.info("data: bundled dataset %r (%s)", info.name, info.title)
    return LoadedData(read.table, tuple(info.targets), info.split_column, info.name)


def load_data_from_args(args: argparse.Namespace) -> LoadedData:
    """:func:`load_data` with the settings of :func:`add_data_flags` (predict, explain, map)."""
    return load_data(
        args.data,
        spectra_kind=args.spectra_kind,
        drop_invalid=args.drop_invalid,
        spectral_columns=args.spectral_columns,
        censored=args.censored,
        scans=scan_options(args),
        format=args.data_format,
    )


def _format_name(name: str) -> str:
    """``--format``: a registered reader name; anything else stops argparse (exit 2)."""
    names = [reader.name for reader in list_readers()]
    if name not in names:
        raise argparse.ArgumentTypeError(
            f"unknown format {name!r}; formats: {', '.join(names)} (see 'specsoil formats')"
        )
    return name


def describe_table(table: SpectraTable) -> None:
    """Log what was read, including how the spectra kind was decided."""
    w = table.wavelengths
    logger.info(
        "spectra: %d samples x %d bands, %g-%g nm; %s (%s)",
        table.n_samples,
        w.size,
        w[0],
        w[-1],
        table.spectra_kind,
        f"detected: {table.kind_reason}; override with --spectra-kind"
        if table.kind_detected
        else table.kind_reason,
    )
    if table.lab_value_counts:
        logger.info("lab values: %s", describe_lab_values(table))


def describe_lab_values(table: SpectraTable) -> str:
    """One line: per column, the missing and censored lab values and what was done with them."""
    words = {"missing": "missing", "below": "censored <x", "above": "censored >x"}
    parts = [
        f"{name} " + ", ".join(f"{count} {words[key]}" for key, count in counts.items())
        for name, counts in table.lab_value_counts.items()
    ]
    censored = any(set(c) & {"below", "above"} for c in table.lab_value_counts.values())
    policy = f" (censored values: {table.censored}; see --censored)" if censored else ""
    return "; ".join(parts) + policy


def resolve_targets(
    loaded: LoadedData, requested: Sequence[str] | None, config: RunConfig
) -> list[str]:
    """Targets from the flags, else the config, else the dataset's; checked against the table."""
    targets = list(requested or config.targets or loaded.default_targets)
    table = loaded.table
    if not targets:
        raise SpecsoilError(
            f"{table.source}: say which property to model with --target; "
            f"numeric columns: {table.target_choices()}"
        )
    available = table.numeric_columns()
    for name in targets:
        if name not in table.metadata.columns:
            raise SpecsoilError(
                f"{table.source}: unknown target {name!r}; available: {table.target_choices()}"
            )
        if name not in available and is_numeric_dtype(table.metadata[name]):
            raise SpecsoilError(
                f"{table.source}: {name!r} is an identifier, not a lab value; available: "
                f"{table.target_choices()}"
            )
    # Fails early, naming the row and the value, on a column holding text.
    values = table.targets(targets)
    counts = np.isfinite(values).sum(axis=0)
    for name, count in zip(targets, counts, strict=True):
        if count < MIN_TARGET_VALUES:
            raise SpecsoilError(
                f"{table.source}: target {name!r} has {count} lab values; at least "
                f"{MIN_TARGET_VALUES} are needed to calibrate a model"
            )
    return targets


@dataclass(frozen=True)
class ModelSpec:
    """A model to build: its name, recipe, preprocessing steps and estimator overrides."""

    name: str
    recipe: str
    preprocessing: list[dict[str, Any]]
    params: dict[str, Any]


def resolve_models(names: Sequence[str], config: RunConfig) -> list[ModelSpec]:
    """Turn model names (recipes or config variants) into specs; unknown names list the choices."""
    recipes = list_recipes()
    specs = []
    for name in names:
        entry = config.models.get(name)
        recipe = (entry.recipe if entry and entry.recipe else None) or name
        if recipe not in recipes:
            known = sorted(set(recipes) | set(config.models))
            raise SpecsoilError(f"unknown model {name!r}; available models: {known}")
        steps = entry.preprocessing if entry and entry.preprocessing is not None else None
        specs.append(
            ModelSpec(
                name=name,
                recipe=recipe,
                preprocessing=[
                    dict(s) for s in (steps if steps is not None else recipe_preprocessing(recipe))
                ],
                params=dict(entry.params) if entry else {},
            )
        )
    return specs


def add_coordinate_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--x COL``, ``--y COL`` and ``--crs EPSG:N``: where each sample was taken."""
    group = parser.add_argument_group("coordinates")
    group.add_argument(
        "--x",
        metavar="COL",
        help="column of longitudes or eastings (default GPS_LONG when the table has it)",
    )
    group.add_argument(
        "--y",
        metavar="COL",
        help="column of latitudes or northings (default GPS_LAT when the table has it)",
    )
    group.add_argument(
        "--crs",
        metavar="EPSG:N",
        help="coordinate reference system of --x/--y as an EPSG code, e.g. EPSG:32755 for "
        "UTM zone 55S (default EPSG:4326, WGS84 longitude/latitude)",
    )


def coordinates_from_flags(args: argparse.Namespace, table: SpectraTable) -> Coordinates:
    """Read the coordinates named by :func:`add_coordinate_flags` from ``table``."""
    return read_coordinates(table, x=args.x, y=args.y, crs=args.crs)
