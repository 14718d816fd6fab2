"""Fixtures for the model tests: the PLS golden files and small real subsets of both datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = ROOT / "tests" / "data" / "reference"
DATASETS = ROOT / "src" / "specsoil" / "data" / "datasets"


def _spectral_columns(frame):
    return [c for c in frame.columns if c.replace(".", "", 1).isdigit()]


@pytest.fixture(scope="session")
def pls_reference():
    """60 real absorbance spectra (20 nm bins), clay, and SIMPLS reference results."""
    table = pd.read_csv(REFERENCE_DIR / "pls_input.csv")
    coefficients = pd.read_csv(REFERENCE_DIR / "pls_coefficients.csv")
    curve = pd.read_csv(REFERENCE_DIR / "pls_cv_rmse.csv")
    return {
        "X": table[_spectral_columns(table)].to_numpy(dtype=np.float64),
        "y": table["clay_pct"].to_numpy(dtype=np.float64),
        "coefs": coefficients[_spectral_columns(coefficients)].to_numpy(dtype=np.float64),
        "intercepts": coefficients["intercept"].to_numpy(dtype=np.float64),
        "cv_rmse": curve["rmse"].to_numpy(dtype=np.float64),
    }


@pytest.fixture(scope="session")
def geeves_subset():
    """80 real ASD spectra as absorbance (350-2500 nm, 1 nm) with clay and total carbon."""
    frame = pd.read_csv(DATASETS / "geeves" / "geeves_visnir.csv.gz", nrows=80)
    bands = _spectral_columns(frame)
    X = -np.log10(frame[bands].to_numpy(dtype=np.float64))
    Y = frame[["clay_pct", "total_carbon_pct"]].to_numpy(dtype=np.float64)
    return X, Y, np.array([float(c) for c in bands])


@pytest.fixture(scope="session")
def nirsoil_subset():
    """83 real NIR absorbance spectra (every 10th; 1100-2498 nm, 2 nm), total N and CEC.

    Both targets have real missing values (16 and 41 of 83).
    """
    frame = pd.read_csv(DATASETS / "nirsoil" / "nirsoil.csv.gz").iloc[::10]
    bands = _spectral_columns(frame)
    X = frame[bands].to_numpy(dtype=np.float64)
    Y = frame[["N_total_g_kg", "CEC_meq_100g"]].to_numpy(dtype=np.float64)
    return X, Y, np.array([float(c) for c in bands])
