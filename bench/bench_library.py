"""Import and read-back time of a spectral library, beside writing and reading Parquet.

Writes a SYNTHETIC LUCAS-layout table (``write_synthetic``: POINT_ID, coordinates, 12 lab
values, 4,200 absorbance bands) and reads it once with ``read_spectra``. Then, in this one
process and in turn: writes the table as Parquet (``write_spectra_parquet``) and reads it back
(``read_spectra``); imports it into a SQLite library (``import_table``: one transaction,
float32 blobs, executemany batches, WAL) and reads it back (``read_library``); and, when
the PostgreSQL server binaries are there, the same on a throwaway PostgreSQL cluster
(tests/postgres_cluster.py). Every read-back is checked equal to the table. Sizes are the
Parquet file, the SQLite file (after its WAL is checkpointed) and ``pg_database_size``.

    .venv/bin/python bench/bench_library.py                 # 20,000 rows
    .venv/bin/python bench/bench_library.py --rows 2000     # a quick smoke run
    .venv/bin/python bench/bench_library.py --update-docs   # also docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # postgres_cluster
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _markdown import update_section
from specsoil.data import SpectraTable, read_spectra, write_spectra_parquet, write_synthetic
from specsoil.library import import_table, read_library

SEED = 0


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def best(repeats: int, step: Callable[[int], tuple[float, float, int]]) -> tuple[float, float, int]:
    """The fastest write and read over ``repeats`` runs of ``step(run)`` (a busy machine)."""
    runs = [step(run) for run in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[-1][2]


def check_same(read: SpectraTable, table: SpectraTable) -> None:
    np.testing.assert_array_equal(read.X, table.X)
    np.testing.assert_array_equal(read.wavelengths, table.wavelengths)
    pd.testing.assert_frame_equal(read.metadata, table.metadata)


@contextlib.contextmanager
def postgres() -> Iterator[Any]:
    """A throwaway cluster (tests/postgres_cluster.py), or None without the server binaries."""
    from postgres_cluster import running_postgres, server_binaries

    binaries = server_binaries()
    if binaries is None:
        yield None
        return
    with running_postgres(binaries) as server:
        yield server


def pg_size(url: str) -> int:
    import sqlalchemy as sa

    from specsoil.library import parse_url

    engine = sa.create_engine(parse_url(url))
    with engine.connect() as connection:
        size = connection.execute(sa.text("SELECT pg_database_size(current_database())"))
        value = int(size.scalar_one())
    engine.dispose()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per store; best is shown")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="specsoil-bench-library-") as tmp:
        folder = Path(tmp)
        source = folder / "synthetic.parquet"
        write_synthetic(source, args.rows, seed=SEED)
        table = read_spectra(source)
        print(f"table: {table.n_samples} x {table.wavelengths.size}", flush=True)

        def parquet_step(run: int) -> tuple[float, float, int]:
            parquet = folder / f"table{run}.parquet"
            write_s, _ = timed(lambda: write_spectra_parquet(table, parquet))
            read_s, read = timed(lambda: read_spectra(parquet))
            check_same(read, table)
            return write_s, read_s, parquet.stat().st_size

        def library_step(url: str, size: Callable[[], int]) -> tuple[float, float, int]:
            import_s, report = timed(lambda: import_table(url, table, instrument="synthetic"))
            assert report.spectra_added == table.n_samples
            read_s, read = timed(lambda: read_library(url))
            check_same(read, table)
            return import_s, read_s, size()

        def sqlite_step(run: int) -> tuple[float, float, int]:
            name = f"library{run}.db"
            return library_step(
                f"sqlite:///{folder / name}",
                lambda: sum(p.stat().st_size for p in folder.glob(f"{name}*")),
            )

        rows.append(
            (
                "Parquet file (write_spectra_parquet / read_spectra)",
                *best(args.repeats, parquet_step),
            )
        )
        print(rows[-1], flush=True)
        rows.append(
            ("SQLite library (import_table / read_library)", *best(args.repeats, sqlite_step))
        )
        print(rows[-1], flush=True)
        if not args.no_postgres:
            with postgres() as server:
                if server is not None:

                    def pg_step(run: int) -> tuple[float, float, int]:
                        url = server.new_database()
                        return library_step(url, lambda: pg_size(url))

                    rows.append(("PostgreSQL 15 library, local server (import_table / "
                                 "read_library)", *best(args.repeats, pg_step)))  # fmt: skip
                    print(rows[-1], flush=True)

    parquet_write, parquet_read = rows[0][1], rows[0][2]
    lines = [
        "## Spectral library database (bench/bench_library.py)",
        "",
        f"Command: `python bench/bench_library.py --rows {args.rows} --repeats {args.repeats} "
        "--update-docs`. One process; each store written (imported into a new database) and "
        f"read back {args.repeats} times in turn, the fastest time of each shown (the machine "
        "is shared and busy); every read-back is checked equal to the table "
        "(float32 spectra bit for bit, metadata and lab values with their dtypes). Import is "
        "one transaction of float32 blobs (SQLite: WAL mode, the driver's executemany in "
        "batches of 5,000 rows; PostgreSQL: binary COPY), including opening the database and "
        "creating the schema. Sizes: the Parquet "
        "file, the SQLite file after its WAL checkpoint, PostgreSQL's `pg_database_size` "
        "(which includes about 7 MB of an empty database).",
        "",
        f"SYNTHETIC LUCAS-layout table (`specsoil synth`, seed {SEED}): {table.n_samples:,} "
        f"spectra x {table.wavelengths.size:,} absorbance bands, 12 lab values, coordinates "
        f"(float32 spectra: {table.X.nbytes / 2**20:.0f} MiB). {platform.machine()}, "
        f"{_cpus()} CPUs, Python {platform.python_version()}.",
        "",
        "| store | write / import s | x Parquet | read s | x Parquet | size MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, write_s, read_s, size in rows:
        lines.append(
            f"| {name} | {write_s:.1f} | {write_s / parquet_write:.1f} | {read_s:.1f} | "
            f"{read_s / parquet_read:.1f} | {size / 2**20:.0f} |"
        )
    slow = [name.split(" (")[0] for name, write_s, _, _ in rows[1:] if write_s > 2 * parquet_write]
    if slow:
        lines += [
            "",
            f"Over the 2x aim: {', '.join(slow)} import. The client spends most of it waiting "
            "on the server (binary COPY of the blobs, unique-key and foreign-key checks, WAL), "
            "which here runs on the same two busy cores.",
        ]
    text = "\n".join(lines)
    print(text)
    if args.update_docs:
        update_section("bench_library", text)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main()
