"""``specsoil train --conformal`` and ``specsoil predict --interval``, with domain flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specsoil.cli import main
from specsoil.data import load_dataset

TARGETS = ["clay_pct", "total_carbon_pct"]
DOMAIN_COLUMNS = ["in_domain", "hotelling_t2", "q_residual"]


def write_csv(path: Path, rows: np.ndarray, *, bump: float = 0.0) -> Path:
    """geeves rows at 10 nm as an absorbance CSV; ``bump`` adds a band at 1750 nm."""
    table = load_dataset("geeves")
    keep = np.arange(0, table.wavelengths.size, 10)
    wavelengths = table.wavelengths[keep]
    X = table.X[rows][:, keep].astype(np.float64)
    X = X + bump * np.exp(-0.5 * ((wavelengths - 1750.0) / 15.0) ** 2)
    spectra = pd.DataFrame(X, columns=[f"{w:g}" for w in wavelengths])
    frame = table.metadata.iloc[rows].reset_index(drop=True)
    pd.concat([frame, spectra], axis=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("uncertainty")
    order = np.random.default_rng(1).permutation(load_dataset("geeves").n_samples)
    fit_rows, new_rows = np.sort(order[:250]), np.sort(order[250:])
    return {
        "train": write_csv(root / "train.csv", fit_rows),
        "new": write_csv(root / "new.csv", new_rows),
        "altered": write_csv(root / "altered.csv", new_rows, bump=0.03),
        "root": root,
    }


def train(files: dict[str, Path], name: str, *extra: str) -> Path:
    out = files["root"] / name
    argv = ["-q", "train", "--data", str(files["train"]), "--model", "plsr", "--out", str(out)]
    for target in TARGETS:
        argv += ["--target", target]
    assert main([*argv, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def default_model(files: dict[str, Path]) -> Path:
    return train(files, "default")


def predict(capsys, model: Path, data: Path, out: Path, *extra: str) -> tuple[int, str]:
    status = main(
        ["predict", "--model", str(model), "--data", str(data), "--out", str(out), *extra]
    )
    return status, capsys.readouterr().err


def test_default_training_is_cv_plus_and_intervals_cover_new_soils(
    capsys, files, default_model, tmp_path
):
    manifest = json.loads((default_model / "manifest.json").read_text())
    assert manifest["training"]["conformal"]["method"] == "cv+"
    assert manifest["training"]["conformal"]["n_folds"] == 5
    out = tmp_path / "p.csv"
    status, stderr = predict(capsys, default_model, files["new"], out, "--interval", "0.9")
    assert status == 0, stderr
    frame = pd.read_csv(out)
    expected = ["sample_id"]
    for target in TARGETS:
        expected += [target, f"{target}_lower", f"{target}_upper"]
    assert list(frame.columns) == [*expected, *DOMAIN_COLUMNS]
    truth = pd.read_csv(files["new"])
    for target in TARGETS:
        known = truth[target].notna().to_numpy()
        inside = (truth[target] >= frame[f"{target}_lower"]) & (
            truth[target] <= frame[f"{target}_upper"]
        )
        # 141 new soils, one draw: ~2.5 binomial sd below the nominal 0.9 at most.
        assert inside[known].mean() >= 0.835
        assert (frame[f"{target}_upper"] > frame[f"{target}_lower"]).all()
    # A wider nominal level gives wider intervals.
    wide = tmp_path / "wide.csv"
    assert predict(capsys, default_model, files["new"], wide, "--interval", "0.95")[0] == 0
    width = frame["clay_pct_upper"] - frame["clay_pct_lower"]
    wider = pd.read_csv(wide)["clay_pct_upper"] - pd.read_csv(wide)["clay_pct_lower"]
    assert (wider >= width - 1e-9).all()
    assert frame["in_domain"].dtype == bool
    assert frame["in_domain"].mean() >= 0.94


def test_without_interval_the_domain_columns_are_still_written(
    capsys, files, default_model, tmp_path
):
    out = tmp_path / "p.csv"
    status, stderr = predict(capsys, default_model, files["altered"], out)
    assert status == 0, stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["sample_id", *TARGETS, *DOMAIN_COLUMNS]
    # Spectra with an absorption band the training soils never had fall outside.
    assert frame["in_domain"].mean() < 0.2
    assert (frame["q_residual"] > 0).all()
    assert (frame["hotelling_t2"] >= 0).all()


def test_split_conformal_from_the_cli(capsys, files, tmp_path):
    model = train(files, "split", "--conformal", "split", "--calibration-fraction", "0.3")
    conformal = json.loads((model / "manifest.json").read_text())["training"]["conformal"]
    assert conformal["method"] == "split"
    assert conformal["n_fit_rows"] == 175  # 250 minus 75 calibration soils
    out = tmp_path / "p.csv"
    status, stderr = predict(capsys, model, files["new"], out, "--interval", "0.8")
    assert status == 0, stderr
    frame = pd.read_csv(out)
    width = frame["clay_pct_upper"] - frame["clay_pct_lower"]
    assert np.allclose(width, width.iloc[0])  # split conformal: one half-width per target


def test_interval_on_a_model_without_calibration_says_to_retrain(capsys, files, tmp_path):
    model = train(files, "none", "--conformal", "none")
    out = tmp_path / "p.csv"
    status, stderr = predict(capsys, model, files["new"], out, "--interval", "0.9")
    assert status == 2
    assert "retrain it with specsoil train --conformal cv" in stderr
    assert not out.exists()
    # Without --interval it predicts as before, domain flags included.
    assert predict(capsys, model, files["new"], out)[0] == 0
    assert DOMAIN_COLUMNS[0] in pd.read_csv(out).columns


def test_interval_outside_zero_one_is_rejected(capsys, files, default_model, tmp_path):
    status, stderr = predict(
        capsys, default_model, files["new"], tmp_path / "p.csv", "--interval", "90"
    )
    assert status == 2
    assert "--interval must be between 0 and 1" in stderr


def test_a_model_directory_from_before_predicts_without_domain_columns(
    capsys, files, default_model, tmp_path
):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(default_model, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for name in [manifest["files"]["conformal"], manifest["files"]["domain"]]:
        (old / name).unlink()
    for name in manifest["files"]["conformal_folds"]:
        (old / name).unlink()
    manifest["files"] = {"pipeline": manifest["files"]["pipeline"]}
    (old / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "p.csv"
    status, stderr = predict(capsys, old, files["new"], out)
    assert status == 0, stderr
    assert list(pd.read_csv(out).columns) == ["sample_id", *TARGETS]
    assert "no applicability domain" in stderr


def test_stream_training_rejects_conformal(capsys, tmp_path):
    data = str(tmp_path / "big.parquet")
    argv = ["train", "--stream", "--data", data, "--target", "clay_pct", "--conformal", "cv"]
    status = main([*argv, "--out", str(tmp_path / "m")])
    assert status == 2
    assert "--conformal cv does not work with --stream" in capsys.readouterr().err


@pytest.mark.slow  # torch import and an ONNX export: ~10 s
def test_onnx_model_rejects_interval_with_a_clear_error(capsys, files, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    pytest.importorskip("torch")
    model = train(files, "for_onnx", "--conformal", "none")
    onnx_path = tmp_path / "m.onnx"
    assert main(["-q", "export", "--model", str(model), "--out", str(onnx_path)]) == 0
    out = tmp_path / "p.csv"
    status, stderr = predict(capsys, onnx_path, files["new"], out, "--interval", "0.9")
    assert status == 2
    assert "ONNX export carries no conformal calibration" in stderr
    status, stderr = predict(capsys, onnx_path, files["new"], out)
    assert status == 0, stderr
    assert list(pd.read_csv(out).columns) == ["sample_id", *TARGETS]
