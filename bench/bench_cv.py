"""Cross-validated accuracy and wall time of every classic recipe on both bundled datasets.

geeves: seeded 10-fold CV; nirsoil: the official Chimiometrie 2006 calibration/validation split.
Beside the recipes (whose preprocessing chain is chosen in the training folds) each dataset runs
their earlier fixed-chain versions as config variants (``*_fixed``) and stacks, so before/after
and stack/best comparisons share the same folds. The single models of a dataset run in one
``specsoil cv`` call; each stack runs in its own call on the same folds (same data, fold count
and seed), at the same time, so the slow stack does not hold up the rest. Results go to
docs/benchmarks.md (section ``bench_cv``).

    .venv/bin/python bench/bench_cv.py            # all models
    .venv/bin/python bench/bench_cv.py --model plsr --model mbl
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from _cv_tables import RUNS, accuracy_tables, run_cv
from _markdown import update_section

_RESAMPLE = {"name": "resample", "step": 10, "method": "mean"}
_SG1 = {"name": "savgol", "window_length": 7, "polyorder": 2, "deriv": 1}
# The recipes' preprocessing before the chain was chosen in the training folds (issue 12.2).
FIXED_CHAINS: dict[str, list[dict[str, Any]]] = {
    "plsr": [_RESAMPLE],
    "cubist": [_RESAMPLE],
    "svr": [_RESAMPLE, _SG1, {"name": "snv"}],
    "mbl": [_RESAMPLE, _SG1],
}
SINGLE = ["plsr", "cubist", "rf", "svr", "mbl"]
# A stack whose members cost about a fifth of the default ones: plsr choosing its chain (one
# PLS fit per inner fold and chain), the fixed-chain mbl, svr and cubist, no rf, 3 inner folds.
# The default stack fits each default member 6 times per outer fold, about 45 CPU-minutes for
# geeves' 10 folds, more than a shared 2-core machine gives a benchmark run.
STACK_LIGHT = {
    "recipe": "stack",
    "params": {
        "members": [
            "plsr",
            *(
                {"recipe": m, "name": f"{m}_fixed", "preprocessing": FIXED_CHAINS[m]}
                for m in ("mbl", "svr", "cubist")
            ),
        ],
        "cv": 3,
    },
}
MODELS = [*SINGLE, *(f"{m}_fixed" for m in FIXED_CHAINS), "stack", "stack_light"]
# Stacks a dataset's default run leaves out for their cost (see STACK_LIGHT).
SKIP = {"geeves": {"stack"}}
# Best results the team measured with standard tools (issue 2), for orientation.
ORIENTATION = {
    ("geeves", "clay_pct"): "0.81 (RF); PLSR 0.80",
    ("geeves", "sand_pct"): "0.74 (Cubist)",
    ("geeves", "total_carbon_pct"): "0.88 (MBL); PLSR 0.84",
    ("nirsoil", "N_total_g_kg"): "0.75 (MBL); PLSR 0.68",
    ("nirsoil", "C_iso_pct"): "0.89 (SVR); PLSR 0.76",
    ("nirsoil", "CEC_meq_100g"): "0.76 (SVR); PLSR 0.59",
}


def render(name: str, metrics: dict[str, Any], wall: float, models: list[str]) -> str:
    return accuracy_tables(
        name,
        metrics,
        wall,
        models,
        heading="###",
        extra_title="issue 2 orientation",
        extra=lambda target, _: ORIENTATION.get((name, target), ""),
        note=" `*_fixed`: the recipe's earlier fixed chain, in the same run.",
        time_label="wall time (s)",
    )


def _rmse(metrics: dict[str, Any]) -> dict[tuple[str, str], float]:
    return {(r["model"], r["target"]): float(r["rmse"]) for r in metrics["results"]}


def comparison(metrics: dict[str, Any], models: list[str]) -> str:
    """Chosen-chain recipes against their fixed chains, and the stack against the best single."""
    rmse = _rmse(metrics)
    targets = list(dict.fromkeys(r["target"] for r in metrics["results"]))
    lines = []
    pairs = [m for m in FIXED_CHAINS if m in models and f"{m}_fixed" in models]
    if pairs:
        lines += [
            "RMSE with the chain chosen in the training folds / with the earlier fixed chain "
            "(ratio below 1: better):",
            "",
            "| target | " + " | ".join(pairs) + " |",
            "|---|" + "---:|" * len(pairs),
        ]
        for target in targets:
            cells = []
            for m in pairs:
                new, old = rmse[m, target], rmse[f"{m}_fixed", target]
                cells.append(f"{new:.3g} / {old:.3g} ({new / old:.3f})")
            lines.append(f"| {target} | " + " | ".join(cells) + " |")
        lines.append("")
    stacks = [m for m in models if m.startswith("stack")]
    singles = [m for m in models if m not in stacks]
    details = metrics.get("fit_details", {})
    for stack in stacks:
        lines += [
            f"`{stack}` against the best single model of the same folds (chosen or fixed chain):",
            "",
            "| target | stack RMSE | best single | its RMSE | ratio | goal met |",
            "|---|---:|---|---:|---:|---|",
        ]
        for target in targets:
            best = min(singles, key=lambda m: rmse[m, target])
            ours, single = rmse[stack, target], rmse[best, target]
            met = "yes" if ours <= single else "**no**"
            lines.append(
                f"| {target} | {ours:.4g} | {best} | {single:.4g} | {ours / single:.3f} | {met} |"
            )
        lines.append("")
        weights = [f["weights"] for f in details.get(stack, {}).values() if "weights" in f]
        if weights:
            members = list(weights[0])
            lines += [
                f"`{stack}` member weights (non-negative, summing to 1), mean over the outer "
                "folds:",
                "",
                "| target | " + " | ".join(members) + " |",
                "|---|" + "---:|" * len(members),
            ]
            for target in targets:
                cells = [f"{np.mean([w[m][target] for w in weights]):.2f}" for m in members]
                lines.append(f"| {target} | " + " | ".join(cells) + " |")
            lines.append("")
    chains = {m: f for m, f in details.items() if any("chain" in d for d in f.values())}
    if chains:
        lines += [
            "Chains chosen in the training folds (folds choosing each):",
            "",
            "| target | " + " | ".join(chains) + " |",
            "|---|" + "---|" * len(chains),
        ]
        for target in targets:
            cells = []
            for folds in chains.values():
                counts: dict[str, int] = {}
                for fold in folds.values():
                    counts[fold["chain"][target]] = counts.get(fold["chain"][target], 0) + 1
                cells.append(", ".join(f"{c}: {n}" for c, n in sorted(counts.items())))
            lines.append(f"| {target} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", action="append", help="models to run (default: all)")
    parser.add_argument("--dataset", action="append", choices=sorted(RUNS))
    parser.add_argument("--jobs", type=int, default=1, help="fits run at once")
    args = parser.parse_args()
    models = args.model or MODELS
    command = "make bench  # = .venv/bin/python bench/bench_cv.py"
    if args.model or args.dataset or args.jobs != 1:
        command = "python bench/bench_cv.py " + " ".join(sys.argv[1:])
    sections = [
        "## Classic models: cross-validated accuracy (bench/bench_cv.py)",
        "",
        f"Command: `{command}`. Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; run {time.strftime('%Y-%m-%d')}.",
        "Every tuning choice (preprocessing chain, PLS components, SVR grid, MBL neighbours, "
        "stack weights) is made inside the training folds only. Missing lab values are masked "
        "per target.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "variants.yaml"
        variants: dict[str, Any] = {
            f"{m}_fixed": {"recipe": m, "preprocessing": steps} for m, steps in FIXED_CHAINS.items()
        }
        variants["stack_light"] = STACK_LIGHT
        config.write_text(yaml.safe_dump({"models": variants}), encoding="utf-8")
        datasets = args.dataset or sorted(RUNS)
        groups = {
            name: _groups([m for m in models if m not in SKIP.get(name, set()) or args.model])
            for name in datasets
        }
        calls = [(name, group) for name in datasets for group in groups[name]]
        with ThreadPoolExecutor(len(calls)) as pool:
            results = list(
                pool.map(
                    lambda call: run_cv(
                        call[0],
                        call[1],
                        Path(tmp) / str(calls.index(call)),
                        config=config,
                        jobs=args.jobs,
                    ),
                    calls,
                )
            )
        for name in datasets:
            parts = [
                result
                for (dataset, _), result in zip(calls, results, strict=True)
                if dataset == name
            ]
            metrics, wall = _merge(parts)
            ran = [m for group in groups[name] for m in group]
            sections.append(render(name, metrics, wall, ran))
            sections.append(comparison(metrics, ran))
            print(sections[-2] + "\n" + sections[-1], flush=True)
    update_section("bench_cv", "\n".join(sections))


def _groups(models: list[str]) -> list[list[str]]:
    """One CLI call for the single models, one per stack."""
    stacks = [m for m in models if m.startswith("stack")]
    singles = [m for m in models if m not in stacks]
    return [group for group in [singles, *([s] for s in stacks)] if group]


def _merge(parts: list[tuple[dict[str, Any], float]]) -> tuple[dict[str, Any], float]:
    """One metrics document from calls on the same folds; the wall time of the longest call."""
    metrics = dict(parts[0][0])
    for other, _ in parts[1:]:
        metrics["results"] = [*metrics["results"], *other["results"]]
        metrics["fit_seconds"] = {**metrics.get("fit_seconds", {}), **other.get("fit_seconds", {})}
        metrics["fit_details"] = {**metrics.get("fit_details", {}), **other.get("fit_details", {})}
    return metrics, max(wall for _, wall in parts)


if __name__ == "__main__":
    main()
