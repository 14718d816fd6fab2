"""``specsoil finetune``: adapt a saved CNN model to local spectra and save the result."""

from __future__ import annotations

import argparse
from typing import Any

from specsoil._errors import SpecsoilError
from specsoil.cli._common import (
    add_output_flags,
    add_run_flags,
    console,
    load_data,
    plan_output_folder,
    resolve_targets,
)
from specsoil.cli._scan_flags import scan_options
from specsoil.cli._train import save_model_folder
from specsoil.config import load_config
from specsoil.models import (
    FINETUNE_BATCHNORM,
    FINETUNE_STRATEGIES,
    SpectralModel,
    finetune_model,
)


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
    if args.epochs is not None and args.epochs < 1:
        raise SpecsoilError(f"--epochs must be at least 1; got {args.epochs}")
    if args.lr is not None and not args.lr > 0:
        raise SpecsoilError(f"--lr must be positive; got {args.lr}")
    if not 0.0 < args.local_share < 1.0:
        raise SpecsoilError(f"--local-share must be between 0 and 1; got {args.local_share}")
    config = load_config(args.config)
    data = args.data or config.data
    if data is None:
        raise SpecsoilError("say which local spectra to fine-tune on with --data")
    out = plan_output_folder(args, "model", args.base, data, args.replay, args.config)
    base = SpectralModel.load(args.base)
    loaded = load_data(
        data,
        spectra_kind=args.spectra_kind or config.spectra_kind,
        drop_invalid=args.drop_invalid or config.drop_invalid,
        spectral_columns=args.spectral_columns,
        censored=args.censored,
        scans=scan_options(args, config),
        format=args.data_format,
    )
    # Without --target the base model's targets are kept, and so is its output layer.
    targets = resolve_targets(loaded, args.target or config.targets or base.targets, config)
    seed = args.seed if args.seed is not None else config.seed
    replay = None
    if args.replay is not None:
        replay = load_data(
            args.replay,
            spectra_kind=args.spectra_kind or config.spectra_kind,
            drop_invalid=args.drop_invalid or config.drop_invalid,
            spectral_columns=args.spectral_columns,
            censored=args.censored,
        ).table
    model = finetune_model(
        base,
        loaded.table,
        targets,
        strategy=args.strategy,
        max_epochs=args.epochs,
        lr=args.lr,
        random_state=seed,
        name=args.name,
        batchnorm=args.batchnorm,
        replay=replay,
        local_share=args.local_share,
    )
    resolved = {
        "base": str(args.base),
        "data": loaded.table.source,
        "targets": targets,
        "strategy": args.strategy,
        "epochs": args.epochs,
        "lr": args.lr,
        "seed": seed,
        "batchnorm": args.batchnorm,
        "replay": None if replay is None else replay.source,
        "local_share": args.local_share if replay is not None else None,
    }
    save_model_folder(model, out, loaded.table, resolved)
    head = "new output layer" if model.training["finetune"]["new_head"] else "base output layer"
    console().print(
        f"fine-tuned {base.name!r} ({base.recipe}, {base.training.get('n_samples', '?')} "
        f"samples) on {loaded.table.n_samples} local samples for {', '.join(targets)} "
        f"({args.strategy}, {head}"
        + (f", replaying {replay.n_samples} spectra" if replay is not None else "")
        + f"); saved {model.name!r} to {args.out}/"
    )
    return 0
