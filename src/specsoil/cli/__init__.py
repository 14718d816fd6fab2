"""The ``specsoil`` command line: thin wrappers that parse, call the library and write outputs."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from specsoil import __version__
from specsoil._errors import SpecsoilError
from specsoil.cli import (
    _convert,
    _cv,
    _datasets,
    _explain,
    _export,
    _finetune,
    _formats,
    _library,
    _map,
    _map_image,
    _models,
    _predict,
    _synth,
    _train,
    _transfer_cv,
    _tune,
)
from specsoil.cli._common import UNWRAPPED_WIDTH
from specsoil.cli._signals import Terminated, stop_workers_on_signals

__all__ = ["build_parser", "main"]

_SUBCOMMANDS = (
    _cv,
    _train,
    _tune,
    _predict,
    _datasets,
    _convert,
    _formats,
    _synth,
    _models,
    _export,
    _finetune,
    _transfer_cv,
    _map,
    _map_image,
    _explain,
    _library,
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose help is wrapped on a terminal only, like every other output."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not sys.stdout.isatty():
            kwargs.setdefault("formatter_class", _UnwrappedHelpFormatter)
        super().__init__(*args, **kwargs)


class _UnwrappedHelpFormatter(argparse.HelpFormatter):
    """Help on one line per option, for pipes and files (grep, scripts, tests)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=UNWRAPPED_WIDTH)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one subparser per subcommand."""
    parser = _Parser(
        prog="specsoil",
        description="Soil spectra to soil properties: calibrate, cross-validate and predict.",
    )
    parser.add_argument("--version", action="version", version=f"specsoil {__version__}")
    _add_global_flags(parser, default=False)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for module in _SUBCOMMANDS:
        sub = module.add_parser(commands)
        # SUPPRESS keeps `specsoil --debug cv` working: the subparser must not reset it.
        _add_global_flags(sub, default=argparse.SUPPRESS)
    return parser


def _add_global_flags(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "--debug", action="store_true", default=default, help="show tracebacks on errors"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="hide progress bars and log lines; print only the results",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad input)."""
    args = build_parser().parse_args(argv)
    with _run_logging(quiet=args.quiet):
        return _run(args)


@contextlib.contextmanager
def _run_logging(*, quiet: bool) -> Iterator[None]:
    """Log lines go to stderr for this run only; the caller's logging is put back after.

    A process that calls ``main`` more than once (tests, notebooks, the web service) would
    otherwise keep a handler on a stream that may be closed by then, and INFO logging on.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    try:
        yield
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; turns errors into exit statuses."""
    try:
        with stop_workers_on_signals():
            status: int = args.func(args)
    except SpecsoilError as exc:
        if args.debug:
            raise
        print(f"specsoil {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Terminated as exc:
        print(f"specsoil {args.command}: terminated ({exc})", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"specsoil {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"specsoil {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return status
