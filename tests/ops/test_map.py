"""The map operation: a map folder and its cross-validated accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.ops import DataSource, MapRequest, ProgressUpdate, run_map

from .conftest import run_cli

pytest.importorskip("gstools")


def _request(located, out, **changes) -> MapRequest:
    source = DataSource(data=str(located), spectra_kind="reflectance")
    settings = {"target": "clay_pct", "method": "idw", "folds": 3, "resolution": 500.0}
    return MapRequest(source=source, out=str(out), **(settings | changes))


class TestRunMap:
    def test_writes_the_map_and_returns_its_accuracy(self, located, tmp_path):
        updates: list[ProgressUpdate] = []
        outcome = run_map(_request(located, tmp_path / "map"), progress=updates.append)
        assert [u.description for u in updates] == ["load", "interpolate", "write"]
        names = {p.name for p in outcome.files}
        assert {"map.tif", "map.png", "map.html", "metrics.json", "cv_predictions.csv"} <= names
        metrics = outcome.metrics
        assert metrics["n_points"] == 60
        assert metrics["mapped"] == "lab values"
        assert metrics["crs"] == "EPSG:32755"
        assert metrics["cv"]["r2"] > 0  # clay rises to the east by construction
        written = json.loads((outcome.out / "metrics.json").read_text())
        assert written["cv"]["rmse"] == pytest.approx(metrics["cv"]["rmse"])

    def test_model_predictions_are_judged_against_the_lab_values(self, located, plsr_dir, tmp_path):
        outcome = run_map(_request(located, tmp_path / "map", model=str(plsr_dir)))
        assert outcome.metrics["mapped"] == "model predictions"
        assert {"r2", "rmse"} <= set(outcome.metrics["cv_against_lab"])

    def test_regression_kriging_needs_a_model(self, located, tmp_path):
        request = _request(located, tmp_path / "map", method="regression-kriging")
        with pytest.raises(SpecsoilError, match="needs --model"):
            run_map(request)
        assert list(tmp_path.iterdir()) == []

    def test_the_cli_gives_the_same_numbers(self, located, tmp_path):
        outcome = run_map(_request(located, tmp_path / "op"))
        argv = ["map", "--data", located, "--spectra-kind", "reflectance", "--target"]
        argv += ["clay_pct", "--method", "idw", "--folds", 3, "--resolution", 500]
        assert run_cli(*argv, "--out", tmp_path / "cli") == 0
        written = json.loads((tmp_path / "cli" / "metrics.json").read_text())
        for key in ("r2", "rmse", "bias"):
            assert written["cv"][key] == pytest.approx(outcome.metrics["cv"][key])
        assert written["grid"] == outcome.metrics["grid"]
        predicted = np.loadtxt(
            tmp_path / "cli" / "cv_predictions.csv", delimiter=",", skiprows=1, usecols=4
        )
        mine = np.loadtxt(outcome.out / "cv_predictions.csv", delimiter=",", skiprows=1, usecols=4)
        np.testing.assert_allclose(predicted, mine)
