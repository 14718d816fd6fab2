"""``specsoil tune`` end to end on a small real subset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from specsoil.cli import main
from specsoil.cli._tune import optuna_storage
from specsoil.config import load_config

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"
DATA = ["--data", str(GEEVES_SMALL), "--spectra-kind", "reflectance"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class TestTune:
    def test_plsr_writes_params_trials_and_a_cv_config(self, capsys, tmp_path):
        out = tmp_path / "tuned"
        status, stdout, stderr = run_cli(
            capsys,
            "tune",
            *DATA,
            "--target",
            "clay_pct",
            "--target",
            "total_carbon_pct",
            "--model",
            "plsr",
            "--trials",
            "3",
            "--out",
            str(out),
        )
        assert status == 0, stderr
        best = json.loads((out / "best_params.json").read_text())
        assert set(best) == {"max_components", "selection"}
        assert 2 <= best["max_components"] <= 40
        trials = pd.read_csv(out / "trials.csv")
        assert len(trials) == 3
        assert {"number", "state", "value", "params_max_components"} <= set(trials.columns)
        complete = trials["state"] == "COMPLETE"
        assert trials.loc[~complete, "value"].isna().all()
        best_row = trials.loc[trials["value"].idxmin()]
        assert best_row["params_max_components"] == best["max_components"]
        assert (trials.loc[complete, "folds_scored"] == 3).all()
        assert "trial 2" in stderr  # one line per trial unless --quiet
        assert "Tuning plsr" in stdout
        config = load_config(out / "config.yaml")
        assert config.targets == ["clay_pct", "total_carbon_pct"]
        assert config.models["plsr"].params == best
        status, stdout, stderr = run_cli(
            capsys, "-q", "cv", "--config", str(out / "config.yaml"), "--folds", "3",
            "--out", str(tmp_path / "cv"),
        )  # fmt: skip
        assert status == 0, stderr
        assert stderr == ""
        assert (tmp_path / "cv" / "metrics.json").is_file()

    def test_quiet_hides_trial_lines(self, capsys, tmp_path):
        status, _, stderr = run_cli(
            capsys, "-q", "tune", *DATA, "--target", "clay_pct", "--model", "plsr",
            "--trials", "2", "--out", str(tmp_path / "o"),
        )  # fmt: skip
        assert status == 0
        assert stderr == ""

    def test_workers_share_a_study(self, capsys, tmp_path, library_url):
        storage = library_url  # sqlite:///... or postgresql://specsoil@127.0.0.1:PORT/db
        for worker, seed in (("a", "0"), ("b", "1")):
            status, _, stderr = run_cli(
                capsys, "-q", "tune", *DATA, "--target", "clay_pct", "--model", "plsr",
                "--trials", "2", "--storage", storage, "--study", "shared", "--seed", seed,
                "--out", str(tmp_path / worker),
            )  # fmt: skip
            assert status == 0, stderr
        assert len(pd.read_csv(tmp_path / "a" / "trials.csv")) == 2
        assert len(pd.read_csv(tmp_path / "b" / "trials.csv")) == 4

    def test_two_workers_at_once_on_postgresql(self, tmp_path, postgres_server):
        storage = postgres_server.new_database()

        def start(seed: int) -> subprocess.Popen[str]:
            argv = [
                sys.executable, "-m", "specsoil", "-q", "tune", *DATA, "--target", "clay_pct",
                "--model", "plsr", "--trials", "3", "--storage", storage, "--study", "together",
                "--seed", str(seed), "--out", str(tmp_path / f"w{seed}"),
            ]  # fmt: skip
            return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        # The first worker creates the study; two more then run on it at the same time.
        first = start(0)
        assert first.wait(timeout=300) == 0, first.communicate()[1]
        workers = [start(1), start(2)]
        for worker in workers:
            _, stderr = worker.communicate(timeout=300)
            assert worker.returncode == 0, stderr
        optuna = pytest.importorskip("optuna")
        study = optuna.load_study(study_name="together", storage=optuna_storage(storage))
        assert len(study.trials) == 3 + 3 + 3
        assert len({t.number for t in study.trials}) == 9

    def test_cnn1d_with_a_search_space_file(self, capsys, tmp_path):
        pytest.importorskip("torch")
        space = tmp_path / "space.yaml"
        space.write_text(
            "max_epochs: 2\n"
            "lr: {type: float, low: 1e-4, high: 1e-2, log: true}\n"
            "module_params.dropout: {type: float, low: 0, high: 0.5}\n"
            "batch_size: {type: categorical, choices: [16, 32]}\n"
        )
        out = tmp_path / "cnn"
        status, _, stderr = run_cli(
            capsys, "-q", "tune", *DATA, "--target", "clay_pct", "--model", "cnn1d",
            "--trials", "2", "--inner-folds", "2", "--search-space", str(space),
            "--out", str(out),
        )  # fmt: skip
        assert status == 0, stderr
        params = yaml.safe_load((out / "config.yaml").read_text())["models"]["cnn1d"]["params"]
        assert params["max_epochs"] == 2
        assert 1e-4 <= params["lr"] <= 1e-2
        assert set(params["module_params"]) == {"dropout"}
        assert params["batch_size"] in (16, 32)

    @pytest.mark.parametrize(
        ("space_text", "extra", "match"),
        [
            ("lr: {type: float, low: 1, high: 0}", [], "parameter 'lr': low=1 must be <= high=0"),
            ("- a\n- b", [], "expected a non-empty mapping"),
            (None, ["--storage", "tune.db"], "storage must be a database URL"),
            (None, ["--model", "nope"], "unknown model 'nope'"),
        ],
    )
    def test_errors_exit_2(self, capsys, tmp_path, space_text, extra, match):
        argv = ["tune", *DATA, "--target", "clay_pct", "--trials", "1"]
        if space_text is not None:
            space = tmp_path / "space.yaml"
            space.write_text(space_text)
            argv += ["--search-space", str(space)]
        if "--model" not in extra:
            argv += ["--model", "plsr"]
        status, _, stderr = run_cli(capsys, *argv, *extra, "--out", str(tmp_path / "o"))
        assert status == 2
        assert match in stderr
        assert stderr.splitlines()[-1].startswith("specsoil tune: error:")


class TestTrainPictures:
    """``specsoil train`` of a CNN also draws its curves and feature maps (issue 3 item 7)."""

    @pytest.mark.parametrize("recipe", ["seed_cnn", "cnn2d"])
    def test_cnn_model_directory_gets_pngs(self, capsys, tmp_path, recipe):
        pytest.importorskip("torch")
        config = tmp_path / "c.yaml"
        config.write_text(f"models:\n  m:\n    recipe: {recipe}\n    params: {{max_epochs: 2}}\n")
        out = tmp_path / "model"
        status, _, stderr = run_cli(
            capsys, "-q", "train", *DATA, "--target", "clay_pct", "--config", str(config),
            "--out", str(out),
        )  # fmt: skip
        assert status == 0, stderr
        for name in ("training_curves.png", "feature_maps.png"):
            assert (out / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    def test_classic_model_gets_no_pictures(self, capsys, tmp_path):
        status, _, _ = run_cli(
            capsys, "-q", "train", *DATA, "--target", "clay_pct", "--model", "plsr",
            "--out", str(tmp_path / "m"),
        )  # fmt: skip
        assert status == 0
        assert not list((tmp_path / "m").glob("*.png"))
