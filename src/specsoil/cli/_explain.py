"""``specsoil explain``: which wavelengths a saved model relies on, with their spread."""

from __future__ import annotations

import argparse
from typing import Any

from specsoil.cli._common import add_data_flags, add_output_flags, console, data_source
from specsoil.ops import ExplainRequest, run_explain
from specsoil.ops._explain import DEFAULT_FOLDS


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``explain``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "explain",
        help="wavelength importance of a saved model (VIP, gradients or permutations), "
        "plotted over the mean spectrum with the known soil bands",
        description="PLSR: VIP scores and coefficients; CNNs: integrated gradients (captum); "
        "other models: permutation importance over wavelength windows. The recipe is "
        "refitted on K folds of the data to show the spread of the importance.",
    )
    parser.add_argument("--model", required=True, help="model directory written by train")
    add_data_flags(parser, required=True)
    parser.add_argument(
        "--folds",
        type=int,
        default=DEFAULT_FOLDS,
        help=f"refit the recipe on K CV folds for the spread (default {DEFAULT_FOLDS}; "
        "needs the model's target columns); 0 explains the saved model only",
    )
    parser.add_argument(
        "--window-nm",
        type=float,
        default=50.0,
        help="wavelength window permuted together by permutation importance (default 50)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="permutations per window (default 3)"
    )
    parser.add_argument(
        "--steps", type=int, default=32, help="integrated-gradients steps (default 32)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_output_flags(parser, help="directory to write")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil explain``."""
    request = ExplainRequest(
        model=args.model,
        source=data_source(args),
        folds=args.folds,
        window_nm=args.window_nm,
        repeats=args.repeats,
        steps=args.steps,
        seed=args.seed,
        out=args.out,
        overwrite=args.overwrite,
    )
    outcome = run_explain(request)
    show = console()
    for curve, peaks in outcome.peaks_nm.items():
        shown = ", ".join(f"{peak:g} nm" for peak in peaks)
        show.print(f"{curve}: top regions at {shown or 'none'}")
    show.print(f"importance of {outcome.model_name!r} written to {args.out}/")
    return 0
