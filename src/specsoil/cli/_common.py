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
from specsoil.cli._scan_flags import add_scan_flags, scan_options
from specsoil.config import RunConfig, load_config
from specsoil.data import (
    CENSORED_POLICIES,
    DEFAULT_DATASET,
    SPECTRA_KINDS,
    ScanOptions,
    list_readers,
)
from specsoil.ops import ModelSpec
from specsoil.ops._inputs import (
    LoadedData,
    load_data,
)

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
        format=args.data_format,
    )
    return Run(
        config=config,
        seed=args.seed if args.seed is not None else config.seed,
        loaded=loaded,
        targets=resolve_targets(loaded, args.target, config),
        scans=scans,
    )


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
