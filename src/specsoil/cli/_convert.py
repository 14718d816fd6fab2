"""``specsoil convert``: turn a CSV spectra table into Parquet for fast reading."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from specsoil._errors import SpecsoilError
from specsoil.cli._common import add_data_flags, console, describe_table, library_filters
from specsoil.data import convert_to_parquet
from specsoil.library import is_library_url


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``convert``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "convert", help="convert a CSV spectra table to Parquet (recommended for large libraries)"
    )
    add_data_flags(parser, required=True)
    parser.add_argument("--out", required=True, help="Parquet file to write")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil convert``."""
    out = Path(args.out)
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise SpecsoilError(f"{out}: the output must end in .parquet")
    if is_library_url(args.data):
        from specsoil.library import export_library  # needs the library extra

        table = export_library(args.data, out, overwrite=True, **library_filters(args))
    else:
        table = convert_to_parquet(
            args.data, out, spectra_kind=args.spectra_kind, drop_invalid=args.drop_invalid
        )
    describe_table(table)
    console().print(f"wrote {table.n_samples} spectra x {table.wavelengths.size} bands to {out}")
    return 0
