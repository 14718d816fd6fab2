"""Fixtures for the preprocessing tests: golden files and a few real spectra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = ROOT / "tests" / "data" / "reference"
GEEVES = ROOT / "src" / "specsoil" / "data" / "datasets" / "geeves" / "geeves_visnir.csv.gz"


def _read_reference(name):
    frame = pd.read_csv(REFERENCE_DIR / name)
    values = frame.drop(columns="sample_id").to_numpy(dtype=np.float64)
    wavelengths = np.array([float(c) for c in frame.columns[1:]])
    return values, wavelengths


@pytest.fixture(scope="session")
def read_reference():
    """Read a golden CSV of tests/data/reference as (values (n, p), wavelengths (p,))."""
    return _read_reference


@pytest.fixture(scope="session")
def reference_input():
    """5 real absorbance spectra, 350-2490 nm every 20 nm (input of the golden files)."""
    return _read_reference("preprocess_input.csv")


@pytest.fixture(scope="session")
def geeves_reflectance():
    """30 real ASD spectra (reflectance 0-1, 350-2500 nm at 1 nm) read straight from the CSV."""
    frame = pd.read_csv(GEEVES, nrows=30)
    spectral = [c for c in frame.columns if c.replace(".", "", 1).isdigit()]
    reflectance = frame[spectral].to_numpy(dtype=np.float64)
    return reflectance, np.array([float(c) for c in spectral])


@pytest.fixture(scope="session")
def geeves_absorbance(geeves_reflectance):
    """The same 30 spectra as absorbance log10(1/R)."""
    reflectance, wavelengths = geeves_reflectance
    return -np.log10(reflectance), wavelengths
