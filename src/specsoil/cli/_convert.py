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
    data_source,
    plan_output_file,
)
from specsoil.data import write_spectra_parquet
from specsoil.ops import load_source


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
    table = load_source(data_source(args)).table
    write_spectra_parquet(table, final)
    console().print(f"wrote {table.n_samples} spectra x {table.wavelengths.size} bands to {out}")
    return 0
