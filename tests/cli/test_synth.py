"""``specsoil synth`` and ``specsoil train --stream``."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml

from specsoil.cli import main
from specsoil.data import SYNTHETIC_LABEL, read_spectra
from specsoil.models import SpectralModel


def run_cli(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "syn.parquet"
    assert main(["synth", "--n", "400", "--out", str(path), "--row-group-size", "100"]) == 0
    return path


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """The same 400 rows as a directory of two Parquet parts."""
    path = tmp_path_factory.mktemp("synth") / "parts"
    argv = ["synth", "--n", "400", "--out", str(path), "--row-group-size", "100"]
    assert main([*argv, "--row-groups-per-file", "2"]) == 0
    return path


def test_synth_writes_a_labelled_table_and_says_it_is_synthetic(capsys, tmp_path):
    out = tmp_path / "lucas.parquet"
    status, stdout, stderr = run_cli(
        capsys, "synth", "--n", 120, "--out", out, "--seed", 3, "--row-group-size", 50
    )
    assert status == 0, stderr
    assert "SYNTHETIC" in stdout
    assert "not real soil" in stdout
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    table = read_spectra(out)
    assert table.X.shape == (120, 4200)
    assert (table.metadata["source"] == SYNTHETIC_LABEL).all()


def test_synth_writes_csv(capsys, tmp_path):
    out = tmp_path / "lucas.csv.gz"
    status, _, stderr = run_cli(capsys, "synth", "--n", 20, "--out", out)
    assert status == 0, stderr
    assert read_spectra(out).X.shape == (20, 4200)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n", "0", "--out", "x.parquet"], "n must be a positive integer; got 0"),
        (["--n", "5", "--out", "x.txt"], "x.txt: unknown output format"),
        (["--n", "5", "--out", "x.parquet", "--row-group-size", "0"], "row_group_size must be"),
    ],
)
def test_synth_bad_arguments_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    status, _, stderr = run_cli(capsys, "synth", *argv)
    assert status == 2
    assert stderr.startswith("specsoil synth: error:")
    assert message in stderr
    assert list(tmp_path.iterdir()) == []


def quick_config(tmp_path, recipe="cnn1d"):
    config = tmp_path / "quick.yaml"
    params = {"max_epochs": 2, "patience": None, "batch_size": 64}
    config.write_text(yaml.safe_dump({"models": {"quick": {"recipe": recipe, "params": params}}}))
    return config


def test_train_stream_fits_and_saves_a_cnn(capsys, synthetic, parts, tmp_path):
    assert sorted(p.name for p in parts.glob("*.parquet")) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    out = tmp_path / "model"
    status, stdout, stderr = run_cli(
        capsys,
        "train",
        "--stream",
        "--data",
        parts,
        "--target",
        "clay",
        "--target",
        "OC",
        "--config",
        quick_config(tmp_path),
        "--out",
        out,
    )
    assert status == 0, stderr
    assert "streamed from 4 row groups" in stdout
    assert "synthetic" in stderr  # the data description says so
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["streamed"] is True
    assert manifest["recipe"] == "cnn1d"
    assert manifest["targets"] == ["clay", "OC"]
    assert yaml.safe_load((out / "config.resolved.yaml").read_text())["stream"] is True
    assert (out / "training_curves.png").is_file()
    assert (out / "feature_maps.png").is_file()
    predicted = SpectralModel.load(out).predict(read_spectra(synthetic))
    assert predicted.shape == (400, 2)


def test_train_stream_rejects_what_it_cannot_stream(capsys, synthetic, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("id,400,410,420\na,0.1,0.2,0.3\n")
    cases = [
        (
            ["--data", csv, "--target", "id"],
            "--stream reads Parquet files (or a directory of Parquet parts) only",
        ),
        (
            ["--target", "clay"],
            "--stream reads Parquet files (or a directory of Parquet parts) only",
        ),
        (["--data", synthetic, "--target", "clay", "--drop-invalid"], "--drop-invalid does not"),
        (["--data", synthetic], "say which property to model with --target"),
        (["--data", synthetic, "--target", "clay", "--model", "plsr"], "cannot be trained by"),
        (["--data", synthetic, "--target", "nope"], "unknown target 'nope'"),
    ]
    for argv, message in cases:
        status, _, stderr = run_cli(capsys, "train", "--stream", *argv, "--out", tmp_path / "m")
        assert status == 2, (argv, stderr)
        assert message in stderr, (argv, stderr)
    assert not (tmp_path / "m").exists()
