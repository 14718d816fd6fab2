"""``specsoil export`` and ``specsoil predict --model X.onnx``, the latter without torch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from specsoil.cli import main

from ._helpers import target_sd

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# Runs the CLI with the named top-level packages made unimportable, as if not installed:
# every meta path finder is wrapped so that it does not find them (find_spec gives None,
# import raises ModuleNotFoundError). Exits 3 if one was imported anyway.
_WITHOUT = """
import os, sys
BLOCKED = set(os.environ["SPECSOIL_TEST_BLOCK"].split(","))

class _Hide:
    def __init__(self, inner):
        self.inner = inner

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        find = getattr(self.inner, "find_spec", None)
        return None if find is None else find(name, path, target)

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

sys.meta_path[:] = [_Hide(finder) for finder in sys.meta_path]
for name in BLOCKED:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"the test could not hide {name}")
from specsoil.cli import main
status = main(sys.argv[1:])
leaked = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
if leaked:
    print("imported although hidden:", leaked, file=sys.stderr)
    status = 3
sys.exit(status)
"""
# What a machine with only the onnx extra lacks.
_NO_TORCH = "torch,pytorch_lightning,lightning,onnx,onnxscript"


def _run_without(blocked: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPECSOIL_TEST_BLOCK": blocked}
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def cnn1d_files(fit_cnn, tmp_path_factory):
    """A cnn1d model directory and its export made with ``specsoil export``."""
    model = fit_cnn("cnn1d")
    root = tmp_path_factory.mktemp("cli_export")
    model_dir = model.save(root / "cnn1d")
    onnx_path = root / "cnn1d.onnx"
    status = main(
        ["-q", "export", "--model", str(model_dir), "--format", "onnx", "--out", str(onnx_path)]
    )
    assert status == 0
    return model, model_dir, onnx_path


def test_predict_with_onnx_needs_no_torch_and_matches_the_model_directory(
    cnn1d_files, tmp_path, capsys
):
    model, model_dir, onnx_path = cnn1d_files
    from_dir = tmp_path / "from_dir.csv"
    argv = ["-q", "predict", "--data", "nirsoil", "--model", str(model_dir), "--out"]
    assert main([*argv, str(from_dir)]) == 0
    from_onnx = tmp_path / "from_onnx.csv"
    done = _run_without(
        _NO_TORCH,
        "predict",
        "--data",
        "nirsoil",
        "--model",
        str(onnx_path),
        "--out",
        str(from_onnx),
    )
    assert done.returncode == 0, done.stderr
    assert "predicted" in done.stdout
    expected, got = pd.read_csv(from_dir), pd.read_csv(from_onnx)
    assert list(got.columns) == ["sample_id", *model.targets]
    # The model directory adds its applicability-domain columns; an ONNX export has none.
    domain = ["in_domain", "hotelling_t2", "q_residual"]
    assert list(expected.columns) == ["sample_id", *model.targets, *domain]
    assert got["sample_id"].tolist() == expected["sample_id"].tolist()
    difference = np.abs(got[model.targets].to_numpy() - expected[model.targets].to_numpy())
    assert np.max(difference / target_sd(model)) < 1e-4


def test_model_directory_without_torch_says_which_extra(cnn1d_files, tmp_path):
    _, model_dir, _ = cnn1d_files
    out = tmp_path / "pred.csv"
    done = _run_without(
        _NO_TORCH, "predict", "--data", "nirsoil", "--model", str(model_dir), "--out", str(out)
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'specsoil[cnn]'" in done.stderr
    assert not out.exists()


def test_onnx_without_onnxruntime_says_which_extra(cnn1d_files, tmp_path):
    _, _, onnx_path = cnn1d_files
    out = tmp_path / "pred.csv"
    done = _run_without(
        f"{_NO_TORCH},onnxruntime",
        *("predict", "--data", "nirsoil", "--model", str(onnx_path), "--out", str(out)),
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'specsoil[onnx]'" in done.stderr


def test_export_checks_against_pytorch_on_data(cnn1d_files, tmp_path, capsys):
    _, model_dir, _ = cnn1d_files
    out = tmp_path / "checked.onnx"
    argv = ["export", "--model", str(model_dir), "--out", str(out), "--check-data", "nirsoil"]
    assert main(argv) == 0
    # One line however long the temporary path: output to a pipe is never wrapped.
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("exported ")
    assert f"to {out}; on 825 spectra it agrees with PyTorch" in line
    assert out.is_file()


def test_export_refuses_another_suffix(cnn1d_files, tmp_path, capsys):
    _, model_dir, _ = cnn1d_files
    assert main(["export", "--model", str(model_dir), "--out", str(tmp_path / "m.pt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err


def test_export_refuses_a_nonlinear_classic_model(nirsoil_train, tmp_path, capsys):
    from specsoil.models import SpectralModel

    model_dir = SpectralModel.fit(
        nirsoil_train, ["N_total_g_kg"], recipe="rf", params={"n_estimators": 10}
    ).save(tmp_path / "rf")
    out = tmp_path / "rf.onnx"
    assert main(["export", "--model", str(model_dir), "--out", str(out)]) == 2
    assert "only CNN models and linear ones (plsr) can be exported" in capsys.readouterr().err
    assert not out.exists()
