"""``specsoil explain`` end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from specsoil.cli import main
from specsoil.data import SpectraTable
from specsoil.models import SpectralModel

from .conftest import band_table


def write_csv(table: SpectraTable, path: Path) -> Path:
    spectra = pd.DataFrame(table.X, columns=[f"X{w:g}" for w in table.wavelengths])
    pd.concat([table.metadata, spectra], axis=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(bands, tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    SpectralModel.fit(bands, ["clay"], recipe="plsr").save(root / "model")
    write_csv(bands, root / "bands.csv")
    write_csv(band_table(20, seed=2, start=1600.0), root / "narrow.csv")
    return root


def run_cli(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_explain_writes_the_folder(capsys, files, tmp_path):
    out = tmp_path / "explained"
    status, stdout, _ = run_cli(
        capsys,
        "explain",
        "--model",
        str(files / "model"),
        "--data",
        str(files / "bands.csv"),
        "--spectra-kind",
        "absorbance",
        "--folds",
        "3",
        "--out",
        str(out),
    )
    assert status == 0
    assert "clay (vip): top regions at 2200 nm" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        ".specsoil-output.json",  # marks the folder as specsoil's, for --overwrite
        "config.resolved.yaml",
        "explain.md",
        "importance.csv",
        "importance_clay.png",
    ]
    frame = pd.read_csv(out / "importance.csv")
    assert {"fold_1", "fold_2", "fold_3"}.issubset(frame.columns)


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        ("missing", "bands.csv", "not a specsoil model directory"),
        ("model", "narrow.csv", "cover 1600-2490 nm but model 'plsr' needs 1000-2490 nm"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, files, tmp_path, model, data, message):
    status, _, stderr = run_cli(
        capsys,
        "explain",
        "--model",
        str(files / model),
        "--data",
        str(files / data),
        "--spectra-kind",
        "absorbance",
        "--out",
        str(tmp_path / "o"),
    )
    assert status == 2
    (error,) = [line for line in stderr.splitlines() if "error" in line]
    assert error.startswith("specsoil explain: error:")
    assert message in error
    assert not (tmp_path / "o").exists()
