"""PLSR component sweep: one fit per fold truncated to every count, against one fit per count.

The data are a LUCAS-sized stand-in built from the real geeves spectra: rows drawn with
replacement, band-averaged to 420 bands (5 nm, 400-2495 nm), with small random noise and
clay as the target. Both ways sweep 1..30 components over the same 5 folds; the table gives
their wall times and the largest difference between their RMSE curves.

    .venv/bin/python bench/bench_pls.py --rows 20000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from _markdown import update_section
from specsoil.data import load_dataset
from specsoil.models._pls import pls_cv_curve
from specsoil.preprocess import Resample


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    table = load_dataset("geeves")
    grid = np.arange(400, 2500, 5.0)
    X = Resample(table.wavelengths, target_wavelengths=grid, method="mean").fit_transform(table.X)
    y = table.targets(["clay_pct"])[:, 0]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, X.shape[0], size=rows)
    return X[pick] + rng.normal(0, 0.002, size=(rows, grid.size)), y[pick] + rng.normal(0, 1, rows)


def naive_curve(X, y, n_components, splits):
    residuals = np.empty((y.size, n_components))
    for a in range(1, n_components + 1):
        for train, test in splits:
            pls = PLSRegression(n_components=a, scale=False).fit(X[train], y[train])
            residuals[test, a - 1] = pls.predict(X[test]).ravel() - y[test]
    return residuals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--components", type=int, default=30)
    args = parser.parse_args()
    X, y = make_data(args.rows)
    splits = list(KFold(5, shuffle=True, random_state=0).split(X))
    with threadpool_limits(1):  # one BLAS thread for both, so the comparison is like for like
        started = time.perf_counter()
        fast = pls_cv_curve(X, y, args.components, splits, scale=False)
        fast_s = time.perf_counter() - started
        started = time.perf_counter()
        naive = naive_curve(X, y, args.components, splits)
        naive_s = time.perf_counter() - started
    rmse_fast = np.sqrt(np.mean(fast**2, axis=0))
    rmse_naive = np.sqrt(np.mean(naive**2, axis=0))
    gap = float(np.max(np.abs(rmse_fast - rmse_naive)))
    body = "\n".join(
        [
            "## PLSR component sweep (bench/bench_pls.py)",
            "",
            f"Command: `.venv/bin/python bench/bench_pls.py --rows {args.rows}`; "
            f"{args.rows} x {X.shape[1]} spectra (geeves rows resampled with noise), "
            f"1-{args.components} components, 5 folds, one thread of the same run.",
            "",
            "| method | wall time (s) |",
            "|---|---:|",
            f"| one fit per count and fold (naive) | {naive_s:.1f} |",
            f"| one fit per fold, truncated (specsoil) | {fast_s:.1f} |",
            "",
            f"Speed-up {naive_s / fast_s:.1f}x; largest RMSE-curve difference {gap:.2e} "
            f"(RMSE scale {rmse_naive.min():.2f}).",
            "",
        ]
    )
    print(body)
    update_section("bench_pls", body)


if __name__ == "__main__":
    main()
