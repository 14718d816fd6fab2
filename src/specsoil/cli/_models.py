"""``specsoil models``: list the CNN architectures and show a network's layer shapes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from specsoil._errors import SpecsoilError
from specsoil.cli._common import console


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``models list`` and ``models show``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "models", help="list CNN architectures or show a network's shapes"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="list the registered CNN architectures").set_defaults(
        func=run_list
    )
    show = actions.add_parser(
        "show",
        help="print every layer's output shape, parameters and receptive field",
        description="Build the network for spectra of --bands bands and print its layers. "
        "The same shape check runs before training; blocks that do not fit are named.",
    )
    show.add_argument("name", help="architecture name (see `specsoil models list`)")
    show.add_argument("--bands", type=int, required=True, help="number of input bands")
    show.add_argument("--step", type=float, default=None, help="band step in nm (adds nm)")
    show.add_argument("--channels", type=int, default=1, help="input channels (default 1)")
    show.add_argument("--outputs", type=int, default=1, help="number of targets (default 1)")
    show.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="architecture option, VALUE as JSON (e.g. dropout=0.3, channels=[16,32])",
    )
    show.set_defaults(func=run_show)
    return parser


def _nets() -> Any:
    try:
        import specsoil.nets as nets
    except ImportError as exc:  # torch is an optional extra
        raise SpecsoilError(f"CNNs need PyTorch: pip install 'specsoil[cnn]' ({exc})") from None
    return nets


def run_list(args: argparse.Namespace) -> int:
    """Run ``specsoil models list``."""
    nets = _nets()
    table = Table(title="CNN architectures (specsoil models show NAME --bands N)")
    for column in ("name", "input", "summary"):
        table.add_column(column)
    for name in nets.list_models():
        info = nets.describe_model(name)
        table.add_row(name, info.input_kind, info.summary)
    console().print(table)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Run ``specsoil models show``."""
    nets = _nets()
    if args.bands < 1:
        raise SpecsoilError(f"--bands must be a positive number of bands; got {args.bands}")
    options = dict(_parse_option(text) for text in args.option)
    shape = nets.input_shape_for(args.name, args.bands, in_channels=args.channels)
    model = nets.create_model(args.name, n_outputs=args.outputs, input_shape=shape, **options)
    rows = nets.shape_report(model, band_step=args.step)
    out = console()
    out.print(f"{args.name}: input {tuple(shape)} -> {args.outputs} output(s)")
    out.print(nets.format_shape_report(rows), markup=False, highlight=False)
    return 0


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise SpecsoilError(f"--option {text!r}: expected KEY=VALUE, e.g. dropout=0.3")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # bare words such as relu or same
    return key.strip(), value
