"""A table with every kind of column for the library tests (library_url: postgres_cluster)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specsoil.data import SpectraTable


@pytest.fixture
def rich_table(geeves_small) -> SpectraTable:
    """geeves_small with every kind of extra column: labels, sites, coordinates, times."""
    n = geeves_small.n_samples
    metadata = geeves_small.metadata.copy()
    metadata["fold"] = np.arange(n) % 5 + 1  # int64, a label, not a lab value
    metadata["site"] = [f"site-{i % 4}" for i in range(n)]
    metadata["GPS_LONG"] = 146.0 + (np.arange(n) % 4) * 0.1
    metadata["GPS_LAT"] = -35.0 - (np.arange(n) % 4) * 0.1
    metadata["dataset"] = pd.Series(["geeves"] * n, dtype="str")
    metadata["sampled"] = pd.to_datetime("2024-03-01") + pd.to_timedelta(np.arange(n), unit="D")
    metadata["archived"] = np.arange(n) % 2 == 0
    metadata["ph_note"] = [None if i % 7 == 0 else f"note {i}" for i in range(n)]
    metadata.loc[3, "total_carbon_pct"] = np.nan
    return SpectraTable(
        X=geeves_small.X,
        wavelengths=geeves_small.wavelengths,
        metadata=metadata,
        source="rich",
        spectra_kind=geeves_small.spectra_kind,
    )
