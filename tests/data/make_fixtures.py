"""Regenerate the small real-data fixtures in tests/data/fixtures/.

    .venv/bin/python tests/data/make_fixtures.py

geeves_small.csv: 60 of the 391 bundled geeves soils (a seeded random choice), their four lab
values and their reflectance (0-1) every 10 nm from 350 to 2500 nm, copied as text from the
bundled CSV (no parsing through specsoil, so the fixture is independent of the reader).
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GEEVES = ROOT / "src" / "specsoil" / "data" / "datasets" / "geeves" / "geeves_visnir.csv.gz"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
N_SAMPLES = 60
STEP_NM = 10


def geeves_small_rows() -> list[list[str]]:
    """Header and rows of geeves_small.csv, as text."""
    with gzip.open(GEEVES, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    keep_rows = np.sort(np.random.default_rng(0).choice(len(body), N_SAMPLES, replace=False))
    keep_columns = [
        j for j, name in enumerate(header) if not name.isdigit() or (int(name) - 350) % STEP_NM == 0
    ]
    return [[header[j] for j in keep_columns]] + [
        [body[i][j] for j in keep_columns] for i in keep_rows
    ]


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    write_csv(FIXTURES / "geeves_small.csv", geeves_small_rows())


if __name__ == "__main__":
    main()
