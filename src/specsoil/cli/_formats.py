"""``specsoil formats``: every file format read: scan files, tables and image cubes."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from specsoil.cli._common import console
from specsoil.data import FORMAT_ROLES, FormatRole, list_readers

_ROLE_WORDS: dict[FormatRole, str] = {
    "scan": "scan files",
    "table": "tables",
    "image": "image cubes",
}


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``formats``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "formats",
        help="list the file formats read: instrument scan files and tables (--data, --format) "
        "and image cubes (map-image)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil formats``."""
    table = Table("format", "reads", "suffixes", "description")
    for role in FORMAT_ROLES:
        for reader in list_readers(role):
            suffixes = " ".join(reader.suffixes) or "(by content)"
            table.add_row(reader.name, _ROLE_WORDS[role], suffixes, reader.description)
    console().print(table)
    return 0
