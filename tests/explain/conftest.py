"""Synthetic spectra whose target depends on one absorption band only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specsoil.data import SpectraTable

# The informative band (Al-OH clays) and two distractor bands that vary as much.
TARGET_BAND_NM = 2200.0
DISTRACTOR_BANDS_NM = (1400.0, 1900.0)


def band_table(n: int = 120, *, seed: int = 0, start: float = 1000.0) -> SpectraTable:
    """Absorbance on 1000-2490 nm (10 nm): sloped baselines plus three Gaussian bands.

    Only the depth of the band at 2200 nm sets ``clay`` (= 3 x depth); the bands at 1400
    and 1900 nm vary just as much but carry no information about it.
    """
    rng = np.random.default_rng(seed)
    wavelengths = np.arange(start, 2500.0, 10.0)
    centres = np.array([*DISTRACTOR_BANDS_NM, TARGET_BAND_NM])
    bands = 0.1 * np.exp(-0.5 * ((wavelengths[None, :] - centres[:, None]) / 30.0) ** 2)
    depth = rng.uniform(0.0, 1.0, (n, 3))
    baseline = rng.normal(0.5, 0.05, (n, 1)) + rng.normal(0.0, 0.03, (n, 1)) * (
        (wavelengths - start) / (2500.0 - start)
    )
    X = baseline + depth @ bands + rng.normal(0.0, 1e-3, (n, wavelengths.size))
    metadata = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "clay": 3.0 * depth[:, 2]})
    return SpectraTable(
        X=X.astype(np.float32), wavelengths=wavelengths, metadata=metadata, source="bands.csv"
    )


@pytest.fixture(scope="module")
def bands() -> SpectraTable:
    """120 synthetic spectra; ``clay`` depends on the 2200 nm band only."""
    return band_table()
