"""Run ``specsoil cv`` on a bundled dataset and render its accuracy and wall-time tables.

Shared by bench_cv.py (classic models) and bench_cnn.py (CNNs beside them), so both report the
same protocol the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# geeves: seeded 10-fold CV; nirsoil: the official Chimiometrie 2006 split.
RUNS = {
    "geeves": ["--data", "geeves", "--folds", "10", "--seed", "0"],
    "nirsoil": ["--data", "nirsoil", "--train-column", "train"],
}


def run_cv(
    name: str,
    models: list[str],
    workdir: Path,
    *,
    config: Path | None = None,
    jobs: int = 1,
) -> tuple[dict[str, Any], float]:
    """Cross-validate ``models`` on dataset ``name`` in one CLI run; metrics and wall time.

    ``config`` is a YAML config naming model variants; ``jobs`` runs that many fits at once.
    """
    out = workdir / name
    argv = [sys.executable, "-m", "specsoil", "-q", "cv", *RUNS[name], "--out", str(out)]
    argv += ["--jobs", str(jobs)] + (["--config", str(config)] if config else [])
    for model in models:
        argv += ["--model", model]
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return json.loads((out / "metrics.json").read_text()), time.perf_counter() - started


def accuracy_tables(
    name: str,
    metrics: dict[str, Any],
    wall: float,
    models: list[str],
    *,
    heading: str,
    extra_title: str,
    extra: Callable[[str, dict[str, dict[str, Any]]], str],
    note: str,
    time_label: str,
) -> str:
    """R² / RMSE per target and model, the best model, one extra column, then wall times."""
    rows = metrics["results"]
    targets = list(dict.fromkeys(r["target"] for r in rows))
    lines = [
        f"{heading} {name} ({metrics['config']['split']}; "
        f"{metrics['config']['n_samples']} samples)",
        "",
        "| target | " + " | ".join(models) + f" | best | {extra_title} |",
        "|---|" + "---:|" * len(models) + "---|---|",
    ]
    for target in targets:
        by_model = {r["model"]: r for r in rows if r["target"] == target}
        cells = [f"{by_model[m]['r2']:.3f} / {by_model[m]['rmse']:.3g}" for m in models]
        # Every model is scored on the same samples, so the lowest RMSE is the highest R².
        best = min(models, key=lambda m: by_model[m]["rmse"])
        lines.append(
            f"| {target} (n={by_model[models[0]]['n']}) | "
            + " | ".join(cells)
            + f" | {best} | {extra(target, by_model)} |"
        )
    fit = metrics.get("fit_seconds", {})
    lines += [
        "",
        f"Cells are R² / RMSE on the pooled out-of-fold (or test-set) predictions.{note}",
        "",
        "| model | " + " | ".join(models) + " | whole run |",
        "|---|" + "---:|" * (len(models) + 1),
        f"| {time_label} | "
        + " | ".join(f"{fit.get(m, float('nan')):.1f}" for m in models)
        + f" | {wall:.1f} |",
        "",
    ]
    return "\n".join(lines)
