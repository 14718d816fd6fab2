"""Regenerate the PLS reference files: pls_input.csv, pls_coefficients.csv, pls_cv_rmse.csv.

Run from the repository root: ``.venv/bin/python tests/data/reference/make_pls_reference.py``.

The input is a small real subset of the bundled Geeves vis-NIR data: 60 spectra (every 6th
row), converted to absorbance log10(1/R) and averaged into 20 nm bins (350-369 nm, ...),
with clay content as the target. The reference PLS1 models come from SIMPLS (de Jong, 1993,
Chemometr. Intell. Lab. Syst. 18:251) written here directly in numpy. For one response,
SIMPLS and NIPALS give identical models, but the algorithm shares no code and no
formulation with scikit-learn's NIPALS, so it is an independent oracle for specsoil's
PLSRegressionCV: the coefficients of the 1..10-component models, and the 5-fold CV RMSE
curve over contiguous folds (the first n % 5 folds one sample larger, like KFold without
shuffling).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[2] / "src/specsoil/data/datasets/geeves/geeves_visnir.csv.gz"
N_COMPONENTS = 10
N_FOLDS = 5
BIN_NM = 20


def simpls(X: np.ndarray, y: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """SIMPLS for one response; returns coefficients (A, p) and intercepts (A,)."""
    x_mean, y_mean = X.mean(axis=0), y.mean()
    X0, y0 = X - x_mean, y - y_mean
    s = X0.T @ y0  # cross-product vector; for one response it is its own dominant direction
    p = X.shape[1]
    R, V, Q = np.zeros((p, n_components)), np.zeros((p, n_components)), np.zeros(n_components)
    for a in range(n_components):
        r = s.copy()
        t = X0 @ r
        norm = np.linalg.norm(t)
        t, r = t / norm, r / norm
        loading = X0.T @ t
        v = loading - V[:, :a] @ (V[:, :a].T @ loading)
        v -= V[:, :a] @ (V[:, :a].T @ v)  # second pass keeps V orthonormal in floating point
        v /= np.linalg.norm(v)
        s = s - v * (v @ s)  # deflate the cross-product, not X
        R[:, a], V[:, a], Q[a] = r, v, y0 @ t
    coefs = np.array([R[:, : a + 1] @ Q[: a + 1] for a in range(n_components)])
    return coefs, y_mean - coefs @ x_mean


def main() -> None:
    raw = pd.read_csv(SOURCE)
    rows = raw.iloc[::6].iloc[:60].reset_index(drop=True)
    bands = [c for c in raw.columns if c.isdigit()]
    wavelengths = np.array([float(c) for c in bands])
    absorbance = np.log10(1.0 / rows[bands].to_numpy(dtype=np.float64))
    n_bins = wavelengths.size // BIN_NM
    binned = absorbance[:, : n_bins * BIN_NM].reshape(len(rows), n_bins, BIN_NM).mean(axis=2)
    centres = wavelengths[: n_bins * BIN_NM].reshape(n_bins, BIN_NM).mean(axis=1)
    table = pd.DataFrame(binned, columns=[f"{w:g}" for w in centres])
    table.insert(0, "clay_pct", rows["clay_pct"].to_numpy(dtype=np.float64))
    table.insert(0, "sample_id", rows["sample_id"])
    table.to_csv(HERE / "pls_input.csv", index=False, float_format="%.9g")

    # The references are computed from the values exactly as written, as the tests read them.
    table = pd.read_csv(HERE / "pls_input.csv")
    X = table.drop(columns=["sample_id", "clay_pct"]).to_numpy(dtype=np.float64)
    y = table["clay_pct"].to_numpy(dtype=np.float64)

    coefs, intercepts = simpls(X, y, N_COMPONENTS)
    out = pd.DataFrame(coefs, columns=table.columns[2:])
    out.insert(0, "intercept", intercepts)
    out.insert(0, "n_components", np.arange(1, N_COMPONENTS + 1))
    out.to_csv(HERE / "pls_coefficients.csv", index=False, float_format="%.17g")

    residuals = np.empty((y.size, N_COMPONENTS))
    for test in np.array_split(np.arange(y.size), N_FOLDS):
        train = np.setdiff1d(np.arange(y.size), test)
        fold_coefs, fold_intercepts = simpls(X[train], y[train], N_COMPONENTS)
        residuals[test] = X[test] @ fold_coefs.T + fold_intercepts - y[test, None]
    rmse = np.sqrt((residuals**2).mean(axis=0))
    pd.DataFrame({"n_components": np.arange(1, N_COMPONENTS + 1), "rmse": rmse}).to_csv(
        HERE / "pls_cv_rmse.csv", index=False, float_format="%.17g"
    )


if __name__ == "__main__":
    main()
