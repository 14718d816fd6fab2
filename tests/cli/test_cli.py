"""End-to-end runs of the ``specsoil`` command line on real bundled spectra."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specsoil.cli import main
from specsoil.data import load_dataset

RESULT_KEYS = {"model", "target", "n", "r2", "rmse", "bias", "rpd", "rpiq", "ccc"}


@pytest.fixture(scope="module")
def geeves_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 real geeves spectra at 5 nm as % reflectance with a semicolon separator."""
    table = load_dataset("geeves")
    keep = np.arange(0, table.wavelengths.size, 5)
    reflectance_pct = 100 * 10 ** (-table.X[:120][:, keep].astype(np.float64))
    frame = table.metadata.iloc[:120].copy()
    spectra = pd.DataFrame(reflectance_pct, columns=[f"X{w:g}" for w in table.wavelengths[keep]])
    path = tmp_path_factory.mktemp("data") / "geeves_pct.csv"
    pd.concat([frame.reset_index(drop=True), spectra], axis=1).to_csv(path, sep=";", index=False)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class TestCV:
    def test_cv_writes_the_report(self, capsys, geeves_csv, tmp_path):
        out = tmp_path / "report"
        status, stdout, stderr = run_cli(
            capsys,
            "cv",
            "--data",
            str(geeves_csv),
            "--target",
            "clay_pct",
            "--target",
            "total_carbon_pct",
            "--model",
            "plsr",
            "--folds",
            "3",
            "--out",
            str(out),
        )
        assert status == 0, stderr
        assert "reflectance-percent" in stderr  # detection is shown to the user
        metrics = json.loads((out / "metrics.json").read_text())
        assert {r["target"] for r in metrics["results"]} == {"clay_pct", "total_carbon_pct"}
        for row in metrics["results"]:
            assert RESULT_KEYS <= set(row)
            assert row["n"] == 120
            assert row["r2"] > 0.3  # real spectra carry clay and carbon signal
        predictions = pd.read_csv(out / "predictions.csv")
        assert list(predictions.columns) == [
            "sample_id",
            "fold",
            "target",
            "model",
            "observed",
            "predicted",
        ]
        assert len(predictions) == 240
        assert sorted(p.name for p in out.glob("*.png")) == [
            "obs_pred_clay_pct.png",
            "obs_pred_total_carbon_pct.png",
        ]
        assert "clay_pct" in stdout
        assert "plsr" in stdout
        assert "bold" not in stdout  # a pipe shows no bold, so no note points at it

    def test_train_column_split_on_nirsoil(self, capsys, tmp_path):
        out = tmp_path / "nir"
        status, _, stderr = run_cli(
            capsys,
            "cv",
            "--data",
            "nirsoil",
            "--target",
            "CEC_meq_100g",
            "--model",
            "plsr",
            "--train-column",
            "train",
            "--out",
            str(out),
        )
        assert status == 0, stderr
        (row,) = json.loads((out / "metrics.json").read_text())["results"]
        test_rows = load_dataset("nirsoil").metadata.query("train == 0")
        assert row["n"] == int(test_rows["CEC_meq_100g"].notna().sum())

    def test_config_overrides_preprocessing(self, capsys, geeves_csv, tmp_path):
        config = tmp_path / "run.yaml"
        config.write_text(
            "targets: [clay_pct]\nfolds: 3\nmodels:\n  plsr_d1:\n    recipe: plsr\n"
            "    preprocessing:\n      - {name: savgol, window_length: 7, polyorder: 2, deriv: 1}\n"
        )
        out = tmp_path / "cfg"
        status, _, stderr = run_cli(
            capsys, "cv", "--data", str(geeves_csv), "--config", str(config), "--out", str(out)
        )
        assert status == 0, stderr
        metrics = json.loads((out / "metrics.json").read_text())
        assert [r["model"] for r in metrics["results"]] == ["plsr_d1"]
        steps = metrics["config"]["models"]["plsr_d1"]["preprocessing"]
        assert steps == [{"name": "savgol", "window_length": 7, "polyorder": 2, "deriv": 1}]


