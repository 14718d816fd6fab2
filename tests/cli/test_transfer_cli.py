"""``specsoil finetune`` and ``specsoil transfer-cv`` end to end on real geeves spectra."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from specsoil.cli import main
from specsoil.data import load_dataset, read_spectra
from specsoil.models import SpectralModel

pytest.importorskip("torch")

# Tiny networks: 40 nm bands and a few epochs keep each CLI run to a few seconds.
QUICK_CONFIG = """\
models:
  cnn1d:
    preprocessing: [{name: resample, step: 40, method: mean}]
    params: {max_epochs: 3, batch_size: 16, patience: null}
"""


def _write_csv(path: Path, rows: slice, step: int, site: list[str] | None = None) -> Path:
    """Real geeves soils as % reflectance every ``step`` nm, with an optional site column."""
    table = load_dataset("geeves")
    keep = np.arange(0, table.wavelengths.size, step)
    reflectance_pct = 100 * 10 ** (-table.X[rows][:, keep].astype(np.float64))
    frame = table.metadata.iloc[rows].reset_index(drop=True)
    if site is not None:
        frame["site"] = site
    spectra = pd.DataFrame(reflectance_pct, columns=[f"X{w:g}" for w in table.wavelengths[keep]])
    pd.concat([frame, spectra], axis=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("transfer")
    config = folder / "quick.yaml"
    config.write_text(QUICK_CONFIG)
    return {
        "config": config,
        # The base library: 80 soils at 5 nm; the local site: 25 other soils at 10 nm.
        "library": _write_csv(folder / "library.csv", slice(0, 80), 5),
        "local": _write_csv(folder / "local.csv", slice(200, 225), 10),
        "grouped": _write_csv(
            folder / "grouped.csv", slice(0, 70), 10, ["north"] * 30 + ["south"] * 30 + ["x"] * 10
        ),
    }


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def base_dir(files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base") / "cnn"
    status = main(
        [
            "-q",
            "train",
            "--data",
            str(files["library"]),
            "--target",
            "clay_pct",
            "--target",
            "total_carbon_pct",
            "--model",
            "cnn1d",
            "--config",
            str(files["config"]),
            "--out",
            str(out),
        ]
    )
    assert status == 0
    return out


class TestFinetune:
    def test_writes_a_model_that_predicts(self, capsys, files, base_dir, tmp_path):
        out = tmp_path / "tuned"
        status, stdout, stderr = run_cli(
            capsys,
            "finetune",
            "--base",
            str(base_dir),
            "--data",
            str(files["local"]),
            "--target",
            "clay_pct",
            "--strategy",
            "head",
            "--epochs",
            "2",
            "--out",
            str(out),
        )
        assert status == 0, stderr
        assert "fine-tuned 'cnn1d'" in stdout
        assert "new output layer" in stdout  # one target instead of the base's two
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["targets"] == ["clay_pct"]
        assert manifest["training"]["finetuned_from"]["n_samples"] == 80
        assert manifest["training"]["finetune"]["strategy"] == "head"
        # The base's 5 nm-derived grid carries over; the 10 nm local spectra are resampled.
        base_manifest = json.loads((base_dir / "manifest.json").read_text())
        assert manifest["wavelengths"] == base_manifest["wavelengths"]
        resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
        assert resolved["strategy"] == "head"
        assert resolved["epochs"] == 2
        predicted = SpectralModel.load(out).predict(read_spectra(files["local"]))
        assert predicted.shape == (25, 1)
        assert np.isfinite(predicted).all()

    def test_keeps_the_base_targets_by_default(self, capsys, files, base_dir, tmp_path):
        out = tmp_path / "tuned"
        status, stdout, stderr = run_cli(
            capsys, "finetune", "--base", str(base_dir), "--data", str(files["local"]),
            "--epochs", "1", "--out", str(out),
        )  # fmt: skip
        assert status == 0, stderr
        assert "base output layer" in stdout
        assert json.loads((out / "manifest.json").read_text())["targets"] == [
            "clay_pct",
            "total_carbon_pct",
        ]

    def test_replay_and_batchnorm_flags(self, capsys, files, base_dir, tmp_path):
        out = tmp_path / "tuned"
        status, stdout, stderr = run_cli(
            capsys, "finetune", "--base", str(base_dir), "--data", str(files["local"]),
            "--replay", str(files["library"]), "--local-share", "0.25",
            "--batchnorm", "adapt", "--strategy", "full", "--epochs", "1", "--out", str(out),
        )  # fmt: skip
        assert status == 0, stderr
        assert "replaying 80 spectra" in stdout
        finetune = json.loads((out / "manifest.json").read_text())["training"]["finetune"]
        assert finetune["batchnorm"] == "adapt"
        assert finetune["replay"]["n_samples"] == 80
        assert finetune["replay"]["local_share"] == 0.25
        resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
        assert resolved["replay"] == str(files["library"])
        assert (resolved["batchnorm"], resolved["local_share"]) == ("adapt", 0.25)

    def test_a_classic_base_model_points_at_spiking(self, capsys, files, tmp_path):
        plsr = tmp_path / "plsr"
        assert main(["-q", "train", "--data", str(files["library"]), "--target", "clay_pct",
                     "--out", str(plsr)]) == 0  # fmt: skip
        status, _, stderr = run_cli(
            capsys, "finetune", "--base", str(plsr), "--data", str(files["local"]),
            "--out", str(tmp_path / "x"),
        )  # fmt: skip
        assert status == 2
        assert "fine-tuning needs a CNN" in stderr
        assert "spiking" in stderr
        assert "Traceback" not in stderr

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ([], "say which local spectra"),
            (["--data", "LOCAL", "--epochs", "0"], "--epochs must be at least 1"),
            (["--data", "LOCAL", "--local-share", "1"], "--local-share must be between 0 and 1"),
            (["--data", "LOCAL", "--replay", "NOWHERE.csv"], "NOWHERE.csv"),
        ],
    )
    def test_bad_input(self, capsys, files, base_dir, tmp_path, extra, message):
        extra = [str(files["local"]) if e == "LOCAL" else e for e in extra]
        status, _, stderr = run_cli(
            capsys, "finetune", "--base", str(base_dir), *extra, "--out", str(tmp_path / "x")
        )
        assert status == 2
        assert message in stderr


@pytest.fixture
def settings(monkeypatch) -> dict[str, object]:
    """The keyword arguments transfer-cv passes to transfer_cv, which then stops the run."""
    import specsoil.cli._transfer_cv as command

    seen: dict[str, object] = {}

    def fake(table, **kwargs):
        seen.update(kwargs)
        raise command.SpecsoilError("stop here")

    monkeypatch.setattr(command, "transfer_cv", fake)
    return seen


class TestTransferCV:
    def test_four_strategies_report(self, capsys, files, tmp_path):
        out = tmp_path / "transfer"
        status, stdout, stderr = run_cli(
            capsys,
            "transfer-cv",
            "--data",
            str(files["grouped"]),
            "--group-column",
            "site",
            "--target",
            "clay_pct",
            "--local-n",
            "8",
            "--spiking-model",
            "plsr",
            "--epochs",
            "2",
            "--config",
            str(files["config"]),
            "--out",
            str(out),
        )
        assert status == 0, stderr
        document = json.loads((out / "transfer.json").read_text())
        results = document["results"]
        assert {r["strategy"] for r in results} == {
            "global",
            "local",
            "transfer",
            "spiking",
            "ensemble",
        }
        assert {r["group"] for r in results} == {"north", "south"}
        for row in results:
            assert {"group", "strategy", "target", "rmse", "r2", "n_test"} <= set(row)
            assert row["n_test"] == 22
        assert document["skipped_groups"] == [{"group": "x", "n": 10}]
        # The default fine-tuning: every weight, replaying the other groups' data.
        config = document["config"]
        assert (config["strategy"], config["finetune_replay"]) == ("full", True)
        assert (config["finetune_max_epochs"], config["finetune_batchnorm"]) == (2, "frozen")
        assert {p.name for p in out.iterdir()} == {
            "transfer.json",
            "transfer.md",
            "transfer_rmse.png",
            "config.resolved.yaml",
            ".specsoil-output.json",  # marks the folder as specsoil's, for --overwrite
        }
        assert "transfer vs local: wins" in stdout
        assert "transfer vs spiking plsr: wins" in stdout
        assert "transfer+plsr vs spiking plsr: wins" in stdout
        assert "best" not in stdout.replace("lowest mean RMSE per group in bold", "")
        assert "skipped groups" in stdout
        assert "bold" not in stdout  # a pipe shows no bold, so no note points at it

    def test_replay_flags_reach_the_report(self, capsys, files, tmp_path):
        out = tmp_path / "transfer"
        status, _, stderr = run_cli(
            capsys, "transfer-cv", "--data", str(files["grouped"]), "--group-column", "site",
            "--target", "clay_pct", "--local-n", "8", "--spiking-model", "plsr",
            "--epochs", "1", "--replay", "--local-share", "0.4", "--batchnorm", "adapt",
            "--config", str(files["config"]), "--out", str(out),
        )  # fmt: skip
        assert status == 0, stderr
        config = json.loads((out / "transfer.json").read_text())["config"]
        assert config["finetune_replay"] is True
        assert config["finetune_local_share"] == 0.4
        assert config["finetune_batchnorm"] == "adapt"
        assert "replaying the other groups' data" in (out / "transfer.md").read_text()

    def test_draws_similar_replay_and_ensemble_weight(self, capsys, files, tmp_path, settings):
        seen = settings
        base = ["transfer-cv", "--data", str(files["grouped"]), "--group-column", "site",
                "--target", "clay_pct", "--out", str(tmp_path / "x")]  # fmt: skip
        status, _, stderr = run_cli(
            capsys, *base, "--draws", "3", "--similar-replay", "--ensemble-weight", "0.3"
        )
        assert (status, "stop here" in stderr) == (2, True)
        assert (seen["draws"], seen["replay_neighbours"], seen["ensemble_weight"]) == (3, 10, 0.3)
        run_cli(capsys, *base, "--similar-replay", "4", "--repeats", "2")
        assert (seen["draws"], seen["replay_neighbours"]) == (2, 4)
        run_cli(capsys, *base)
        assert (seen["draws"], seen["replay_neighbours"], seen["ensemble_weight"]) == (1, None, 0.5)

    def test_two_draws_report_the_spread(self, capsys, files, tmp_path):
        out = tmp_path / "transfer"
        status, stdout, stderr = run_cli(
            capsys, "transfer-cv", "--data", str(files["grouped"]), "--group-column", "site",
            "--target", "clay_pct", "--local-n", "8", "--spiking-model", "plsr",
            "--spiking-model", "mbl", "--epochs", "1", "--draws", "2", "--similar-replay", "3",
            "--config", str(files["config"]), "--out", str(out),
        )  # fmt: skip
        assert status == 0, stderr
        document = json.loads((out / "transfer.json").read_text())
        assert {r["draw"] for r in document["results"]} == {0, 1}
        assert len(document["local_samples"]) == 4  # 2 groups x 2 draws
        clay = document["summary"]["targets"]["clay_pct"]
        plsr = next(c for c in clay["comparisons"] if c["reference"] == "spiking plsr")
        assert plsr["n"] == 4
        assert set(plsr["ratio_by_draw"]) == {"0", "1"}
        assert document["config"]["finetune_replay_neighbours"] == 3
        assert "transfer vs spiking average: wins" in stdout
        assert " ± " in stdout  # the spread over the two draws
        assert "nearest to each local sample" in (out / "transfer.md").read_text()

    def test_epochs_zero_means_the_global_model_s(self, capsys, files, tmp_path, settings):
        seen = settings
        status, _, stderr = run_cli(
            capsys, "transfer-cv", "--data", str(files["grouped"]), "--group-column", "site",
            "--target", "clay_pct", "--epochs", "0", "--no-replay", "--out", str(tmp_path / "x"),
        )  # fmt: skip
        assert status == 2
        assert "stop here" in stderr
        assert seen["max_epochs"] is None
        assert seen["replay"] is False
        status, _, stderr = run_cli(
            capsys, "transfer-cv", "--data", str(files["grouped"]), "--group-column", "site",
            "--target", "clay_pct", "--epochs", "-1", "--out", str(tmp_path / "x"),
        )  # fmt: skip
        assert status == 2
        assert "--epochs must be at least 1 (or 0" in stderr

    def test_needs_a_group_column(self, capsys, files, tmp_path):
        status, _, stderr = run_cli(
            capsys, "transfer-cv", "--data", str(files["grouped"]), "--target", "clay_pct",
            "--out", str(tmp_path / "x"),
        )  # fmt: skip
        assert status == 2
        assert "--group-column" in stderr

    def test_refuses_a_classic_model_as_the_transfer_model(self, capsys, files, tmp_path):
        status, _, stderr = run_cli(
            capsys, "transfer-cv", "--data", str(files["grouped"]), "--target", "clay_pct",
            "--group-column", "site", "--model", "plsr", "--out", str(tmp_path / "x"),
        )  # fmt: skip
        assert status == 2
        assert "not a CNN" in stderr
