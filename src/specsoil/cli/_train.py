"""``specsoil train``: fit one model on every sample and save it for ``predict``."""

from __future__ import annotations

import argparse
from typing import Any

from specsoil.cli._clip import add_clip_flag, parse_clip
from specsoil.cli._common import add_output_flags, add_run_flags, console, data_source
from specsoil.config import load_config
from specsoil.models import DEFAULT_CALIBRATION_FRACTION, DEFAULT_CONFORMAL_FOLDS
from specsoil.ops import TrainRequest, run_train
from specsoil.ops._train import DEFAULT_MODEL, DEFAULT_STREAM_MODEL

CONFORMAL_CHOICES = ("auto", "cv", "split", "none")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``train``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "train", help="fit a model on all samples and save it to a model directory"
    )
    add_run_flags(parser)
    parser.add_argument("--model", help=f"recipe or config model name (default {DEFAULT_MODEL})")
    add_output_flags(parser, help="model directory to write")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="train a CNN recipe on a Parquet file (or a directory of Parquet parts) by "
        "reading one row group at a time, for tables larger than memory (default model "
        f"{DEFAULT_STREAM_MODEL})",
    )
    parser.add_argument(
        "--conformal",
        choices=CONFORMAL_CHOICES,
        default="auto",
        help="calibrate prediction intervals for predict --interval: 'cv' is CV+ (the model "
        "is fitted on every sample, plus --conformal-folds fold models kept for the "
        "intervals: K extra fits, which for a CNN means K extra trainings), 'split' holds "
        "out --calibration-fraction of the samples to calibrate on (the model is fitted on "
        "the rest), 'none' skips it; 'auto' (default) is cv for the classic recipes and "
        "none for CNN recipes (choose cv or split for them explicitly)",
    )
    parser.add_argument(
        "--conformal-folds",
        type=int,
        default=DEFAULT_CONFORMAL_FOLDS,
        metavar="K",
        help=f"folds for --conformal cv (default {DEFAULT_CONFORMAL_FOLDS})",
    )
    parser.add_argument(
        "--calibration-fraction",
        type=float,
        default=DEFAULT_CALIBRATION_FRACTION,
        metavar="F",
        help="share of samples held out for --conformal split (default "
        f"{DEFAULT_CALIBRATION_FRACTION})",
    )
    add_clip_flag(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil train``."""
    config = load_config(args.config)
    request = TrainRequest(
        source=data_source(args, config),
        targets=tuple(args.target or config.targets),
        model=args.model,
        variants=config.models,
        seed=args.seed if args.seed is not None else config.seed,
        stream=args.stream,
        conformal=args.conformal,
        conformal_folds=args.conformal_folds,
        calibration_fraction=args.calibration_fraction,
        clip=parse_clip(args.clip),
        out=args.out,
        overwrite=args.overwrite,
        other_inputs=(args.config,) if args.config else (),
    )
    outcome = run_train(request)
    console().print(f"{outcome.summary}; saved to {args.out}/")
    return 0