class TestTrainPredict:
    def test_round_trip_and_other_grid(self, capsys, geeves_csv, tmp_path):
        model_dir = tmp_path / "model"
        status, _, stderr = run_cli(
            capsys,
            "train",
            "--data",
            str(geeves_csv),
            "--target",
            "clay_pct",
            "--model",
            "plsr",
            "--out",
            str(model_dir),
        )
        assert status == 0, stderr
        manifest = json.loads((model_dir / "manifest.json").read_text())
        assert manifest["format_version"] == 1
        assert manifest["targets"] == ["clay_pct"]
        assert manifest["training"]["n_samples"] == 120

        same = tmp_path / "same.csv"
        assert (
            run_cli(
                capsys,
                "predict",
                "--model",
                str(model_dir),
                "--data",
                str(geeves_csv),
                "--out",
                str(same),
            )[0]
            == 0
        )
        # The bundled 1 nm reflectance covers the model's 5 nm grid: it is resampled.
        other = tmp_path / "other.csv"
        assert (
            run_cli(
                capsys,
                "predict",
                "--model",
                str(model_dir),
                "--data",
                "geeves",
                "--out",
                str(other),
            )[0]
            == 0
        )
        first = pd.read_csv(same)["clay_pct"].to_numpy()
        second = pd.read_csv(other)["clay_pct"].to_numpy()[:120]
        assert np.corrcoef(first, second)[0, 1] > 0.99


class TestBadInput:
    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["cv", "--data", "missing.csv", "--out", "x"], "no such file"),
            (["cv", "--target", "clay", "--out", "x"], "unknown target 'clay'; available"),
            (["cv", "--model", "magic", "--out", "x"], "unknown model 'magic'; available"),
            (
                ["predict", "--model", "nowhere", "--data", "geeves", "--out", "p.csv"],
                "not a specsoil model directory",
            ),
            (["cv", "--folds", "0", "--out", "x"], "--folds must be at least 2; got 0"),
            (["cv", "--folds", "1", "--out", "x"], "--folds must be at least 2; got 1"),
            (
                ["explain", "--model", "m", "--data", "geeves", "--folds", "1", "--out", "x"],
                "--folds must be 0 (the saved model only) or at least 2; got 1",
            ),
            (["cv", "--out", "."], "--out .: is the current folder"),
            (["cv", "--out", "lab.txt/report"], "lab.txt is a file, so nothing can be written"),
            (["predict", "--model", "m", "--data", "d", "--out", "."], "--out .: is a folder"),
        ],
    )
    def test_user_errors_exit_2_without_traceback(
        self, capsys, tmp_path, monkeypatch, argv, message
    ):
        monkeypatch.chdir(tmp_path)
        Path("lab.txt").write_text("keep me")
        status, _, stderr = run_cli(capsys, *argv)
        assert status == 2
        assert message in stderr
        assert "Traceback" not in stderr
        assert len(stderr.strip().splitlines()[-1]) > 0

    def test_no_spectral_columns(self, capsys, tmp_path):
        path = tmp_path / "lab.csv"
        path.write_text("id,clay,sand\n1,20,40\n2,30,50\n")
        status, _, stderr = run_cli(
            capsys, "cv", "--data", str(path), "--target", "clay", "--out", str(tmp_path / "o")
        )
        assert status == 2
        assert "lab.csv" in stderr
        assert "spectral" in stderr

    def test_grid_not_covering_model(self, capsys, geeves_csv, tmp_path):
        model_dir = tmp_path / "model"
        run_cli(
            capsys,
            "train",
            "--data",
            str(geeves_csv),
            "--target",
            "clay_pct",
            "--model",
            "plsr",
            "--out",
            str(model_dir),
        )
        status, _, stderr = run_cli(
            capsys,
            "predict",
            "--model",
            str(model_dir),
            "--data",
            "nirsoil",
            "--out",
            str(tmp_path / "p.csv"),
        )
        assert status == 2
        assert "cannot extrapolate" in stderr
        assert not (tmp_path / "p.csv").exists()

    def test_debug_shows_the_traceback(self, tmp_path):
        with pytest.raises(ValueError, match="no such file"):
            main(["cv", "--debug", "--data", str(tmp_path / "none.csv"), "--out", "x"])


def test_datasets_lists_both(capsys):
    status, stdout, _ = run_cli(capsys, "datasets")
    assert status == 0
    assert "geeves" in stdout
    assert "nirsoil" in stdout


