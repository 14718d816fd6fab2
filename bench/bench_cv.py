"""Cross-validated accuracy and wall time of every classic recipe on both bundled datasets.

geeves: seeded 10-fold CV; nirsoil: the official Chimiometrie 2006 calibration/validation split.
Each dataset runs once through ``specsoil cv`` with all models, so every number in a table comes
from the same run on the same data. Results go to docs/benchmarks.md (section ``bench_cv``).

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
from pathlib import Path

from _cv_tables import RUNS, accuracy_tables, run_cv
from _markdown import update_section

MODELS = ["plsr", "cubist", "rf", "svr", "mbl"]
# Best results the team measured with standard tools (issue 2), for orientation.
ORIENTATION = {
    ("geeves", "clay_pct"): "0.81 (RF); PLSR 0.80",
    ("geeves", "sand_pct"): "0.74 (Cubist)",
    ("geeves", "total_carbon_pct"): "0.88 (MBL); PLSR 0.84",
    ("nirsoil", "N_total_g_kg"): "0.75 (MBL); PLSR 0.68",
    ("nirsoil", "C_iso_pct"): "0.89 (SVR); PLSR 0.76",
    ("nirsoil", "CEC_meq_100g"): "0.76 (SVR); PLSR 0.59",
}


def render(name: str, metrics: dict, wall: float, models: list[str]) -> str:
    return accuracy_tables(
        name,
        metrics,
        wall,
        models,
        heading="###",
        extra_title="issue 2 orientation",
        extra=lambda target, _: ORIENTATION.get((name, target), ""),
        note="",
        time_label="wall time (s)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", action="append", help="models to run (default: all)")
    parser.add_argument("--dataset", action="append", choices=sorted(RUNS))
    args = parser.parse_args()
    models = args.model or MODELS
    command = "make bench  # = .venv/bin/python bench/bench_cv.py"
    if args.model or args.dataset:
        command = "python bench/bench_cv.py " + " ".join(sys.argv[1:])
    sections = [
        "## Classic models: cross-validated accuracy (bench/bench_cv.py)",
        "",
        f"Command: `{command}`. Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; run {time.strftime('%Y-%m-%d')}.",
        "Every tuning choice (PLS components, SVR grid, MBL neighbours) is made inside the "
        "training folds only. Missing lab values are masked per target.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.dataset or sorted(RUNS):
            metrics, wall = run_cv(name, models, Path(tmp))
            sections.append(render(name, metrics, wall, models))
            print(sections[-1])
    update_section("bench_cv", "\n".join(sections))


if __name__ == "__main__":
    main()
