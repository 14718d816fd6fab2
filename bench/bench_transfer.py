"""Transfer to left-out groups: global, local, fine-tuned (transfer) and spiked models.

The bundled datasets carry no site or region column, so the groups here are SYNTHETIC: k-means
clusters (k = 5, seeded) of the PCA scores of the geeves absorbance spectra, i.e. groups of
spectrally similar soils, not real sites. Leaving a cluster out is a harder shift than a random
fold (the cluster's spectra lie outside the training cloud), which is the situation transfer
learning is meant for. Every strategy runs through ``specsoil.evaluate.transfer_cv``, the same
code as ``specsoil transfer-cv``; results go to docs/benchmarks.md (section
``bench_transfer``).

    .venv/bin/python bench/bench_transfer.py
    .venv/bin/python bench/bench_transfer.py --strategy head --strategy partial:100:1e-3:bn=adapt
    .venv/bin/python bench/bench_transfer.py --strategy full:30::replay=0.5

A ``--strategy`` is ``STRATEGY[:EPOCHS[:LR]][:bn=adapt|frozen][:replay[=SHARE]]``: the
fine-tuning strategy with optional epochs and head learning rate (default: the base cnn1d's,
200 epochs at 3e-3, onecycle), BatchNorm statistics (default frozen) and replay of the other
clusters' data with the K local samples making SHARE of each epoch (default 0.5). The first
variant runs the spiking models; the others reuse its spiking scores (the same K samples
and seeds, so the same models), which keeps the run short.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from _markdown import update_section
from specsoil.data import SpectraTable, load_dataset
from specsoil.evaluate import (
    TRANSFER_EPOCHS,
    TRANSFER_LOCAL_SHARE,
    TRANSFER_REPLAY,
    TRANSFER_STRATEGY,
    TransferResult,
    transfer_cv,
)

TARGETS = ["clay_pct", "total_carbon_pct"]
SPIKING = ["plsr", "mbl", "cubist"]
N_GROUPS = 5
N_COMPONENTS = 5
GROUP_COLUMN = "cluster"

# Summary rows of the variants run before BatchNorm statistics could be held and before
# replay existed (the BatchNorm layers of unfrozen blocks then re-estimated their statistics
# from the K samples, i.e. today's bn=adapt; head trains no block, so it is unaffected).
# Same clusters, K, seed and spiking scores as below; run 2026-11-23.
EARLIER_VARIANTS = [
    ("partial (bn=adapt)", "80% (8/10)", "60% (6/10)", "10% (1/10)", "1.21"),
    ("head", "90% (9/10)", "80% (8/10)", "20% (2/10)", "1.23"),
    ("full (bn=adapt)", "80% (8/10)", "60% (6/10)", "10% (1/10)", "1.25"),
    ("head:50", "90% (9/10)", "80% (8/10)", "10% (1/10)", "1.28"),
    ("partial:100:1e-3 (bn=adapt)", "90% (9/10)", "70% (7/10)", "20% (2/10)", "1.22"),
]

VARIANT_SYNTAX = "STRATEGY[:EPOCHS[:LR]][:bn=adapt|frozen][:replay[=SHARE]]"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One fine-tuning setting compared by the benchmark."""

    label: str
    strategy: str
    epochs: int | None = None
    lr: float | None = None
    batchnorm: str = "frozen"
    replay: bool = False
    local_share: float = 0.5


def parse_variant(text: str) -> Variant:
    """``"partial:100:1e-3:bn=adapt"`` -> a Variant; empty parts keep the defaults."""
    parts = text.split(":")
    # EPOCHS and LR are the leading parts that are not options.
    n_positional = 0
    while n_positional < 2 and n_positional + 1 < len(parts):
        part = parts[n_positional + 1]
        if "=" in part or part == "replay":
            break
        n_positional += 1
    positional, options = parts[1 : 1 + n_positional], parts[1 + n_positional :]
    try:
        if parts[0] not in ("head", "partial", "full"):
            raise ValueError(parts[0])
        variant = Variant(
            text,
            parts[0],
            epochs=int(positional[0]) if positional and positional[0] else None,
            lr=float(positional[1]) if len(positional) > 1 and positional[1] else None,
        )
        for option in options:
            key, _, value = option.partition("=")
            if key == "bn" and value in ("adapt", "frozen"):
                variant = dataclasses.replace(variant, batchnorm=value)
            elif key == "replay":
                share = float(value) if value else 0.5
                variant = dataclasses.replace(variant, replay=True, local_share=share)
            else:
                raise ValueError(option)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected {VARIANT_SYNTAX}; got {text!r} ({error})"
        ) from error
    return variant


