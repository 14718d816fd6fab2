"""``specsoil datasets``: list the bundled real datasets."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from specsoil.cli._common import console
from specsoil.data import list_datasets


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``datasets``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "datasets", help="list the bundled datasets with their source and licence"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil datasets``."""
    table = Table(title="Bundled datasets (use --data NAME)")
    for column in ("name", "samples", "nm", "kind", "targets", "split", "licence"):
        table.add_column(column)
    for info in list_datasets():
        table.add_row(
            info.name,
            str(info.n_samples),
            f"{info.wavelength_min:g}-{info.wavelength_max:g} by {info.wavelength_step:g}",
            info.spectra_kind,
            ", ".join(info.targets),
            info.split_column or "-",
            info.licence,
        )
    out = console()
    out.print(table)
    for info in list_datasets():
        out.print(f"[bold]{info.name}[/bold]: {info.citation}")
    return 0
