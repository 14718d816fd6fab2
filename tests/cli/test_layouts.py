"""``specsoil cv`` on real spectra laid out as other instruments and libraries store them.

Each table is built from 150 real geeves spectra: % or 0-1 reflectance or absorbance, a
350-1700 nm instrument, 5 nm steps, an irregular grid, projected coordinate columns, and the
LUCAS 2009 layout. The same command must work on all of them without code changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from specsoil.cli import main
from specsoil.data import load_dataset

N = 150


@pytest.fixture(scope="module")
def geeves() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    table = load_dataset("geeves")
    reflectance = 10 ** (-table.X[:N].astype(np.float64))
    return table.metadata.iloc[:N].reset_index(drop=True), reflectance, table.wavelengths


def _frame(meta: pd.DataFrame, values: np.ndarray, names: list[str]) -> pd.DataFrame:
    return pd.concat([meta, pd.DataFrame(values, columns=names)], axis=1)


def percent_1nm(meta, refl, wl):
    return _frame(meta, 100 * refl, [f"{w:g}" for w in wl]), ",", "clay_pct"


def vnir_350_1700_5nm(meta, refl, wl):
    keep = (wl <= 1700) & (wl % 5 == 0)
    return _frame(meta, refl[:, keep], [f"X{w:g}" for w in wl[keep]]), ",", "clay_pct"


def irregular_grid_absorbance(meta, refl, wl):
    rng = np.random.default_rng(7)
    keep = np.sort(rng.choice(wl.size, size=400, replace=False))
    names = [f"wl_{w:g}" for w in wl[keep]]
    return _frame(meta, -np.log10(refl[:, keep]), names), "\t", "clay_pct"


def projected_coordinates(meta, refl, wl):
    rng = np.random.default_rng(3)
    coords = pd.DataFrame(
        {"X": rng.uniform(4e5, 5e5, N), "Y": rng.uniform(6.0e6, 6.1e6, N), "EPSG": 32755}
    )
    keep = wl % 2 == 0
    spectra = _frame(meta, refl[:, keep], [f"nm_{w:g}" for w in wl[keep]])
    return pd.concat([coords, spectra], axis=1), ";", "clay_pct"


def lucas_layout(meta, refl, wl):
    grid = np.arange(400, 2500, 0.5)
    lucas = np.stack([np.interp(grid, wl, row) for row in refl])
    labs = pd.DataFrame(
        {
            "POINT_ID": np.arange(N) + 10_000,
            "GPS_LAT": np.linspace(40, 55, N),
            "GPS_LONG": np.linspace(-5, 20, N),
            "clay": meta["clay_pct"],
            "sand": meta["sand_pct"],
            "OC": 10 * meta["total_carbon_pct"],
            "pH.in.CaCl2": np.nan,
        }
    )
    spectra = pd.DataFrame(lucas, columns=[f"spc.{w:g}" for w in grid])
    return pd.concat([labs, spectra], axis=1), ";", "clay"


LAYOUTS: list[Callable] = [
    percent_1nm,
    vnir_350_1700_5nm,
    irregular_grid_absorbance,
    projected_coordinates,
    lucas_layout,
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_cv_runs_on_layout(layout, suffix, geeves, tmp_path, capsys):
    frame, sep, target = layout(*geeves)
    path = tmp_path / f"{layout.__name__}{suffix}"
    frame.to_csv(path, sep=sep, index=False)
    out = tmp_path / "report"
    status = main(
        [
            "cv",
            "--data",
            str(path),
            "--target",
            target,
            "--model",
            "plsr",
            "--folds",
            "3",
            "--out",
            str(out),
        ]
    )
    assert status == 0, capsys.readouterr().err
    (row,) = json.loads((out / "metrics.json").read_text())["results"]
    assert row["n"] == N
    assert row["r2"] > 0.5  # clay is well predicted from real spectra on every layout


def test_lucas_layout_parquet_round_trip(geeves, tmp_path, capsys):
    frame, sep, _ = lucas_layout(*geeves)
    csv = tmp_path / "lucas.csv"
    frame.to_csv(csv, sep=sep, index=False)
    parquet = tmp_path / "lucas.parquet"
    assert main(["convert", "--data", str(csv), "--out", str(parquet)]) == 0
    out = tmp_path / "report"
    assert (
        main(
            [
                "cv",
                "--data",
                str(parquet),
                "--target",
                "OC",
                "--target",
                "clay",
                "--model",
                "plsr",
                "--folds",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    results = json.loads((out / "metrics.json").read_text())["results"]
    assert {r["target"] for r in results} == {"OC", "clay"}
    predictions = pd.read_csv(out / "predictions.csv")
    assert set(predictions["sample_id"]) == set(frame["POINT_ID"])


def test_all_missing_target_is_named(geeves, tmp_path, capsys):
    frame, sep, _ = lucas_layout(*geeves)
    path = tmp_path / "lucas.csv"
    frame.to_csv(path, sep=sep, index=False)
    status = main(
        [
            "cv",
            "--data",
            str(path),
            "--target",
            "pH.in.CaCl2",
            "--model",
            "plsr",
            "--folds",
            "3",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert status == 2
    assert "target 'pH.in.CaCl2' has 0 lab values" in capsys.readouterr().err
