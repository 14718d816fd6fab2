"""Inference throughput of an exported model: PyTorch (SpectralModel.predict) vs onnxruntime.

Fits the default ``cnn1d`` recipe briefly (one epoch on 500 synthetic spectra) at the LUCAS
grid (400-2499.5 nm every 0.5 nm: 4,200 bands, band-averaged to 10 nm by the recipe),
exports it with ``specsoil.export.export_onnx``, and times predicting ``--rows`` synthetic
spectra end to end (preprocessing included) on the CPU:

- PyTorch: ``SpectralModel.predict`` (numpy/scipy preprocessing, then the torch network);
- onnxruntime: ``OnnxModel.predict`` (one graph: preprocessing, network, target units).

Each engine runs with 1 thread and with its default thread count (all cores). Timings are
the best of ``--repeat`` runs after a warm-up on 256 spectra. The two engines' predictions
are also compared (max difference in target standard deviations).

    .venv/bin/python bench/bench_onnx.py                 # 20,000 spectra
    .venv/bin/python bench/bench_onnx.py --update-docs   # also write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _markdown import update_section

LUCAS_GRID = 400.0 + 0.5 * np.arange(4200)


def synthetic_table(rows: int, seed: int) -> Any:
    """Smooth random absorbance spectra (sums of Gaussian bands) and a linear target."""
    from specsoil.data import SpectraTable

    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, LUCAS_GRID.size, dtype=np.float32)
    centres = np.linspace(0.05, 0.95, 12, dtype=np.float32)
    shapes = np.exp(-(((grid[None, :] - centres[:, None]) / 0.04) ** 2))  # (12, bands)
    weights = rng.gamma(2.0, 1.0, size=(rows, centres.size)).astype(np.float32)
    X = weights @ shapes  # (rows, bands) float32
    X += 0.01 * rng.standard_normal(size=X.shape, dtype=np.float32)
    y = weights[:, :3] @ np.array([1.0, -0.5, 0.25], dtype=np.float32)
    metadata = pd.DataFrame({"sample_id": np.arange(rows), "y": y.astype(np.float64)})
    return SpectraTable(X=X, wavelengths=LUCAS_GRID, metadata=metadata, source="synthetic")


def best_time(predict: Any, table: Any, repeat: int) -> tuple[float, np.ndarray]:
    """Best wall time of ``predict(table)`` over ``repeat`` runs, and the predictions."""
    predict(table.subset(np.arange(256)))  # warm-up: allocations, kernel selection
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = predict(table)
        times.append(time.perf_counter() - started)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="spectra to predict")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs (best kept)")
    parser.add_argument("--update-docs", action="store_true", help="write docs/benchmarks.md")
    args = parser.parse_args()

    import torch

    from specsoil import __version__
    from specsoil.export import OnnxModel, export_onnx
    from specsoil.models import SpectralModel

    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    model = SpectralModel.fit(
        synthetic_table(500, seed=1),
        ["y"],
        recipe="cnn1d",
        params={"max_epochs": 1, "patience": None},
    )
    cnn = model.pipeline[-1][-1]  # cnn1d: Pipeline([channels, CNNRegressor])
    print(f"fitted in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    table = synthetic_table(args.rows, seed=2)
    sd = float(model.training["targets"]["y"]["sd"])
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as workdir:
        path = Path(workdir) / "cnn1d.onnx"
        started = time.perf_counter()
        export_onnx(model, path)
        export_s = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        rows = []
        for threads in (1, default_threads):
            torch.set_num_threads(threads)
            cnn.num_threads = threads
            torch_s, torch_pred = best_time(model.predict, table, args.repeat)
            runtime = OnnxModel.load(path, num_threads=None if threads > 1 else 1)
            onnx_s, onnx_pred = best_time(runtime.predict, table, args.repeat)
            worst = float(np.max(np.abs(onnx_pred - torch_pred)) / sd)
            rows.append((threads, torch_s, onnx_s, worst))
            print(
                f"{threads} thread(s): torch {args.rows / torch_s:,.0f}/s, "
                f"onnxruntime {args.rows / onnx_s:,.0f}/s, max diff {worst:.1g} sd",
                file=sys.stderr,
            )

    import onnxruntime

    lines = [
        "## Exported models: PyTorch vs onnxruntime on the CPU (bench/bench_onnx.py)",
        "",
        f"Command: `python bench/bench_onnx.py {' '.join(sys.argv[1:])}`.",
        "",
        f"The default cnn1d recipe fitted for one epoch on 500 synthetic spectra at the LUCAS "
        f"grid (4,200 bands, 400-2499.5 nm, averaged to 10 nm by the recipe), then predicting "
        f"{args.rows:,} synthetic spectra end to end, preprocessing included: "
        "`SpectralModel.predict` (numpy/scipy preprocessing + torch) against "
        "`OnnxModel.predict` (one onnxruntime graph). Best of "
        f"{args.repeat} runs after a warm-up. Export took {export_s:.1f} s; the .onnx file "
        f"is {size_mb:.1f} MB.",
        "",
        "| threads | PyTorch s | PyTorch spectra/s | onnxruntime s | onnxruntime spectra/s "
        "| speed-up | max difference (target sd) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for threads, torch_s, onnx_s, worst in rows:
        label = "1" if threads == 1 else f"{threads} (default: all cores)"
        lines.append(
            f"| {label} | {torch_s:.2f} | {args.rows / torch_s:,.0f} | {onnx_s:.2f} | "
            f"{args.rows / onnx_s:,.0f} | {torch_s / onnx_s:.1f}x | {worst:.1g} |"
        )
    lines += [
        "",
        f"specsoil {__version__}, torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPU(s) (shared with other jobs while this "
        "ran, so timings are indicative).",
    ]
    body = "\n".join(lines)
    print(body)
    if args.update_docs:
        update_section("bench_onnx", body)


if __name__ == "__main__":
    main()
