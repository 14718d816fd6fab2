"""``specsoil transfer-cv``: global, local, fine-tuned and spiked models on left-out groups."""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from specsoil._atomic import atomic_directory
from specsoil._errors import SpecsoilError
from specsoil.cli._common import (
    add_output_flags,
    add_run_flags,
    console,
    load_run,
    plan_output_folder,
    resolve_models,
    run_inputs,
)
from specsoil.evaluate import (
    ENSEMBLE_WEIGHT,
    TRANSFER_EPOCHS,
    TRANSFER_LOCAL_SHARE,
    TRANSFER_REPLAY,
    TRANSFER_STRATEGY,
    TransferResult,
    transfer_cv,
)
from specsoil.models import FINETUNE_BATCHNORM, FINETUNE_STRATEGIES, REPLAY_NEIGHBOURS

DEFAULT_MODEL = "cnn1d"
DEFAULT_SPIKING = ("plsr", "mbl")
DEFAULT_LOCAL_N = 20


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``transfer-cv``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "transfer-cv",
        help="compare global, local, fine-tuned (transfer) and spiked models on left-out groups",
        description="Leave each group (site, region, country) out in turn. global: the model "
        "trained on the other groups; local: trained on K samples of the group; transfer: "
        "the global model fine-tuned on the same K samples; spiking: classic models trained "
        "on the other groups plus the K samples; their average; and transfer + spiking "
        "ensembles. All are scored on the group's other samples, over --draws draws of the "
        "K samples; transfer is compared with each spiking model and their average, never "
        "with whichever scored best on the test samples.",
    )
    add_run_flags(parser)
    parser.add_argument("--group-column", help="column naming each sample's group")
    parser.add_argument(
        "--local-n",
        type=int,
        default=DEFAULT_LOCAL_N,
        help=f"K, local samples of the left-out group that may be used (default {DEFAULT_LOCAL_N})",
    )
    parser.add_argument(
        "--model", help=f"CNN recipe or config model name (default {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--spiking-model",
        action="append",
        help=f"classic model for spiking (repeatable; default {' and '.join(DEFAULT_SPIKING)})",
    )
    parser.add_argument(
        "--strategy",
        choices=FINETUNE_STRATEGIES,
        default=TRANSFER_STRATEGY,
        help=f"fine-tuning strategy (default {TRANSFER_STRATEGY})",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=TRANSFER_EPOCHS,
        help=f"fine-tuning epochs (default {TRANSFER_EPOCHS}; 0: the global model's)",
    )
    parser.add_argument(
        "--lr", type=float, help="fine-tuning learning rate of the head (default: the base model's)"
    )
    parser.add_argument(
        "--batchnorm",
        choices=FINETUNE_BATCHNORM,
        default="frozen",
        help="frozen (default): BatchNorm layers keep the global model's running statistics "
        "while fine-tuning; adapt: those of unfrozen blocks re-estimate them",
    )
    parser.add_argument(
        "--replay",
        action=argparse.BooleanOptionalAction,
        default=TRANSFER_REPLAY,
        help="fine-tune on the K samples together with the other groups' data "
        "(rehearsal, the network's analogue of spiking; --no-replay: the K samples only; "
        f"default {'on' if TRANSFER_REPLAY else 'off'})",
    )
    parser.add_argument(
        "--local-share",
        type=float,
        default=TRANSFER_LOCAL_SHARE,
        help="with --replay: share of each fine-tuning epoch made of the K samples "
        f"(default {TRANSFER_LOCAL_SHARE})",
    )
    parser.add_argument(
        "--similar-replay",
        type=int,
        nargs="?",
        const=REPLAY_NEIGHBOURS,
        metavar="N",
        help="with --replay: replay only the N rows of the other groups' data nearest to each "
        "local sample (PCA-Mahalanobis distance, as MBL; similarity-weighted replay as in "
        f"RS-LOCAL; N defaults to {REPLAY_NEIGHBOURS}); without it, all of them",
    )
    parser.add_argument(
        "--ensemble-weight",
        type=float,
        default=ENSEMBLE_WEIGHT,
        help="weight of transfer in each transfer + spiking ensemble, fixed in advance "
        f"(default {ENSEMBLE_WEIGHT})",
    )
    parser.add_argument(
        "--draws",
        "--repeats",
        dest="draws",
        type=int,
        default=1,
        help="independent draws of the K local samples per group, seeded (default 1)",
    )
    add_output_flags(parser, help="report directory to write")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil transfer-cv``."""
    if args.epochs < 0:
        raise SpecsoilError(
            f"--epochs must be at least 1 (or 0: the global model's); got {args.epochs}"
        )
    out = plan_output_folder(args, "transfer-cv-report", *run_inputs(args))
    run_ = load_run(args)
    config, seed, loaded, targets = run_.config, run_.seed, run_.loaded, run_.targets
    group_column = args.group_column or config.group_column
    if not group_column:
        raise SpecsoilError(
            f"{loaded.table.source}: say which column holds the groups with --group-column; "
            f"columns: {list(loaded.table.metadata.columns)}"
        )
    (spec,) = resolve_models([args.model or DEFAULT_MODEL], config)
    spiking = resolve_models(args.spiking_model or list(DEFAULT_SPIKING), config)
    started = time.perf_counter()
    with _progress(args) as progress:
        task = progress.add_task("transfer-cv", total=None)

        def advance(description: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=description)

        result = transfer_cv(
            loaded.table,
            group_column=group_column,
            targets=targets,
            local_n=args.local_n,
            model=spec,
            spiking_models=spiking,
            strategy=args.strategy,
            draws=args.draws,
            seed=seed,
            max_epochs=args.epochs or None,
            lr=args.lr,
            batchnorm=args.batchnorm,
            replay=args.replay,
            local_share=args.local_share,
            replay_neighbours=args.similar_replay,
            ensemble_weight=args.ensemble_weight,
            progress=advance,
        )
    resolved = {**result.config, "dataset": loaded.dataset}
    with atomic_directory(out, kind="transfer-cv-report") as folder:
        result.write(folder)
        text = yaml.safe_dump(resolved, sort_keys=False)
        (folder / "config.resolved.yaml").write_text(text, encoding="utf-8")
    _print_results(console(), result, time.perf_counter() - started)
    console().print(f"report written to {args.out}/")
    return 0


def _progress(args: argparse.Namespace) -> Progress:
    return Progress(
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=bool(args.quiet),
        transient=True,
    )


def _fmt(value: float | None, spread: float | None = None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if spread is None or not math.isfinite(spread):
        return f"{value:.3g}"
    return f"{value:.3g} ± {spread:.2g}"


def _print_results(out: Console, result: TransferResult, seconds: float) -> None:
    summary = result.summary()
    means = result.rmse_by_draw()
    for target, per_target in summary["targets"].items():
        columns = list(means.columns)
        by_group = means[means.index.get_level_values("target") == target].groupby(
            level="group", sort=False
        )
        table = Table(title=f"{target}: RMSE on each left-out group (mean ± sd over draws)")
        for column in ["group", *columns]:
            table.add_column(column, justify="left" if column == "group" else "right")
        for group, part in by_group:
            mean, spread = part.mean(), part.std()
            finite = mean[np.isfinite(mean.to_numpy())]
            best = finite.min() if len(finite) else None
            cells = [
                f"[bold green]{_fmt(mean[c], spread[c])}[/]"
                if mean[c] == best
                else _fmt(mean[c], spread[c])
                for c in columns
            ]
            table.add_row(str(group), *cells)
        out.print(table)
        _print_comparisons(out, str(target), per_target)
    _print_comparisons(out, "all targets", summary["overall"])
    if result.skipped_groups:
        skipped = ", ".join(f"{g} (n={n})" for g, n in result.skipped_groups.items())
        out.print(f"skipped groups, too small for K local samples plus a test set: {skipped}")
    bold = "; lowest mean RMSE per group in bold" if out.is_terminal else ""  # needs a terminal
    out.print(f"total time {seconds:.1f} s{bold}")


def _print_comparisons(out: Console, title: str, per_target: dict[str, Any]) -> None:
    """One line per paired comparison: wins and the mean RMSE ratio over draws."""
    out.print(
        f"{title} ({per_target['n_groups']} groups x {per_target['n_draws']} draws), "
        "paired on the same K samples; ratio below 1: the first wins"
    )
    for c in per_target["comparisons"]:
        ratio = _fmt(c["mean_ratio"], c["ratio_sd_over_draws"])
        out.print(
            f"  {c['subject']} vs {c['reference']}: wins {c['wins']} of {c['n']}, "
            f"mean RMSE ratio {ratio}"
        )
