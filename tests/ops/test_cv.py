"""The cv operation on real spectra, called as a library function."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from specsoil._atomic import MARKER
from specsoil._errors import SpecsoilError
from specsoil.ops import CVRequest, DataSource, OperationCancelled, ProgressUpdate, run_cv

from .conftest import GEEVES_SMALL, run_cli


def _request(geeves: DataSource, out: object, **changes: object) -> CVRequest:
    settings = {"targets": ("clay_pct",), "models": ("plsr",), "folds": 3, "seed": 0}
    return CVRequest(source=geeves, out=str(out), **(settings | changes))


class TestRunCV:
    def test_returns_the_metrics_and_the_files_it_wrote(self, geeves, tmp_path):
        updates: list[ProgressUpdate] = []
        outcome = run_cv(_request(geeves, tmp_path / "cv"), progress=updates.append)
        assert outcome.out == (tmp_path / "cv").resolve()
        assert {p.name for p in outcome.files} == {
            MARKER,
            "config.resolved.yaml",
            "metrics.json",
            "obs_pred_clay_pct.png",
            "predictions.csv",
            "report.md",
        }
        assert all(p.is_file() and p.parent == outcome.out for p in outcome.files)
        (row,) = outcome.results["random"].metrics.to_dict("records")
        assert row["model"] == "plsr"
        assert row["n"] == 60
        assert row["r2"] > 0.3  # real spectra carry clay signal
        written = json.loads((outcome.out / "metrics.json").read_text())
        assert written["results"][0]["rmse"] == pytest.approx(row["rmse"])
        assert outcome.descriptions == {"random": "3-fold CV, seed 0"}
        assert not outcome.spatial
        assert [(u.done, u.total) for u in updates] == [(1, 3), (2, 3), (3, 3)]
        assert all(u.description.startswith("plsr fold ") for u in updates)

    def test_spatial_blocks_run_three_schemes_and_say_where(self, located, tmp_path):
        source = DataSource(data=str(located), spectra_kind="reflectance")
        outcome = run_cv(_request(source, tmp_path / "cv", spatial_blocks=2000.0))
        assert set(outcome.results) == {"random", "spatial_blocks", "leave_location_out"}
        assert outcome.spatial
        (note,) = outcome.notes
        assert "projected to EPSG:32755" in note

    def test_a_cancelled_run_writes_nothing(self, geeves, tmp_path):
        def cancel(update: ProgressUpdate) -> None:
            raise OperationCancelled

        with pytest.raises(OperationCancelled):
            run_cv(_request(geeves, tmp_path / "reports" / "cv"), progress=cancel)
        assert list(tmp_path.iterdir()) == []

    def test_the_output_is_checked_before_the_data_is_read(self, tmp_path):
        out = tmp_path / "taken"
        out.write_text("keep me")
        missing = DataSource(data=str(tmp_path / "no_such.csv"))
        with pytest.raises(SpecsoilError, match="is a file, not a folder"):
            run_cv(_request(missing, out))
        assert out.read_text() == "keep me"

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"folds": 1}, "at least 2"),
            ({"models": ("nope",)}, "unknown model 'nope'"),
            ({"targets": ("nope",)}, "unknown target 'nope'"),
            ({"x": "GPS_LONG"}, "--spatial-blocks SIZE only"),
        ],
    )
    def test_bad_requests_are_refused_with_a_reason(self, geeves, tmp_path, changes, message):
        with pytest.raises(SpecsoilError, match=message):
            run_cv(_request(geeves, tmp_path / "cv", **changes))

    def test_the_cli_gives_the_same_numbers(self, geeves, tmp_path):
        outcome = run_cv(_request(geeves, tmp_path / "op"))
        argv = ["cv", "--data", GEEVES_SMALL, "--spectra-kind", "reflectance"]
        argv += ["--target", "clay_pct", "--model", "plsr", "--folds", 3]
        assert run_cli(*argv, "--out", tmp_path / "cli") == 0
        written = json.loads((tmp_path / "cli" / "metrics.json").read_text())["results"]
        metrics = outcome.results["random"].metrics
        for key in ("r2", "rmse", "bias", "rpiq"):
            np.testing.assert_allclose([r[key] for r in written], metrics[key].to_numpy())


class TestCVRequest:
    def test_unknown_fields_are_refused(self, tmp_path):
        with pytest.raises(ValidationError, match="folsd"):
            CVRequest(out=str(tmp_path), folsd=3)

    def test_a_request_cannot_change_after_it_is_made(self, tmp_path):
        request = CVRequest(out=str(tmp_path))
        with pytest.raises(ValidationError, match="frozen"):
            request.seed = 1  # type: ignore[misc]

    def test_it_round_trips_through_json_for_a_web_client(self, geeves, tmp_path):
        request = _request(geeves, tmp_path / "cv")
        assert CVRequest.model_validate_json(request.model_dump_json()) == request
        assert "source" in CVRequest.model_json_schema()["properties"]
