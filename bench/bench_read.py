"""Wall time and peak memory of reading a LUCAS-sized spectra table, by reader strategy.

Synthesises a CSV in the LUCAS 2009 topsoil layout (POINT_ID, GPS_LAT, GPS_LONG, 12 lab values,
then ``spc.400`` ... ``spc.2499.5``: 4,200 reflectance bands) in a temporary folder, converts it
to Parquet with ``convert_to_parquet``, and reads it with each strategy in a fresh subprocess.
Peak memory is the child's ``ru_maxrss`` minus that of a child that only imports the same
modules, so it counts what reading costs on top of the interpreter.

    .venv/bin/python bench/bench_read.py                  # 20,000 rows, comma separated
    .venv/bin/python bench/bench_read.py --rows 2000 --sep ';' --gzip
    .venv/bin/python bench/bench_read.py --update-docs    # also write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

N_BANDS = 4200
LAB = ["coarse", "clay", "silt", "sand", "pH.in.CaCl2", "pH.in.H2O"]
LAB += ["OC", "CaCO3", "N", "P", "K", "CEC"]
STRATEGIES = {
    "read_spectra, pyarrow threads on": "read_spectra_threads",
    "read_spectra, pyarrow on one thread": "read_spectra_1thread",
    "pandas read_csv chunked, float32 dtype, concatenate": "pandas_chunked",
    "pandas read_csv whole table, then float32": "pandas_whole",
    "pyarrow read_csv whole table, then float32": "pyarrow_whole",
}


def synthesise(path: Path, rows: int, sep: str, seed: int = 0) -> None:
    """Write a LUCAS-layout CSV: distinct smooth noisy spectra, some missing lab values.

    Values are written as ``0.dddddd`` (8 characters) by building the digits with numpy, since
    formatting 84 M floats one by one would take minutes.
    """
    rng = np.random.default_rng(seed)
    wavelengths = 400 + 0.5 * np.arange(N_BANDS)
    water = 0.08 * np.exp(-0.5 * ((wavelengths - 1915) / 30) ** 2)
    header = ["POINT_ID", "GPS_LAT", "GPS_LONG", *LAB] + [f"spc.{w:g}" for w in wavelengths]
    powers = 10 ** np.arange(5, -1, -1)
    with path.open("wb") as handle:
        handle.write((sep.join(header) + "\n").encode())
        for start in range(0, rows, 1000):
            n = min(1000, rows - start)
            level = rng.uniform(0.1, 0.5, (n, 1))
            shape = 0.1 * np.sin(wavelengths / rng.uniform(200, 400, (n, 1)))
            spectra = level + shape - water + rng.normal(0, 1e-4, (n, N_BANDS))
            micro = np.rint(np.clip(spectra, 0.01, 0.99) * 1e6).astype(np.int64)
            text = np.empty((n, N_BANDS, 9), dtype=np.uint8)
            text[:, :, 0] = ord("0")
            text[:, :, 1] = ord(".")
            text[:, :, 2:8] = ord("0") + (micro[:, :, None] // powers) % 10
            text[:, :, 8] = ord(sep)
            text[:, -1, 8] = ord("\n")
            for i, line in enumerate(text.reshape(n, -1)):
                lab = [f"{v:.2f}" if v > 5 else "" for v in rng.uniform(0, 100, len(LAB))]
                meta = [
                    str(10_000_000 + start + i),
                    f"{rng.uniform(35, 60):.6f}",
                    f"{rng.uniform(-10, 30):.6f}",
                ]
                handle.write((sep.join(meta + lab) + sep).encode())
                handle.write(line.tobytes())


def peak_rss_kb() -> int:
    """Peak resident memory of this process in KiB.

    VmHWM belongs to the process image, so unlike ``ru_maxrss`` it does not carry over the
    parent's peak through fork and exec (which made small readers look free); ``ru_maxrss``
    is the fallback where /proc is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(strategy: str, path: str) -> None:
    """Run one strategy in this (fresh) process and print seconds and peak RSS as JSON."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from specsoil.data import read_spectra
    from specsoil.data._columns import find_spectral_columns

    started = time.perf_counter()
    shape: tuple[int, ...] = ()
    if strategy.startswith("read_spectra"):
        from specsoil.data import _tables

        _tables._THREADS = strategy == "read_spectra_threads"
        shape = read_spectra(path).X.shape
    elif strategy in ("pandas_chunked", "pandas_whole", "pyarrow_whole"):
        with open(path, encoding="utf-8") as handle:
            header = handle.readline().rstrip("\n")
        sep = ";" if header.count(";") > header.count(",") else ","
        names = header.split(sep)
        spectral, _ = find_spectral_columns(names)
        if strategy == "pandas_chunked":
            dtype = {name: np.float32 for name in spectral}
            blocks = [
                chunk[spectral].to_numpy(np.float32)
                for chunk in pd.read_csv(path, sep=sep, dtype=dtype, chunksize=2000)
            ]
            shape = np.concatenate(blocks).shape
        elif strategy == "pandas_whole":
            shape = pd.read_csv(path, sep=sep)[spectral].to_numpy(np.float32).shape
        else:
            table = pa_csv.read_csv(
                path,
                parse_options=pa_csv.ParseOptions(delimiter=sep),
                convert_options=pa_csv.ConvertOptions(
                    column_types={name: pa.float32() for name in spectral}
                ),
            )
            shape = np.column_stack([table[name].to_numpy() for name in spectral]).shape
    elif strategy != "baseline":
        raise SystemExit(f"unknown strategy {strategy!r}")
    seconds = time.perf_counter() - started
    peak_kb = peak_rss_kb()
    print(json.dumps({"seconds": seconds, "peak_kb": peak_kb, "shape": list(shape)}))


def _threads_default() -> str:
    from specsoil.data import _tables

    return "on" if _tables._THREADS else "off"


def run_child(strategy: str, path: Path) -> dict:
    argv = [sys.executable, __file__, "--child", strategy, str(path)]
    result = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--sep", default=",", choices=[",", ";", "\t"])
    parser.add_argument("--gzip", action="store_true", help="also time a gzip'd copy")
    parser.add_argument("--repeat", type=int, default=1, help="runs per strategy (best kept)")
    parser.add_argument("--only-library", action="store_true", help="skip the alternatives")
    parser.add_argument("--update-docs", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument("--child", nargs=2, metavar=("STRATEGY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from specsoil.data import convert_to_parquet

    workdir = Path(tempfile.mkdtemp(prefix="bench_read_"))
    try:
        csv_path = workdir / "lucas.csv"
        started = time.perf_counter()
        synthesise(csv_path, args.rows, args.sep)
        print(
            f"synthesised {csv_path.stat().st_size / 1e6:.0f} MB CSV "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        matrix_mb = args.rows * N_BANDS * 4 / 2**20
        files = {"CSV": csv_path}
        if args.gzip:
            gz_path = workdir / "lucas.csv.gz"
            with csv_path.open("rb") as src, gzip.open(gz_path, "wb", compresslevel=1) as dst:
                shutil.copyfileobj(src, dst, 1 << 24)
            files["CSV.gz"] = gz_path
        parquet = workdir / "lucas.parquet"
        started = time.perf_counter()
        convert_to_parquet(csv_path, parquet)
        convert_s = time.perf_counter() - started
        files["Parquet"] = parquet

        baseline_kb = min(run_child("baseline", csv_path)["peak_kb"] for _ in range(2))
        rows = []
        for label, path in files.items():
            strategies = dict(STRATEGIES)
            if args.only_library or label != "CSV":
                strategies = {k: v for k, v in strategies.items() if v.startswith("read_spectra")}
            for name, key in strategies.items():
                runs = [run_child(key, path) for _ in range(args.repeat)]
                best = min(runs, key=lambda r: r["seconds"])
                extra_mb = (max(r["peak_kb"] for r in runs) - baseline_kb) / 1024
                rows.append(
                    (
                        label,
                        f"{path.stat().st_size / 1e6:.0f}",
                        name,
                        f"{best['seconds']:.2f}",
                        f"{extra_mb:.0f}",
                        f"{extra_mb / matrix_mb:.2f}",
                    )
                )
                print(rows[-1], file=sys.stderr)
        lines = [
            f"{args.rows:,} rows x {N_BANDS:,} bands (+15 metadata columns), separator "
            f"{args.sep!r}; float32 matrix {matrix_mb:.0f} MiB. {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}. "
            f"convert_to_parquet (CSV to Parquet): {convert_s:.1f} s. read_spectra uses "
            f"pyarrow threads only with more than 2 CPUs (here: {_threads_default()}).",
            "",
            "| file | MB | strategy | seconds | peak MiB above baseline | x matrix |",
            "|---|---:|---|---:|---:|---:|",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
        body = "\n".join(lines)
        print(body)
        if args.update_docs:
            from _markdown import update_section

            command = "python bench/bench_read.py " + " ".join(sys.argv[1:])
            update_section(
                "bench_read",
                f"## Reading a LUCAS-sized table (bench/bench_read.py)\n\nCommand: `{command}`. "
                "Each read runs in a fresh process; peak memory is its RSS high-water mark "
                "above a process that only imports the same modules.\n\n" + body,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
