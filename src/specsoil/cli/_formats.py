"""``specsoil formats``: the instrument file formats that ``--data`` reads."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from specsoil.cli._common import console
from specsoil.data import list_readers


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``formats``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "formats", help="list the instrument file formats read from scan folders"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil formats``."""
    table = Table("format", "suffixes", "description")
    for reader in list_readers():
        table.add_row(reader.name, " ".join(reader.suffixes) or "(by content)", reader.description)
    console().print(table)
    return 0
