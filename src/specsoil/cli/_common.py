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
from rich.console import Console

from specsoil._errors import SpecsoilError
from specsoil.config import RunConfig, load_config
from specsoil.data import (
    DEFAULT_DATASET,
    SPECTRA_KINDS,
    Coordinates,
    SpectraKind,
    SpectraTable,
    list_datasets,
    load_dataset,
    read_coordinates,
)
from specsoil.library import load_data_source
from specsoil.models import list_recipes, recipe_preprocessing

logger = logging.getLogger(__name__)

# Fewer lab values than this cannot both calibrate and validate a model.
MIN_TARGET_VALUES = 5


def console() -> Console:
    """A console for results on stdout; progress and logs go to stderr (hidden by --quiet)."""
    # Off a terminal (pipes, logs, tests) rich would assume 80 columns and fold the table.
    width = None if sys.stdout.isatty() else 160
    return Console(highlight=False, width=width)


def add_data_flags(
    parser: argparse.ArgumentParser, *, required: bool = False, library_filters: bool = True
) -> None:
    """Add ``--data``, ``--spectra-kind``, ``--drop-invalid`` and the library filters."""
    parser.add_argument(
        "--data",
        required=required,
        help="spectra table (CSV/TSV, optionally .gz, or Parquet), a bundled dataset name, or "
        "a spectral library URL (sqlite:///library.db, postgresql://user@host/db); "
        f"default: the bundled {DEFAULT_DATASET!r} dataset",
    )
    parser.add_argument(
        "--spectra-kind",
        choices=SPECTRA_KINDS,
        help="what the spectral values are; detected from the values when left out",
    )
    parser.add_argument(
        "--drop-invalid",
        action="store_true",
        help="drop rows with missing or non-numeric spectral values instead of stopping",
    )
    if library_filters:
        add_library_filter_flags(parser)


def add_library_filter_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--instrument``, ``--property`` and ``--where``: filters on a library --data."""
    group = parser.add_argument_group("spectral library filters (--data URL)")
    group.add_argument(
        "--instrument", action="append", help="keep this instrument's scans (repeatable)"
    )
    group.add_argument(
        "--property", action="append", help="keep this property's lab values (repeatable)"
    )
    group.add_argument(
        "--where",
        action="append",
        help="condition on a metadata column, e.g. site=A, clay>10, fold in 1,2 "
        "(repeatable; all must hold)",
    )


def library_filters(args: argparse.Namespace) -> dict[str, Any]:
    """The library filters given on the command line, as keywords for :func:`load_data`."""
    return {
        "instrument": getattr(args, "instrument", None),
        "properties": getattr(args, "property", None),
        "where": getattr(args, "where", None),
    }


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


def load_run(args: argparse.Namespace) -> Run:
    """Read the config and the data named by the flags (flags win over the config)."""
    config = load_config(args.config)
    loaded = load_data(
        args.data or config.data,
        spectra_kind=args.spectra_kind or config.spectra_kind,
        drop_invalid=args.drop_invalid or config.drop_invalid,
        **library_filters(args),
    )
    return Run(
        config=config,
        seed=args.seed if args.seed is not None else config.seed,
        loaded=loaded,
        targets=resolve_targets(loaded, args.target, config),
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
    instrument: Sequence[str] | None = None,
    properties: Sequence[str] | None = None,
    where: Sequence[str] | None = None,
) -> LoadedData:
    """Read ``data`` (a path, library URL or bundled dataset name); ``None``: the default."""
    bundled = {info.name: info for info in list_datasets()}
    if data is None or (data in bundled and not Path(data).exists()):
        name = data or DEFAULT_DATASET
        if instrument or properties or where:
            raise SpecsoilError(
                f"--data {name}: --instrument, --property and --where filter a spectral library "
                "(give a sqlite:/// or postgresql:// URL)"
            )
        info = bundled[name]
        table = load_dataset(name)
        logger.info("data: bundled dataset %r (%s)", name, info.title)
        loaded = LoadedData(table, tuple(info.targets), info.split_column, name)
    else:
        kind: SpectraKind | None = spectra_kind  # type: ignore[assignment]
        table = load_data_source(
            data,
            spectra_kind=kind,
            drop_invalid=drop_invalid,
            instrument=instrument,
            properties=properties,
            where=where,
        )
        loaded = LoadedData(table)
    describe_table(loaded.table)
    return loaded


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


def resolve_targets(
    loaded: LoadedData, requested: Sequence[str] | None, config: RunConfig
) -> list[str]:
    """Targets from the flags, else the config, else the dataset's; checked against the table."""
    targets = list(requested or config.targets or loaded.default_targets)
    table = loaded.table
    if not targets:
        raise SpecsoilError(
            f"{table.source}: say which property to model with --target; "
            f"numeric columns: {table.numeric_columns()}"
        )
    available = table.numeric_columns()
    for name in targets:
        if name not in table.metadata.columns or name not in available:
            raise SpecsoilError(f"{table.source}: unknown target {name!r}; available: {available}")
    values = table.targets(targets)  # fails early, naming the row, on non-numeric lab values
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