class TestModelsCommand:
    def test_list_names_every_architecture(self, capsys):
        pytest.importorskip("torch")
        status, stdout, _ = run_cli(capsys, "models", "list")
        assert status == 0
        for name in ("seed_cnn", "lenet5", "resnet1d", "inception1d", "cnn1d2d", "cnn1d"):
            assert name in stdout

    def test_show_seed_cnn_shapes(self, capsys):
        pytest.importorskip("torch")
        status, stdout, _ = run_cli(
            capsys, "models", "show", "seed_cnn", "--bands", "20", "--step", "10"
        )
        assert status == 0
        assert "(128, 3)" in stdout
        assert "(384)" in stdout
        assert "total parameters: 31,425" in stdout  # 128 + 6,208 + 24,704 + 385

    def test_show_reports_the_block_that_does_not_fit(self, capsys):
        pytest.importorskip("torch")
        status, _, stderr = run_cli(capsys, "models", "show", "cnn1d", "--bands", "5")
        assert status == 2
        assert "block" in stderr
        assert "more input bands" in stderr
        assert "Traceback" not in stderr


class TestCNNThroughTheCLI:
    """CNN recipes sit behind the same cv/train/predict protocol as the classic models."""

    @pytest.fixture
    def quick_config(self, tmp_path):
        pytest.importorskip("torch")
        config = tmp_path / "cnn.yaml"
        config.write_text(
            "models:\n  cnn1d:\n    params: {max_epochs: 3, batch_size: 16}\n  plsr: {}\n"
        )
        return config

    def test_cv_compares_cnn_and_plsr(self, capsys, geeves_csv, tmp_path, quick_config):
        out = tmp_path / "cv"
        status, _, stderr = run_cli(
            capsys,
            "cv",
            "--data",
            str(geeves_csv),
            "--target",
            "clay_pct",
            "--config",
            str(quick_config),
            "--folds",
            "2",
            "--out",
            str(out),
        )
        assert status == 0, stderr
        results = json.loads((out / "metrics.json").read_text())["results"]
        assert sorted(r["model"] for r in results) == ["cnn1d", "plsr"]
        assert all(np.isfinite(r["rmse"]) for r in results)

    def test_predict_command_matches_the_library_on_a_saved_cnn(
        self, capsys, geeves_csv, tmp_path, quick_config
    ):
        model_dir = tmp_path / "cnn"
        status, _, stderr = run_cli(
            capsys,
            "train",
            "--data",
            str(geeves_csv),
            "--target",
            "clay_pct",
            "--target",
            "sand_pct",
            "--model",
            "cnn1d",
            "--config",
            str(quick_config),
            "--out",
            str(model_dir),
        )
        assert status == 0, stderr
        from specsoil.data import read_spectra
        from specsoil.models import SpectralModel

        table = read_spectra(geeves_csv)
        first = SpectralModel.load(model_dir).predict(table)
        out = tmp_path / "pred.csv"
        assert (
            run_cli(
                capsys,
                "predict",
                "--model",
                str(model_dir),
                "--data",
                str(geeves_csv),
                "--out",
                str(out),
            )[0]
            == 0
        )
        written = pd.read_csv(out)[["clay_pct", "sand_pct"]].to_numpy()
        np.testing.assert_allclose(written, first, rtol=1e-5, atol=1e-5)


class TestHonestHelpAndNotes:
    @pytest.mark.parametrize("command", ["predict", "explain", "convert", "map"])
    def test_a_required_data_flag_claims_no_default(self, capsys, command):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--data DATA" in text.split("options:")[0]  # in the usage line, unbracketed
        assert "[--data DATA]" not in text
        assert "default: the bundled" not in text

    def test_an_optional_data_flag_names_its_default(self, capsys):
        with pytest.raises(SystemExit):
            main(["cv", "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "[--data DATA]" in text
        assert "default: the bundled 'geeves' dataset" in text

    @pytest.mark.parametrize("terminal", [True, False])
    def test_the_bold_note_only_on_a_terminal(self, terminal):
        from rich.console import Console
        from sklearn.linear_model import LinearRegression

        from specsoil.cli._cv import _print_results
        from specsoil.evaluate import cross_validate, kfold_splits

        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
        result = cross_validate(
            {"ols": LinearRegression()},
            X,
            y,
            target_names=["y"],
            folds=kfold_splits(20, n_splits=2),
        )
        buffer = io.StringIO()
        _print_results(
            Console(file=buffer, force_terminal=terminal), result, y, ["y"], 1.0, "2-fold"
        )
        assert ("best RMSE per target in bold" in buffer.getvalue()) is terminal

    def test_help_to_a_pipe_is_not_wrapped(self, capsys):
        with pytest.raises(SystemExit):
            main(["predict", "--help"])
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("usage: specsoil predict")
        assert lines[0].endswith("[--debug] [-q]")  # the whole usage on one line
        (overwrite,) = [line for line in lines if "--overwrite " in line]
        assert overwrite.rstrip().endswith("never emptied)")
