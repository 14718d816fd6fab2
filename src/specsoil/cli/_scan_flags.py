"""The scan-file flags (``--lab``, ``--id-column``, ``--id-from-filename``, ``--replicates``).

They apply when ``--data`` is a folder, a glob, a zip or an instrument file, which
:func:`specsoil.data.read_data` turns into a sample table; on a table it refuses them.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from specsoil.config import RunConfig
from specsoil.data import REPLICATE_RULES, ScanOptions


def add_scan_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flags that turn a folder, glob or zip of scan files into a sample table."""
    group = parser.add_argument_group(
        "scan files (--data is a folder, glob, .zip or instrument file; see 'specsoil formats')"
    )
    group.add_argument("--lab", metavar="FILE", help="lab values to join (CSV or .xlsx)")
    group.add_argument("--id-column", metavar="COL", help="the lab sheet's sample id column")
    group.add_argument(
        "--id-from-filename",
        metavar="REGEX",
        help="regex with one group picking the sample id from a file name stem (default: the "
        "stem less a replicate counter such as _00012 or .0003)",
    )
    group.add_argument(
        "--replicates",
        choices=REPLICATE_RULES,
        help="combine each sample's scans by their mean (default) or median, or keep them",
    )


def scan_options(args: argparse.Namespace, config: RunConfig | None = None) -> ScanOptions:
    """The scan-file flags of a parsed command line; flags win over the config's entries."""
    base = config or RunConfig()
    return ScanOptions(
        lab=getattr(args, "lab", None) or base.lab,
        id_column=getattr(args, "id_column", None) or base.id_column,
        id_from_filename=getattr(args, "id_from_filename", None) or base.id_from_filename,
        replicates=getattr(args, "replicates", None) or base.replicates,
    )


def scan_config_entries(options: ScanOptions) -> dict[str, str]:
    """The scan options that differ from the defaults, as config entries (lab path absolute)."""
    entries = {
        key: value
        for key, value in dataclasses.asdict(options).items()
        if value != getattr(ScanOptions(), key)
    }
    if "lab" in entries:
        entries["lab"] = str(Path(entries["lab"]).resolve())
    return entries
