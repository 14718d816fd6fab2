"""Pieces shared by the subcommands: data flags, loading, targets and model specs."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from specsoil import _output_plan, ops
from specsoil._atomic import OutputKind
from specsoil._errors import SpecsoilError
from specsoil.cli._scan_flags import (
    ScanOptions,
    add_scan_flags,
    read_scan_data,
    refuse_scan_flags,
    scan_options,
)
from specsoil.config import RunConfig, load_config
from specsoil.data import (
    CENSORED_POLICIES,
    DEFAULT_DATASET,
    SPECTRA_KINDS,
    CensoredPolicy,
    SpectraKind,
    SpectraTable,
    is_scan_source,
    list_datasets,
    load_dataset,
)
from specsoil.library import load_data_source
from specsoil.ops import ModelSpec

logger = logging.getLogger(__name__)

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


@contextlib.contextmanager
def progress_bar(label: str, *, quiet: bool) -> Iterator[ops.ProgressCallback]:
    """A progress bar on stderr (none with --quiet), fed by an operation's progress callback.

    The bar vanishes when the operation ends, leaving only the results on the screen.
    """
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def advance(update: ops.ProgressUpdate) -> None:
            progress.update(
                task, completed=update.done, total=update.total, description=update.description
            )

        yield advance


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


def add_data_flags(
    parser: argparse.ArgumentParser, *, required: bool = False, library_filters: bool = True
) -> None:
    """Add --data, --spectra-kind, --drop-invalid, --spectral-columns, --censored and more.

    The scan-folder flags come too, and the library filters unless ``library_filters`` is
    False. :func:`data_source` turns all of them into an operation's source.
    """
    default = "" if required else f"; default: the bundled {DEFAULT_DATASET!r} dataset"
    parser.add_argument(
        "--data",
        required=required,
        help="spectra table (CSV/TSV, optionally .gz, or Parquet), instrument scans (a file, "
        "folder, glob or .zip), a bundled dataset name, or a spectral library URL "
        "(sqlite:///library.db, postgresql://user@host/db)" + default,
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
        **library_filters(args),
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
    instrument: Sequence[str] | None = None,
    properties: Sequence[str] | None = None,
    where: Sequence[str] | None = None,
) -> LoadedData:
    """Read ``data`` (a path, scans, library URL or bundled dataset name); ``None``: the default.

    Scan files (a folder, glob, zip or instrument file) go through ``read_scans`` with the
    ``scans`` options and its report is logged; tables and library URLs go through
    ``load_data_source``.
    """
    bundled = {info.name: info for info in list_datasets()}
    options = scans or ScanOptions()
    if data is not None and not (data in bundled and not Path(data).exists()):
        if is_scan_source(data):
            result = read_scan_data(data, spectra_kind, options)
            describe_table(result.table)
            return LoadedData(result.table, notes=result.report.lines())
        refuse_scan_flags(data, options)
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
            spectral_columns=spectral_columns,
            censored=censored,
            instrument=instrument,
            properties=properties,
            where=where,
        )
        loaded = LoadedData(table)
    describe_table(loaded.table)
    return loaded


def _tuple_or_none(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values else None


def data_source(args: argparse.Namespace, config: RunConfig | None = None) -> ops.DataSource:
    """The flags of :func:`add_data_flags` as an operation's source (flags win over ``config``)."""
    base = config or RunConfig()
    scans = scan_options(args, base)
    return ops.DataSource(
        data=args.data or base.data,
        spectra_kind=args.spectra_kind or base.spectra_kind,
        drop_invalid=args.drop_invalid or base.drop_invalid,
        spectral_columns=args.spectral_columns,
        censored=args.censored,
        lab=scans.lab,
        id_column=scans.id_column,
        id_from_filename=scans.id_from_filename,
        replicates=scans.replicates,
        instrument=_tuple_or_none(getattr(args, "instrument", None)),
        properties=_tuple_or_none(getattr(args, "property", None)),
        where=_tuple_or_none(getattr(args, "where", None)),
    )


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
    return ops.resolve_targets(loaded, list(requested or config.targets))


def resolve_models(names: Sequence[str], config: RunConfig) -> list[ModelSpec]:
    """Turn model names (recipes or config variants) into specs; unknown names list the choices."""
    return ops.resolve_models(names, config.models)


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