def clustered(seed: int) -> tuple[SpectraTable, dict[str, int]]:
    """geeves with a ``cluster`` column: k-means on the first PCA scores of the spectra."""
    table = load_dataset("geeves")
    scores = PCA(n_components=N_COMPONENTS, random_state=seed).fit_transform(table.X)
    labels = KMeans(n_clusters=N_GROUPS, n_init=10, random_state=seed).fit_predict(scores)
    names = np.array([f"cluster{k + 1}" for k in labels])
    sizes = {str(name): int((names == name).sum()) for name in sorted(set(names))}
    metadata = table.metadata.assign(**{GROUP_COLUMN: names})
    return dataclasses.replace(table, metadata=metadata), sizes


def _cell(row: dict[str, Any] | None) -> str:
    if row is None or not math.isfinite(row["rmse"]):
        return "n/a"
    return f"{row['rmse']:.3g} / {row['r2']:.2f}"


def _share(value: float | None, n: int) -> str:
    return "n/a" if value is None else f"{value:.0%} ({round(value * n)}/{n})"


def render_run(result: TransferResult, strategy: str, wall: float) -> list[str]:
    """Per target: group x strategy table, shares, and the margin where spiking wins."""
    summary = result.summary()
    means = result.mean_scores()
    spiking = list(result.config["spiking_models"])
    columns = ["global", "local", "transfer", *(f"spiking {m}" for m in spiking)]
    lines = [f"### Best variant: `{strategy}` (run time {wall:.0f} s)", ""]
    for target, per_target in summary["targets"].items():
        rows = means[means["target"] == target]
        lines += [
            f"**{target}** (cells: RMSE / R² on the held-out part of each group)",
            "",
            "| group | n test | " + " | ".join(columns) + " | best spiking | transfer - best |",
            "|---|---:|" + "---:|" * len(columns) + "---|---:|",
        ]
        by_group = {g["group"]: g for g in per_target["groups"]}
        for group, part in rows.groupby("group", sort=False):
            records = part.to_dict(orient="records")
            cells = {
                (f"spiking {r['model']}" if r["strategy"] == "spiking" else r["strategy"]): r
                for r in records
            }
            g = by_group[str(group)]
            margin = g["transfer_minus_best_spiking"]
            relative = margin / g["best_spiking_rmse"] if g["best_spiking_rmse"] else math.nan
            lines.append(
                f"| {group} | {round(float(part['n_test'].max()))} | "
                + " | ".join(_cell(cells.get(c)) for c in columns)
                + f" | {g['best_spiking_model']} | {margin:+.3g} ({relative:+.0%}) |"
            )
        n = per_target["n_groups"]
        lines += [
            "",
            f"Transfer beats local in {_share(per_target['transfer_beats_local'], n)} groups, "
            f"global in {_share(per_target['transfer_beats_global'], n)}, and the best "
            f"spiking model in {_share(per_target['transfer_beats_spiking'], n)}. "
            "Last column: transfer's RMSE minus the best spiking model's (positive: spiking "
            "is better by that much).",
            "",
        ]
    return lines


def ratios(result: TransferResult) -> dict[tuple[str, str], float]:
    """Transfer RMSE / best spiking RMSE per (target, group)."""
    return {
        (target, g["group"]): g["transfer_rmse"] / g["best_spiking_rmse"]
        for target, per_target in result.summary()["targets"].items()
        for g in per_target["groups"]
        if g["best_spiking_rmse"] and math.isfinite(g["transfer_rmse"])
    }


def mean_ratio(result: TransferResult) -> float:
    """Mean over (group, target) pairs of transfer RMSE / best spiking RMSE (lower is better)."""
    values = list(ratios(result).values())
    return float(np.mean(values)) if values else math.inf


