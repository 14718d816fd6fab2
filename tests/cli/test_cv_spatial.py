"""``specsoil cv --spatial-blocks``: random, spatial block and leave-location-out CV side by side.

Real geeves spectra with synthetic coordinates: 40 sites in southern New South Wales (UTM
zone 55S), three spectra per site, so leave-location-out has replicates to keep together.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specsoil.cli import main
from specsoil.data import load_dataset
from specsoil.evaluate import spatial_blocks

pyproj = pytest.importorskip("pyproj")

N_SAMPLES = 120
SITE = np.repeat(np.arange(40), 3)
VALIDATIONS = ["random", "spatial_blocks", "leave_location_out"]


def _sites() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(147.0, 147.6, 40)[SITE], rng.uniform(-35.4, -34.9, 40)[SITE]


@pytest.fixture(scope="module")
def geeves_xy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 geeves spectra at 5 nm with GPS_LONG/GPS_LAT and MGA zone 55 columns."""
    table = load_dataset("geeves")
    keep = np.arange(0, table.wavelengths.size, 5)
    frame = table.metadata.iloc[:N_SAMPLES].copy().reset_index(drop=True)
    lon, lat = _sites()
    frame["GPS_LONG"], frame["GPS_LAT"] = lon, lat
    to_mga = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:28355", always_xy=True)
    frame["mga_e"], frame["mga_n"] = to_mga.transform(lon, lat)
    spectra = pd.DataFrame(
        table.X[:N_SAMPLES][:, keep].astype(np.float64),
        columns=[f"X{w:g}" for w in table.wavelengths[keep]],
    )
    path = tmp_path_factory.mktemp("data") / "geeves_xy.csv"
    pd.concat([frame, spectra], axis=1).to_csv(path, index=False)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["--quiet", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _cv(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "cv",
        "--data",
        str(data),
        "--spectra-kind",
        "absorbance",
        "--target",
        "clay_pct",
        "--model",
        "plsr",
        "--folds",
        "3",
        "--out",
        str(out),
        *extra,
    ]


def test_lon_lat_are_projected_and_all_three_schemes_are_reported(
    capsys: pytest.CaptureFixture[str], geeves_xy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "spatial"
    status, stdout, stderr = run_cli(capsys, *_cv(geeves_xy, out, "--spatial-blocks", "10000"))
    assert status == 0, stderr
    assert "projected to EPSG:32755" in stdout
    assert "Random vs spatial" in stdout

    metrics = json.loads((out / "metrics.json").read_text())
    assert [row["validation"] for row in metrics["results"]] == VALIDATIONS
    for row in metrics["results"]:
        assert row["n"] == N_SAMPLES
        assert row["r2"] > 0.3
    assert list(metrics["validations"]) == VALIDATIONS
    spatial = metrics["config"]["spatial"]
    assert spatial["crs"] == "EPSG:4326"
    assert spatial["projected_crs"] == "EPSG:32755"
    assert spatial["units"] == "metre"
    assert spatial["n_locations"] == 40
    assert {row["validation"] for row in metrics["fold_metrics"]} == set(VALIDATIONS)

    predictions = pd.read_csv(out / "predictions.csv", dtype={"sample_id": str})
    assert list(predictions.columns[:2]) == ["validation", "sample_id"]
    assert predictions.groupby("validation").size().to_dict() == dict.fromkeys(
        VALIDATIONS, N_SAMPLES
    )
    # Blocks of 10 km in UTM 55S and sites never straddle two test folds.
    lon, lat = _sites()
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32755", always_xy=True)
    blocks = spatial_blocks(*to_utm.transform(lon, lat), block_size=10_000.0)
    ids = load_dataset("geeves").sample_ids.iloc[:N_SAMPLES].to_numpy()
    for validation, groups in (("spatial_blocks", blocks), ("leave_location_out", SITE)):
        fold_of = predictions[predictions["validation"] == validation].set_index("sample_id")
        folds = fold_of.loc[ids, "fold"].to_numpy()
        for group in np.unique(groups):
            assert len(set(folds[groups == group])) == 1

    report = (out / "report.md").read_text()
    assert "### Random vs spatial" in report
    assert "| model | R² random K-fold | R² spatial blocks | R² leave-location-out |" in report
    assert sorted(p.name for p in out.glob("*.png")) == [
        "obs_pred_clay_pct.png",
        "obs_pred_clay_pct_leave_location_out.png",
        "obs_pred_clay_pct_spatial_blocks.png",
    ]


def test_projected_southern_coordinates_with_a_crs(
    capsys: pytest.CaptureFixture[str], geeves_xy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mga"
    argv = _cv(geeves_xy, out, "--spatial-blocks", "15000", "--x", "mga_e", "--y", "mga_n")
    status, stdout, stderr = run_cli(capsys, *argv, "--crs", "28355")
    assert status == 0, stderr
    assert "projected to" not in stdout
    spatial = json.loads((out / "metrics.json").read_text())["config"]["spatial"]
    assert spatial["crs"] == spatial["projected_crs"] == "EPSG:28355"
    assert spatial["columns"] == ["mga_e", "mga_n"]
    assert spatial["block_size"] == 15000.0


def test_runs_without_spatial_blocks_keep_the_old_format(
    capsys: pytest.CaptureFixture[str], geeves_xy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plain"
    status, _, stderr = run_cli(capsys, *_cv(geeves_xy, out))
    assert status == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert "validation" not in metrics["results"][0]
    assert "validations" not in metrics
    assert pd.read_csv(out / "predictions.csv").columns[0] == "sample_id"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--x", "mga_e", "--y", "mga_n"], "--x, --y and --crs are used with --spatial-blocks"),
        (
            ["--spatial-blocks", "1000000"],
            r"put the 120 samples in 1 block\(s\), fewer than the 3 folds",
        ),
        (["--spatial-blocks", "-5"], "block size must be positive"),
        (["--spatial-blocks", "5000", "--x", "GPS_LAT", "--y", "GPS_LONG"], "look swapped"),
        (["--spatial-blocks", "5000", "--crs", "EPSG:32755"], "look like longitude/latitude"),
        (
            ["--spatial-blocks", "5000", "--x", "mga_n", "--y", "mga_e", "--crs", "28355"],
            "use --x mga_e --y mga_n",
        ),
    ],
)
def test_bad_spatial_options_are_one_line_errors(
    capsys: pytest.CaptureFixture[str],
    geeves_xy: Path,
    tmp_path: Path,
    extra: list[str],
    message: str,
) -> None:
    status, _, stderr = run_cli(capsys, *_cv(geeves_xy, tmp_path / "bad", *extra))
    assert status == 2
    assert stderr.startswith("specsoil cv: error:")
    assert stderr.count("\n") == 1
    assert re.search(message, stderr), stderr
    assert not (tmp_path / "bad").exists()


def test_group_column_cannot_be_combined(
    capsys: pytest.CaptureFixture[str], geeves_xy: Path, tmp_path: Path
) -> None:
    argv = _cv(geeves_xy, tmp_path / "bad", "--spatial-blocks", "5000")
    argv.remove("--folds")
    argv.remove("3")
    status, _, stderr = run_cli(capsys, *argv, "--group-column", "sample_id")
    assert status == 2
    assert "cannot be combined with a fold, group or train column" in stderr


def test_missing_coordinate_names_the_row(
    capsys: pytest.CaptureFixture[str], geeves_xy: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(geeves_xy)
    frame.loc[6, "GPS_LAT"] = np.nan
    data = tmp_path / "hole.csv"
    frame.to_csv(data, index=False)
    status, _, stderr = run_cli(capsys, *_cv(data, tmp_path / "bad", "--spatial-blocks", "5000"))
    assert status == 2
    sample = frame.loc[6, "sample_id"]
    assert "column 'GPS_LAT'" in stderr
    assert f"data row 7 (sample '{sample}')" in stderr
