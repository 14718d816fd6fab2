"""``specsoil train --clip`` and ``specsoil predict --clip``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from specsoil.cli import main

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"
TRAIN = ["-q", "train", "--data", str(GEEVES_SMALL), "--model", "plsr"]
TARGETS = ["--target", "clay_pct", "--target", "total_carbon_pct"]


@pytest.fixture(scope="module")
def unclipped_predictions(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("unclipped")
    argv = [*TRAIN, *TARGETS, "--conformal", "split", "--out", str(root / "m")]
    assert main(argv) == 0
    out = root / "p.csv"
    argv = ["-q", "predict", "--model", str(root / "m"), "--data", str(GEEVES_SMALL)]
    assert main([*argv, "--interval", "0.9", "--out", str(out)]) == 0
    return pd.read_csv(out)


@pytest.fixture(scope="module")
def clipped_model(tmp_path_factory: pytest.TempPathFactory, unclipped_predictions) -> Path:
    cap = float(unclipped_predictions["clay_pct"].median())
    out = tmp_path_factory.mktemp("clipped") / "m"
    clip = ["--clip", f"clay_pct=0:{cap}", "--clip", "total_carbon_pct=0:"]
    assert main([*TRAIN, *TARGETS, "--conformal", "split", *clip, "--out", str(out)]) == 0
    return out


def test_train_records_the_bounds(clipped_model, unclipped_predictions):
    manifest = json.loads((clipped_model / "manifest.json").read_text(encoding="utf-8"))
    cap = float(unclipped_predictions["clay_pct"].median())
    assert manifest["clip"] == {"clay_pct": [0.0, cap], "total_carbon_pct": [0.0, None]}


def test_predict_clips_values_and_intervals_and_says_so(
    clipped_model, unclipped_predictions, tmp_path, capsys
):
    capsys.readouterr()
    out = tmp_path / "p.csv"
    argv = ["predict", "--model", str(clipped_model), "--data", str(GEEVES_SMALL)]
    assert main([*argv, "--interval", "0.9", "--out", str(out)]) == 0
    assert "clipped to clay_pct 0.." in capsys.readouterr().out
    got = pd.read_csv(out)
    cap = float(unclipped_predictions["clay_pct"].median())
    assert (unclipped_predictions["clay_pct_upper"] > cap).any()  # the bound binds
    assert got["clay_pct"].max() <= cap
    assert got["clay_pct_upper"].max() <= cap
    assert got["total_carbon_pct_lower"].min() >= 0.0
    expected = unclipped_predictions["clay_pct"].clip(upper=cap)
    pd.testing.assert_series_equal(got["clay_pct"], expected, check_exact=False)


def test_predict_clip_overrides_and_removes(clipped_model, unclipped_predictions, tmp_path):
    out = tmp_path / "p.csv"
    argv = ["-q", "predict", "--model", str(clipped_model), "--data", str(GEEVES_SMALL)]
    assert main([*argv, "--clip", "clay_pct=:", "--out", str(out)]) == 0
    pd.testing.assert_series_equal(
        pd.read_csv(out)["clay_pct"], unclipped_predictions["clay_pct"], check_exact=False
    )
    assert main([*argv, "--clip", "clay_pct=:10", "--out", str(out), "--overwrite"]) == 0
    assert pd.read_csv(out)["clay_pct"].max() <= 10.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("clay_pct", r"--clip 'clay_pct': expected TARGET=LOW:HIGH"),
        ("clay_pct=0", r"expected TARGET=LOW:HIGH"),
        ("clay_pct=a:1", r"'a' is not a number"),
        ("clay_pct=:", r"give LOW, HIGH or both"),
        ("clay_pct=5:1", r"'clay_pct' low bound 5 is above its high bound 1"),
        ("sand=0:100", r"--clip: unknown target 'sand'; the model predicts"),
        ("clay_pct=0:inf", r"bounds must be finite numbers"),
    ],
)
def test_bad_clip_exits_2_before_training(tmp_path, capsys, value, message):
    out = tmp_path / "m"
    assert main([*TRAIN, *TARGETS, "--clip", value, "--out", str(out)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()


def test_repeated_target_is_an_error(tmp_path, capsys):
    clip = ["--clip", "clay_pct=0:", "--clip", "clay_pct=:100"]
    assert main([*TRAIN, *TARGETS, *clip, "--out", str(tmp_path / "m")]) == 2
    assert "'clay_pct' is given twice" in capsys.readouterr().err
