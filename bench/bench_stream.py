"""Peak memory and time of training cnn1d streamed from Parquet, as the file grows.

Writes SYNTHETIC tables in the LUCAS layout (``write_synthetic``: 4,200 absorbance bands,
row groups of 1,000 rows), each as one Parquet file and as a directory of parts of
``--row-groups-per-file`` row groups, cached under ``--cache-dir``. Then trains ``cnn1d``
for ``--epochs`` epochs on each in a fresh subprocess: streamed with ``fit_model_stream``
(row groups read one at a time) from the parts and from the single file, and in memory
(``read_spectra`` then ``SpectralModel.fit``) at sizes up to ``--in-memory-max``. Peak
memory is the child's RSS high-water mark minus that of a child that only imports the
same modules, so it counts what training costs on top of the interpreter, torch and
Lightning. The single file shows why parts exist: pyarrow holds a file's whole footer,
about 1 kB per column per row group, so it grows with the rows.

    .venv/bin/python bench/bench_stream.py                       # 20,000 and 100,000 rows
    .venv/bin/python bench/bench_stream.py --rows 2000 --epochs 1  # a quick smoke run
    .venv/bin/python bench/bench_stream.py --update-docs           # also docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_read import peak_rss_kb

TARGETS = ["clay", "OC"]
RECIPE = "cnn1d"
ROW_GROUP_SIZE = 1000
SEED = 0
DEFAULT_CACHE = Path("/tmp/specsoil_bench_stream")


def child(mode: str, path: str, epochs: int) -> None:
    """Run one measurement in this (fresh) process; print seconds and peak RSS as JSON."""
    import numpy as np
    import pytorch_lightning  # noqa: F401 - counted in the baseline, as in every mode
    import torch

    from specsoil.data import ParquetSpectraSource, read_spectra
    from specsoil.models import SpectralModel, fit_model_stream

    torch.set_num_threads(1)
    # Fixed epochs, no early stop: every run does the same amount of work. A constant
    # learning rate: fit_stream steps one-cycle once per epoch (it cannot know the batches
    # per epoch), so over one epoch it would stay at the cycle's low start while the
    # in-memory fit steps it per batch, and the losses could not be compared.
    params = {"max_epochs": epochs, "patience": None, "lr_schedule": "none"}
    started = time.perf_counter()
    model = None
    if mode.startswith("stream"):
        source = ParquetSpectraSource(path, targets=TARGETS)
        model = fit_model_stream(source, recipe=RECIPE, params=params, random_state=SEED)
    elif mode == "memory":
        table = read_spectra(path)
        # The streamed run holds out 10 % for early stopping; so does this one.
        model = SpectralModel.fit(
            table, TARGETS, recipe=RECIPE, params={**params, "val_fraction": 0.1}
        )
    elif mode != "baseline":
        raise SystemExit(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - started
    val_loss = None
    if model is not None:
        history = model.pipeline[-1][-1].history_
        losses = [v for v in history["val_loss"] if np.isfinite(v)]
        val_loss = losses[-1] if losses else None
    print(json.dumps({"seconds": seconds, "peak_kb": peak_rss_kb(), "val_loss": val_loss}))


def run_child(mode: str, path: Path, epochs: int) -> dict:
    argv = [sys.executable, __file__, "--child", mode, str(path), str(epochs)]
    result = subprocess.run(argv, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{mode} on {path} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def synthetic_file(cache: Path, rows: int, per_file: int | None) -> Path:
    """The cached synthetic table (a file, or parts of ``per_file`` row groups)."""
    from specsoil.data import write_synthetic

    name = f"synthetic_lucas_{rows}_seed{SEED}_rg{ROW_GROUP_SIZE}"
    path = cache / (f"{name}_parts{per_file}" if per_file else f"{name}.parquet")
    if not path.exists():
        started = time.perf_counter()
        write_synthetic(
            path, rows, seed=SEED, row_group_size=ROW_GROUP_SIZE, row_groups_per_file=per_file
        )
        print(f"wrote {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def size_mb(path: Path) -> float:
    files = path.iterdir() if path.is_dir() else [path]
    return sum(f.stat().st_size for f in files) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--in-memory-max", type=int, default=20_000, help="largest size also trained in memory"
    )
    parser.add_argument("--row-groups-per-file", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--update-docs", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument(
        "--child", nargs=3, metavar=("MODE", "PATH", "EPOCHS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        mode, path, epochs = args.child
        child(mode, path, int(epochs))
        return

    args.cache_dir.mkdir(parents=True, exist_ok=True)
    labels = {
        "stream_parts": f"streamed, parts of {args.row_groups_per_file} row groups",
        "stream_file": "streamed, one file",
        "memory": "in memory (read_spectra + fit)",
    }
    files = {}
    for rows in sorted(args.rows):
        files[rows] = {
            "stream_parts": synthetic_file(args.cache_dir, rows, args.row_groups_per_file),
            "stream_file": synthetic_file(args.cache_dir, rows, None),
        }
        files[rows]["memory"] = files[rows]["stream_file"]

    smallest = files[min(files)]["stream_file"]
    baseline_kb = min(run_child("baseline", smallest, args.epochs)["peak_kb"] for _ in range(2))
    table_rows = []
    for rows, paths in files.items():
        modes = ["stream_parts", "stream_file"]
        modes += ["memory"] if rows <= args.in_memory_max else []
        for mode in modes:
            path = paths[mode]
            result = run_child(mode, path, args.epochs)
            extra_mib = (result["peak_kb"] - baseline_kb) / 1024
            val = result["val_loss"]
            table_rows.append(
                (
                    f"{rows:,}",
                    f"{size_mb(path):.0f}",
                    labels[mode],
                    f"{result['seconds']:.0f}",
                    f"{extra_mib:.0f}",
                    f"{rows * 4200 * 4 / 2**20:.0f}",
                    f"{val:.3f}" if val is not None else "-",
                )
            )
            print(table_rows[-1], file=sys.stderr)

    lines = [
        f"SYNTHETIC LUCAS-layout tables (`specsoil synth`: 4,200 absorbance bands, row groups "
        f"of {ROW_GROUP_SIZE:,} rows, seed {SEED}); {RECIPE} on {', '.join(TARGETS)}, "
        f"{args.epochs} epoch(s) at a constant learning rate, one torch thread. "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. "
        "Baseline (imports only): "
        f"{baseline_kb / 1024:.0f} MiB.",
        "",
        "| rows | file MB | training | seconds | peak MiB above baseline | float32 spectra MiB "
        "| last val loss |",
        "|---:|---:|---|---:|---:|---:|---:|",
        *("| " + " | ".join(row) + " |" for row in table_rows),
    ]
    body = "\n".join(lines)
    print(body)
    if args.update_docs:
        from _markdown import update_section

        command = "python bench/bench_stream.py " + " ".join(sys.argv[1:])
        update_section(
            "bench_stream",
            "## Streamed training from Parquet (bench/bench_stream.py)\n\n"
            f"Command: `{command}`. Each run is a fresh process; peak memory is its RSS "
            "high-water mark above a process that only imports the same modules. Streamed "
            "training reads one row group at a time; from a directory of parts its peak "
            "stays flat as the table grows, while from one file it grows with the file's "
            "footer (pyarrow holds all of it: about 1 kB per column per row group, 3.7 MB per "
            "1,000-row group here), and the in-memory fit holds the whole float32 matrix. The "
            "validation loss (standardised targets) is on each run's own held-out 10 %; "
            "after one epoch at a constant learning rate it jumps from epoch to epoch "
            "(BatchNorm statistics of a still-moving network), so it shows that every run "
            "learned, not which one learned better. The in-memory peak holds the float32 "
            "table, the reader's buffers and the resampling's float64 blocks of 2,048 rows."
            "\n\n" + body,
        )


if __name__ == "__main__":
    main()
