"""``specsoil convert``: turn a spectra table or a folder of scan files into Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from specsoil._errors import SpecsoilError
from specsoil.cli._common import (
    add_data_flags,
    add_output_flags,
    console,
    describe_table,
    library_filters,
    plan_output_file,
)
from specsoil.cli._scan_flags import read_scan_data, refuse_scan_flags, scan_options
from specsoil.data import convert_to_parquet, is_scan_source, write_spectra_parquet
from specsoil.library import is_library_url


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``convert``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "convert",
        help="convert a CSV spectra table, or a folder/zip of scan files with a lab sheet, "
        "to Parquet (recommended for large libraries)",
    )
    add_data_flags(parser, required=True)
    add_output_flags(parser, help="Parquet file to write")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil convert``."""
    out = Path(args.out)
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise SpecsoilError(f"{out}: the output must end in .parquet")
    final = plan_output_file(args, args.data)
    if is_library_url(args.data):
        from specsoil.library import export_library  # needs the library extra

        table = export_library(args.data, final, overwrite=True, **library_filters(args))
    elif is_scan_source(args.data):
        table = read_scan_data(args.data, args.spectra_kind, scan_options(args)).table
        write_spectra_parquet(table, final)
    else:
        refuse_scan_flags(args.data, scan_options(args))
        table = convert_to_parquet(
            args.data,
            final,
            spectra_kind=args.spectra_kind,
            drop_invalid=args.drop_invalid,
            spectral_columns=args.spectral_columns,
            censored=args.censored,
        )
    describe_table(table)
    console().print(f"wrote {table.n_samples} spectra x {table.wavelengths.size} bands to {out}")
    return 0
