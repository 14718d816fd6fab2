"""Fixtures for the operation tests: the small real geeves table, with and without places."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specsoil.cli import main
from specsoil.ops import DataSource, TrainRequest, run_train

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"


def run_cli(*argv: object) -> int:
    """Run the command line quietly, as a user would, for comparison with the operation."""
    return main(["-q", *(str(a) for a in argv)])


@pytest.fixture
def geeves() -> DataSource:
    """60 real geeves soils (reflectance, 350-2500 nm every 10 nm) with 4 lab values."""
    return DataSource(data=str(GEEVES_SMALL), spectra_kind="reflectance")


@pytest.fixture(scope="module")
def plsr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PLSR model of clay_pct with CV+ intervals, saved by the train operation."""
    out = tmp_path_factory.mktemp("model") / "plsr"
    source = DataSource(data=str(GEEVES_SMALL), spectra_kind="reflectance")
    run_train(TrainRequest(source=source, targets=("clay_pct",), out=str(out)))
    return out


@pytest.fixture(scope="module")
def located(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """geeves_small with longitudes and latitudes in south-east Australia (clay rises east)."""
    frame = pd.read_csv(GEEVES_SMALL)
    rng = np.random.default_rng(0)
    n = len(frame)
    lon = 146.0 + 0.1 * np.argsort(np.argsort(frame["clay_pct"].to_numpy())) / n
    lon += rng.normal(0, 0.01, n)
    lat = -35.0 - rng.uniform(0, 0.08, n)
    coordinates = pd.DataFrame({"GPS_LONG": lon, "GPS_LAT": lat})
    frame = pd.concat([frame.iloc[:, :1], coordinates, frame.iloc[:, 1:]], axis=1)
    path = tmp_path_factory.mktemp("located") / "geeves_xy.csv"
    frame.to_csv(path, index=False)
    return path
