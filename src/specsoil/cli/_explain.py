"""``specsoil explain``: which wavelengths a saved model relies on, with their spread."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from specsoil.cli._common import add_data_flags, console, library_filters, load_data
from specsoil.explain import explain_model, top_regions, write_explanation
from specsoil.models import SpectralModel

DEFAULT_FOLDS = 5


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
    parser.add_argument("--out", required=True, help="directory to write")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil explain``."""
    model = SpectralModel.load(args.model)
    loaded = load_data(
        args.data,
        spectra_kind=args.spectra_kind,
        drop_invalid=args.drop_invalid,
        **library_filters(args),
    )
    explanation = explain_model(
        model,
        loaded.table,
        folds=args.folds,
        window_nm=args.window_nm,
        n_repeats=args.repeats,
        n_steps=args.steps,
        random_state=args.seed,
    )
    resolved = {
        "model": str(args.model),
        "data": loaded.table.source,
        "folds": args.folds,
        "window_nm": args.window_nm,
        "repeats": args.repeats,
        "steps": args.steps,
        "seed": args.seed,
    }
    out = write_explanation(explanation, Path(args.out), config=resolved)
    show = console()
    for curve in explanation.curves:
        peaks = ", ".join(
            f"{r.peak_nm:g} nm" for r in top_regions(explanation.wavelengths, curve.mean, n=3)
        )
        show.print(f"{curve.target} ({curve.method}): top regions at {peaks or 'none'}")
    show.print(f"importance of {model.name!r} written to {out}/")
    return 0
