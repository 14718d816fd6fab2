"""``specsoil synth``: write a SYNTHETIC table in the LUCAS layout for tests and benchmarks."""

from __future__ import annotations

import argparse
from typing import Any

from specsoil.cli._common import (
    add_output_flags,
    console,
    plan_output_file,
    plan_output_folder,
)
from specsoil.data import write_synthetic


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``synth``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "synth",
        help="write a synthetic (not real) LUCAS-layout spectra table for tests and benchmarks",
    )
    parser.add_argument("--n", type=int, required=True, help="number of rows")
    add_output_flags(
        parser,
        help="file to write: .parquet, .csv or .csv.gz (a folder of Parquet parts with "
        "--row-groups-per-file)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--row-group-size",
        type=int,
        default=1000,
        help="rows per Parquet row group, the unit streamed training reads (default 1000)",
    )
    parser.add_argument(
        "--row-groups-per-file",
        type=int,
        help="write OUT as a directory of Parquet parts of this many row groups each, which "
        "keeps streamed training's memory flat for very large tables",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil synth``."""
    if args.row_groups_per_file is None:
        final = plan_output_file(args)
    else:
        final = plan_output_folder(args, "parquet-parts")
    write_synthetic(
        final,
        args.n,
        seed=args.seed,
        row_group_size=args.row_group_size,
        row_groups_per_file=args.row_groups_per_file,
    )
    console().print(
        f"wrote {args.n} SYNTHETIC spectra (LUCAS layout, 4200 absorbance bands, 400-2499.5 nm; "
        f"seed {args.seed}) to {args.out}. These are made-up data for tests and benchmarks, not "
        "real soil measurements; every row says so in its `source` column."
    )
    return 0
