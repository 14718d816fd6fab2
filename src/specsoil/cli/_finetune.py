"""``specsoil finetune``: adapt a saved CNN model to local spectra and save the result."""

from __future__ import annotations

import argparse
from typing import Any

from specsoil.cli._common import add_output_flags, add_run_flags, console, data_source
from specsoil.config import load_config
from specsoil.models import FINETUNE_BATCHNORM, FINETUNE_STRATEGIES
from specsoil.ops import FinetuneRequest, run_finetune


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``finetune``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "finetune",
        help="fine-tune a saved CNN model on local spectra and save it as a new model",
        description="Fine-tune a CNN model directory (from specsoil train) on local "
        "spectra. The base model's wavelength grid and fitted preprocessing carry over: "
        "the local spectra are resampled onto its grid. Targets other than the base "
        "model's get a new output layer.",
    )
    parser.add_argument("--base", required=True, help="model directory to start from")
    add_run_flags(parser)
    parser.add_argument(
        "--strategy",
        choices=FINETUNE_STRATEGIES,
        default="partial",
        help="head: output layer only; partial (default): also the last block, at a lower "
        "learning rate; full: every weight",
    )
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs (default: the base model's)")
    parser.add_argument(
        "--lr", type=float, help="fine-tuning learning rate of the head (default: the base model's)"
    )
    parser.add_argument(
        "--batchnorm",
        choices=FINETUNE_BATCHNORM,
        default="frozen",
        help="frozen (default): BatchNorm layers keep the base model's running statistics; "
        "adapt: those of unfrozen blocks re-estimate them from the local spectra",
    )
    parser.add_argument(
        "--replay",
        metavar="PATH",
        help="spectra with lab values (e.g. the base model's training data) to fine-tune "
        "on together with the local ones, so the network does not forget them; in "
        "transfer-cv this worked best with --strategy full --epochs 40 "
        "(docs/benchmarks.md, bench_transfer)",
    )
    parser.add_argument(
        "--local-share",
        type=float,
        default=0.5,
        help="with --replay: share of each epoch made of the local spectra, repeated to "
        "reach it (default 0.5)",
    )
    parser.add_argument("--name", help="name of the new model (default: <base name>-finetuned)")
    add_output_flags(parser, help="model directory to write")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil finetune``."""
    config = load_config(args.config)
    request = FinetuneRequest(
        base=args.base,
        source=data_source(args, config),
        targets=tuple(args.target or config.targets),
        strategy=args.strategy,
        epochs=args.epochs,
        lr=args.lr,
        batchnorm=args.batchnorm,
        replay=args.replay,
        local_share=args.local_share,
        name=args.name,
        seed=args.seed if args.seed is not None else config.seed,
        out=args.out,
        overwrite=args.overwrite,
        other_inputs=(args.config,) if args.config else (),
    )
    outcome = run_finetune(request)
    console().print(f"{outcome.summary}; saved {outcome.model.name!r} to {args.out}/")
    return 0
