"""End-to-end tests of ``specsoil map`` on real spectra with synthetic coordinates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer

from specsoil.cli import main
from specsoil.data import read_spectra
from specsoil.models import SpectralModel

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"


def run_cli(capsys, *argv):
    status = main(["-q", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def located(tmp_path_factory):
    """geeves_small (60 real soils) with lon/lat in south-east Australia and UTM columns."""
    frame = pd.read_csv(FIXTURE)
    rng = np.random.default_rng(0)
    n = len(frame)
    # clay rises to the east, so the spatial signal is real, plus the soils' own scatter
    lon = 146.0 + 0.1 * np.argsort(np.argsort(frame["clay_pct"].to_numpy())) / n
    lon += rng.normal(0, 0.01, n)
    lat = -35.0 - rng.uniform(0, 0.08, n)
    east, north = Transformer.from_crs("EPSG:4326", "EPSG:32755", always_xy=True).transform(
        lon, lat
    )
    coordinates = pd.DataFrame({"GPS_LONG": lon, "GPS_LAT": lat, "east_m": east, "north_m": north})
    frame = pd.concat([frame.iloc[:, :1], coordinates, frame.iloc[:, 1:]], axis=1)
    path = tmp_path_factory.mktemp("map") / "geeves_xy.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(located, tmp_path_factory):
    table = read_spectra(located, spectra_kind="reflectance")
    model = SpectralModel.fit(table, ["clay_pct"], recipe="plsr")
    return model.save(tmp_path_factory.mktemp("model") / "plsr")


class TestMapCommand:
    def test_kriging_of_lab_values_with_boundary(self, capsys, located, tmp_path):
        boundary = tmp_path / "b.geojson"
        ring = [[146.0, -35.1], [146.08, -35.1], [146.08, -34.9], [146.0, -34.9], [146.0, -35.1]]
        boundary.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
        out = tmp_path / "map"
        status, stdout, _ = run_cli(
            capsys,
            "map",
            "--data",
            str(located),
            "--spectra-kind",
            "reflectance",
            "--target",
            "clay_pct",
            "--boundary",
            str(boundary),
            "--resolution",
            "250",
            "--folds",
            "5",
            "--out",
            str(out),
        )
        assert status == 0, stdout
        assert "kriging of 60 points" in stdout
        for name in (
            "map.tif",
            "map.png",
            "variance.png",
            "variogram.png",
            "map.html",
            "metrics.json",
            "cv_predictions.csv",
        ):
            assert (out / name).is_file(), name
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["mapped"] == "lab values"
        assert metrics["crs"] == "EPSG:32755"
        assert metrics["input_crs"] == "EPSG:4326"
        assert metrics["cv"]["n"] == 60
        assert np.isfinite(metrics["cv"]["rmse"])
        assert metrics["cv"]["r2"] > 0.2  # clay was laid out to vary with easting
        assert metrics["variograms"]["values"]["model"]
        frame = pd.read_csv(located)
        east, north = frame["east_m"].to_numpy(), frame["north_m"].to_numpy()
        with rasterio.open(out / "map.tif") as src:
            # GDAL sees the UTM CRS and a georeference that puts the samples on the grid
            assert src.crs.to_epsg() == 32755
            assert src.count == 2
            assert src.res == (250.0, 250.0)
            left, bottom, right, top = src.bounds
            assert left <= east.min()
            assert right >= east.max()
            assert bottom <= north.min()
            assert top >= north.max()
            band = src.read(1, masked=True)
            # cells east of 146.08 E are clipped away as nodata
            edge_x, _ = Transformer.from_crs("EPSG:4326", "EPSG:32755", always_xy=True).transform(
                146.09, -35.04
            )
            row, col = src.index(edge_x, north.mean())
            assert band.mask[row, col]
            inside_row, inside_col = src.index(
                east[frame["GPS_LONG"] < 146.07][0], north[frame["GPS_LONG"] < 146.07][0]
            )
            assert not band.mask[inside_row, inside_col]
            assert src.nodata is not None

    def test_projected_coordinates_and_idw(self, capsys, located, tmp_path):
        out = tmp_path / "idw"
        status, _stdout, _ = run_cli(
            capsys,
            "map",
            "--data",
            str(located),
            "--spectra-kind",
            "reflectance",
            "--target",
            "sand_pct",
            "--x",
            "east_m",
            "--y",
            "north_m",
            "--crs",
            "EPSG:32755",
            "--method",
            "idw",
            "--resolution",
            "500",
            "--out",
            str(out),
        )
        assert status == 0
        with rasterio.open(out / "map.tif") as src:
            assert src.count == 1
            assert src.crs.to_epsg() == 32755
            assert src.res == (500.0, 500.0)
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["cv"]["folds"] == 10
        assert metrics["variograms"] == {}
        assert not (out / "variogram.png").exists()

    def test_regression_kriging_with_a_model(self, capsys, located, model_dir, tmp_path):
        out = tmp_path / "rk"
        status, stdout, _ = run_cli(
            capsys,
            "map",
            "--data",
            str(located),
            "--spectra-kind",
            "reflectance",
            "--target",
            "clay_pct",
            "--model",
            str(model_dir),
            "--method",
            "regression-kriging",
            "--folds",
            "5",
            "--out",
            str(out),
        )
        assert status == 0, stdout
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["mapped"].startswith("lab values (trend: model predictions)")
        assert set(metrics["variograms"]) == {"trend", "residuals"}
        assert (out / "variogram_trend.png").is_file()
        assert (out / "variogram_residuals.png").is_file()
        assert metrics["cv"]["r2"] > 0.5  # the spectra carry most of the clay signal

    def test_model_predictions_are_mapped(self, capsys, located, model_dir, tmp_path):
        out = tmp_path / "pred"
        status, _, _ = run_cli(
            capsys,
            "map",
            "--data",
            str(located),
            "--spectra-kind",
            "reflectance",
            "--target",
            "clay_pct",
            "--model",
            str(model_dir),
            "--method",
            "idw",
            "--folds",
            "5",
            "--out",
            str(out),
        )
        assert status == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["mapped"] == "model predictions"
        assert metrics["cv_against_lab"]["n"] == 60

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            (["--method", "regression-kriging"], "needs --model"),
            (["--target", "nope"], "no column 'nope'"),
            (["--x", "sample_id", "--y", "GPS_LAT", "--crs", "EPSG:32755"], "area of use"),
            (["--resolution", "-3"], "--resolution must be a positive"),
            (["--folds", "1"], "--folds"),
            (["--boundary", "missing.geojson"], "boundary file not found"),
        ],
    )
    def test_user_errors_exit_2(self, capsys, located, tmp_path, extra, message):
        argv = [
            "map",
            "--data",
            str(located),
            "--spectra-kind",
            "reflectance",
            "--target",
            "clay_pct",
            "--out",
            str(tmp_path / "x"),
            *extra,
        ]
        status, _, stderr = run_cli(capsys, *argv)
        assert status == 2
        assert message in stderr
        assert not (tmp_path / "x").exists()

    def test_unmappable_values_name_the_file_and_column(self, capsys, located, tmp_path):
        frame = pd.read_csv(located)
        frame["clay_pct"] = 12.5
        constant = tmp_path / "constant.csv"
        frame.to_csv(constant, index=False)
        argv = ["map", "--data", str(constant), "--spectra-kind", "reflectance"]
        argv += ["--target", "clay_pct", "--out", str(tmp_path / "x")]
        status, _, stderr = run_cli(capsys, *argv)
        assert status == 2
        assert "constant.csv" in stderr
        assert "'clay_pct'" in stderr
        assert "every value is the same" in stderr

    def test_model_target_mismatch(self, capsys, located, model_dir, tmp_path):
        status, _, stderr = run_cli(
            capsys,
            "map",
            "--data",
            str(located),
            "--spectra-kind",
            "reflectance",
            "--target",
            "sand_pct",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "x"),
        )
        assert status == 2
        assert "not 'sand_pct'" in stderr
