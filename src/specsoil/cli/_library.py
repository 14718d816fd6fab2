"""``specsoil library``: create, fill, list and export a spectral library database."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from specsoil._errors import SpecsoilError
from specsoil.cli._common import (
    add_coordinate_flags,
    add_data_flags,
    add_library_filter_flags,
    console,
    data_source,
    library_filters,
)
from specsoil.data import SpectraTable, list_datasets
from specsoil.ops import load_source

DB_HELP = "library URL: sqlite:///library.db or postgresql://user@host/dbname"


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``library`` and its subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "library",
        help="a spectral library database (SQLite or PostgreSQL): init, import, list, export",
        description="Keep every scan with its instrument and sample, and every lab value with "
        "its property, in one database that grows import by import. Every command that reads "
        "data accepts the library URL as --data.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    init = actions.add_parser("init", help="create a library, or upgrade an older one in place")
    init.add_argument("--db", required=True, help=DB_HELP)
    init.set_defaults(func=run_init)

    imports = actions.add_parser(
        "import", help="import a spectra table (one transaction; re-importing adds nothing)"
    )
    imports.add_argument("--db", required=True, help=DB_HELP)
    add_data_flags(imports, required=True, library_filters=False)
    group = imports.add_argument_group("what the table holds")
    group.add_argument("--instrument", help="spectrometer name (default: an instrument column)")
    group.add_argument("--serial", help="its serial number (default: a serial_number column)")
    group.add_argument("--instrument-kind", help="its make or kind, e.g. 'ASD FieldSpec 4'")
    group.add_argument(
        "--lab-column",
        action="append",
        metavar="COL",
        help="a column of lab values (repeatable); default: numeric columns other than ids, "
        "coordinates, depths and fold/split labels",
    )
    group.add_argument("--unit", action="append", metavar="COL=UNIT", help="unit of a lab column")
    group.add_argument(
        "--method", action="append", metavar="COL=TEXT", help="lab method of a lab column"
    )
    group.add_argument("--site-column", metavar="COL", help="column naming the site")
    group.add_argument(
        "--id-prefix",
        default="",
        help="put before every sample id, e.g. 'nirsoil:', when two tables number samples alike",
    )
    add_coordinate_flags(imports)
    imports.set_defaults(func=run_import)

    listing = actions.add_parser("list", help="count spectra by instrument, property and batch")
    listing.add_argument("--db", required=True, help=DB_HELP)
    listing.set_defaults(func=run_list)

    export = actions.add_parser("export", help="write the library as a Parquet spectra table")
    export.add_argument("--db", required=True, help=DB_HELP)
    export.add_argument("--out", required=True, help="Parquet file to write")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    add_library_filter_flags(export)
    export.set_defaults(func=run_export)
    return parser


def run_init(args: argparse.Namespace) -> int:
    """Run ``specsoil library init``."""
    from specsoil.library import init_library, safe_url

    revision = init_library(args.db)
    console().print(f"library {safe_url(args.db)} is ready (schema {revision})")
    return 0


def load_import_table(args: argparse.Namespace) -> tuple[SpectraTable, list[Path]]:
    """Read what ``library import --data`` names, and the files it came from."""
    # Here --instrument names the instrument being imported, not a library filter.
    source = data_source(args).model_copy(update={"instrument": None})
    loaded = load_source(source)
    bundled = {info.name for info in list_datasets()}
    path = Path(args.data)
    if args.data in bundled and not path.exists():
        return loaded.table, []
    # A scan folder's provenance is every file in it; a table's or a zip's, the file itself.
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return loaded.table, [p for p in files if p.is_file()]


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    pairs = {}
    for text in values or ():
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise SpecsoilError(f"{flag} {text!r}: expected COL=VALUE")
        pairs[name.strip()] = value.strip()
    return pairs


def run_import(args: argparse.Namespace) -> int:
    """Run ``specsoil library import``."""
    from specsoil.library import import_table, safe_url

    table, files = load_import_table(args)
    report = import_table(
        args.db,
        table,
        source_files=files,
        instrument=args.instrument,
        instrument_serial=args.serial,
        instrument_kind=args.instrument_kind,
        lab_columns=args.lab_column,
        units=_pairs(args.unit, "--unit"),
        methods=_pairs(args.method, "--method"),
        site_column=args.site_column,
        x=args.x,
        y=args.y,
        crs=args.crs,
        id_prefix=args.id_prefix,
    )
    batch = f"batch {report.batch_id}" if report.batch_id is not None else "nothing new"
    console().print(
        f"{safe_url(args.db)}: {batch}: {report.spectra_added} spectra added, "
        f"{report.spectra_skipped} skipped (already in the library); "
        f"{report.samples_added} new samples; {report.lab_values_added} lab values added, "
        f"{report.lab_values_skipped} skipped; lab columns: {', '.join(report.lab_columns) or '-'}",
        soft_wrap=True,
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Run ``specsoil library list``."""
    from specsoil.library import list_library

    summary = list_library(args.db)
    out = console()
    out.print(
        f"{summary.url} (schema {summary.schema}): {summary.n_spectra} spectra of "
        f"{summary.n_samples} samples at {summary.n_sites} sites"
    )
    instruments = Table(title="Spectra by instrument")
    for column in ("instrument", "serial", "spectra", "wavelengths (bands)"):
        instruments.add_column(column)
    for name, serial, count, grids in summary.instruments:
        instruments.add_row(name, serial or "-", str(count), grids)
    properties = Table(title="Lab values by property")
    for column in ("property", "unit", "method", "values", "censored"):
        properties.add_column(column)
    for name, unit, method, count, censored in summary.properties:
        properties.add_row(name, unit or "-", method or "-", str(count), str(censored))
    batches = Table(title="Import batches")
    for column in ("batch", "imported (UTC)", "by", "source", "spectra", "lab values"):
        batches.add_column(column)
    for batch_id, when, who, source, n_spectra, n_lab in summary.batches:
        batches.add_row(
            str(batch_id), f"{when:%Y-%m-%d %H:%M:%S}", who, source, str(n_spectra), str(n_lab)
        )
    for table in (instruments, properties, batches):
        out.print(table)
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Run ``specsoil library export``."""
    from specsoil.library import export_library

    table = export_library(args.db, args.out, overwrite=args.overwrite, **library_filters(args))
    console().print(
        f"wrote {table.n_samples} spectra x {table.wavelengths.size} bands to {args.out}"
    )
    return 0