def render_strategies(runs: dict[str, TransferResult]) -> list[str]:
    """One line per fine-tuning variant: shares, mean RMSE ratio, and ratios per group."""
    lines = [
        "### Fine-tuning variants tried",
        "",
        "Epochs and learning rate (of the head; unfrozen blocks get a tenth) left empty are "
        "the base cnn1d's: 200 epochs at 3e-3 with a one-cycle schedule. Fine-tuning on "
        "K = 20 samples alone holds out nothing for early stopping. bn=adapt: the BatchNorm "
        "layers of unfrozen blocks re-estimate their running statistics from the fine-tuning "
        "batches (the behaviour before the bn option); otherwise they keep the global "
        "model's (bn=frozen, the default). replay=S: fine-tuned on the K samples together "
        "with the other clusters' data (the global model's training rows), the K samples "
        "repeated to make S of each epoch. Time: seconds spent fine-tuning, all clusters.",
        "",
        "| fine-tuning | transfer beats local | beats global | beats best spiking | "
        "mean transfer RMSE / best spiking RMSE | time (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, result in runs.items():
        overall = result.summary()["overall"]
        n = overall["n_groups"]
        lines.append(
            f"| {label} | {_share(overall['transfer_beats_local'], n)} | "
            f"{_share(overall['transfer_beats_global'], n)} | "
            f"{_share(overall['transfer_beats_spiking'], n)} | {mean_ratio(result):.2f} | "
            f"{result.fit_seconds.get('transfer', math.nan):.0f} |"
        )
    lines += [
        "",
        "Shares count (group, target) pairs over both targets. Earlier variants (run "
        "2026-11-23, before the bn option and replay; the same clusters, K and spiking "
        "scores): "
        + "; ".join(
            f"`{label}`: beats local {local}, global {glob}, best spiking {spiking}, "
            f"mean ratio {ratio}"
            for label, local, glob, spiking, ratio in EARLIER_VARIANTS
        )
        + ".",
        "",
        "Transfer RMSE / best spiking RMSE per cluster and target (below 1: transfer wins):",
        "",
    ]
    keys = list(ratios(next(iter(runs.values()))))
    lines += [
        "| fine-tuning | " + " | ".join(f"{g} {_short(t)}" for t, g in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for label, result in runs.items():
        values = ratios(result)
        cells = [f"{values[k]:.2f}" if k in values else "n/a" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _short(target: str) -> str:
    return {"clay_pct": "clay", "total_carbon_pct": "C"}.get(target, target)


def best_variant(runs: dict[str, TransferResult]) -> str:
    """The variant with the lowest mean RMSE ratio to the best spiking model.

    The ratio rather than the share of wins: with 10 (group, target) pairs the share moves
    in steps of 10%, and it ignores by how much a pair is lost.
    """
    return min(runs, key=lambda label: mean_ratio(runs[label]))


def render_verdict(runs: dict[str, TransferResult]) -> list[str]:
    """The issue's bar: transfer beats the best spiking model in most (group, target) pairs."""
    overall = {label: r.summary()["overall"] for label, r in runs.items()}

    def share(label: str) -> str:
        return _share(overall[label]["transfer_beats_spiking"], overall[label]["n_groups"])

    best = best_variant(runs)
    met = (overall[best]["transfer_beats_spiking"] or 0.0) > 0.5
    most = max(overall, key=lambda label: overall[label]["transfer_beats_spiking"] or 0.0)
    text = (
        "**Against the issue's bar** (transfer beats the best spiking model in most groups): "
        f"**{'met' if met else 'not met'}**. The best variant, `{best}` (lowest mean RMSE "
        f"ratio, {mean_ratio(runs[best]):.2f}), beats the best spiking model in "
        f"{share(best)} of (cluster, target) pairs"
    )
    if (
        most != best
        and overall[most]["transfer_beats_spiking"] != overall[best]["transfer_beats_spiking"]
    ):
        text += f"; the most wins: `{most}`, {share(most)}"
    text += (
        ". Per-cluster margins of the best variant are in the last column of its tables "
        "above; the ratios of every variant in the table before."
    )
    replay = f"replay on, local share {TRANSFER_LOCAL_SHARE}" if TRANSFER_REPLAY else "no replay"
    why = [
        "Why it is missed: on geeves the CNN trails the classic models even without a shift "
        "between groups. In ordinary 10-fold CV on all of geeves its RMSE is 15% (clay) and "
        "32% (total carbon) above the best classic model (follow-up to bench_cnn above). "
        "Fine-tuning recovers part of the global model's shortfall on a left-out cluster "
        "but cannot make up a network that is less accurate on this data to begin with; "
        f"the remaining mean margin ({mean_ratio(runs[best]) - 1:+.0%}) is of the size of "
        "that CV gap.",
        "",
    ]
    return [
        text,
        "",
        *([] if met else why),
        f"Defaults taken from this table: `transfer_cv` and `specsoil transfer-cv` fine-tune "
        f"with strategy {TRANSFER_STRATEGY}, {TRANSFER_EPOCHS} epochs at the global model's "
        f"learning rate, BatchNorm statistics frozen, {replay}; `finetune_model` and "
        "`specsoil finetune` (no other groups' data at hand) keep strategy partial with the "
        "base's epochs, now with BatchNorm statistics frozen, and replay whatever "
        "`--replay` names.",
        "",
    ]


def merge_spiking(result: TransferResult, spiking: TransferResult) -> TransferResult:
    """``result`` (run without spiking models) with the spiking scores of ``spiking``."""
    rows = spiking.results[spiking.results["strategy"] == "spiking"]
    config = {**result.config, "spiking_models": spiking.config["spiking_models"]}
    seconds = {
        **result.fit_seconds,
        **{k: v for k, v in spiking.fit_seconds.items() if k.startswith("spiking")},
    }
    return TransferResult(
        pd.concat([result.results, rows], ignore_index=True),
        result.skipped_groups,
        config,
        seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--strategy",
        action="append",
        type=parse_variant,
        help=f"{VARIANT_SYNTAX}, STRATEGY one of head, partial, full (repeatable; default partial)",
    )
    parser.add_argument("--local-n", type=int, default=20, help="K local samples (default 20)")
    parser.add_argument("--repeats", type=int, default=1, help="draws of K per group (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write each run's transfer.* files here")
    parser.add_argument("--no-docs", action="store_true", help="print, do not edit the docs")
    args = parser.parse_args()
    variants = args.strategy or [parse_variant("partial")]
    table, sizes = clustered(args.seed)
    print(f"cluster sizes: {sizes}", file=sys.stderr)

    runs: dict[str, TransferResult] = {}
    walls: dict[str, float] = {}
    total_started = time.perf_counter()
    for variant in variants:
        started = time.perf_counter()
        result = transfer_cv(
            table,
            group_column=GROUP_COLUMN,
            targets=TARGETS,
            local_n=args.local_n,
            model="cnn1d",
            spiking_models=SPIKING if not runs else (),
            strategy=variant.strategy,  # type: ignore[arg-type]
            repeats=args.repeats,
            seed=args.seed,
            max_epochs=variant.epochs,
            lr=variant.lr,
            batchnorm=variant.batchnorm,  # type: ignore[arg-type]
            replay=variant.replay,
            local_share=variant.local_share,
            progress=lambda what, done, total: print(f"[{done}/{total}] {what}", file=sys.stderr),
        )
        if runs:
            result = merge_spiking(result, next(iter(runs.values())))
        walls[variant.label] = time.perf_counter() - started
        runs[variant.label] = result
        if args.out is not None:
            result.write(args.out / variant.label.replace(":", "_").replace("=", "-"))
        overall = result.summary()["overall"]
        print(
            json.dumps({"variant": variant.label, **overall, "ratio": mean_ratio(result)}),
            file=sys.stderr,
        )
    total_wall = time.perf_counter() - total_started
    # Per-group tables for the best variant; the others are summarised below.
    best = best_variant(runs)
    body = render_run(runs[best], best, walls[best])

    command = "python bench/bench_transfer.py " + " ".join(sys.argv[1:])
    skipped = ", ".join(f"{g} (n={n})" for g, n in next(iter(runs.values())).skipped_groups.items())
    lines = [
        "## Transfer to left-out groups (bench/bench_transfer.py)",
        "",
        f"Command: `{command.strip()}`. Machine: {platform.machine()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, CPU, one torch thread; run "
        f"{time.strftime('%Y-%m-%d')}, {total_wall / 60:.0f} min in all.",
        "",
        "**The groups are synthetic groups made by clustering, not real sites**: k-means "
        f"(k = {N_GROUPS}, seed {args.seed}) on the first {N_COMPONENTS} PCA scores of the "
        f"geeves absorbance spectra; sizes {sizes}. Leaving one cluster out tests "
        "extrapolation to spectrally different soils. For each cluster: global = cnn1d "
        "trained on the other clusters; local = cnn1d trained on K = "
        f"{args.local_n} samples of the cluster; transfer = the global cnn1d fine-tuned on "
        "the same K samples (settings per variant below); spiking = "
        + ", ".join(SPIKING)
        + " trained on the other clusters plus the same K samples. Every strategy is scored "
        f"on the rest of the cluster. Repeats (draws of K): {args.repeats}."
        + (f" Skipped: {skipped}." if skipped else ""),
        "",
        *body,
    ]
    if len(runs) > 1:
        lines += render_strategies(runs)
    lines += render_verdict(runs)
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        update_section("bench_transfer", text)


if __name__ == "__main__":
    main()
