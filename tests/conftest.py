"""Fixtures shared by every test: seeding, a small real table and synthetic spectra."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from specsoil.data import SpectraTable, read_spectra

GEEVES_SMALL = Path(__file__).resolve().parent / "data" / "fixtures" / "geeves_small.csv"

# The throwaway PostgreSQL server fixture (postgres_server) for library and tune tests.
pytest_plugins = ["postgres_cluster"]


@pytest.fixture(autouse=True)
def _seed():
    """Seed the global generators so that any test relying on them is repeatable."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - the legacy global state is what needs seeding


@pytest.fixture
def geeves_small() -> SpectraTable:
    """60 real geeves soils, absorbance at 350-2500 nm every 10 nm, with 4 lab values.

    Made by tests/data/make_fixtures.py; read with read_spectra as declared reflectance.
    """
    return read_spectra(GEEVES_SMALL, spectra_kind="reflectance")


@pytest.fixture
def synthetic_spectra():
    """(X (120, 200), wavelengths 400..2390 nm step 10, y (120,)): Gaussian bands, linear y.

    Each spectrum is a sloped baseline plus five Gaussian absorption bands whose heights are
    the sample's concentrations, plus a little noise; y = concentrations @ COEF + 1.
    """
    rng = np.random.default_rng(42)
    wavelengths = np.arange(400.0, 2400.0, 10.0)
    centres = np.array([560.0, 1420.0, 1920.0, 2210.0, 2340.0])
    widths = np.array([60.0, 30.0, 45.0, 25.0, 20.0])
    bands = np.exp(-0.5 * ((wavelengths[None, :] - centres[:, None]) / widths[:, None]) ** 2)
    concentrations = rng.uniform(0.0, 1.0, (120, 5))
    baseline = rng.normal(0.4, 0.05, (120, 1)) + rng.normal(0.0, 0.02, (120, 1)) * (
        (wavelengths - 400.0) / 2000.0
    )
    X = baseline + 0.3 * concentrations @ bands + rng.normal(0.0, 1e-3, (120, 200))
    y = concentrations @ np.array([2.0, -1.0, 0.5, 3.0, 0.0]) + 1.0
    return X, wavelengths, y
