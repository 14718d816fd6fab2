"""write_validation_report: random and spatial CV results written side by side."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from specsoil.evaluate import (
    CVResult,
    cross_validate,
    kfold_splits,
    spatial_block_splits,
    write_validation_report,
)

from ._estimators import MaskedLinearRegression, MaskedMean


@pytest.fixture(scope="module")
def results() -> dict[str, CVResult]:
    rng = np.random.default_rng(0)
    n = 60
    x, y = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    # A property that follows the map: held-out blocks are harder than random held-out rows.
    X = np.column_stack([rng.normal(size=n), x / 1000, rng.normal(size=n)])
    Y = (x / 100 + np.sin(y / 150) * 3 + X[:, 0])[:, None]
    estimators = {"ols": MaskedLinearRegression(), "mean": MaskedMean()}
    plans = {
        "random": kfold_splits(n, n_splits=4),
        "spatial_blocks": spatial_block_splits(x, y, block_size=250.0, n_splits=4),
    }
    return {
        name: cross_validate(estimators, X, Y, target_names=["C (%)"], folds=folds)
        for name, folds in plans.items()
    }


def test_metrics_json_has_a_validation_key_per_row(results, tmp_path) -> None:
    write_validation_report(
        results, tmp_path, config={"seed": 0}, descriptions={"random": "4-fold CV"}
    )
    document = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    keys = [(row["validation"], row["model"]) for row in document["results"]]
    assert keys == [
        ("random", "ols"),
        ("random", "mean"),
        ("spatial_blocks", "ols"),
        ("spatial_blocks", "mean"),
    ]
    assert document["validations"] == {"random": "4-fold CV", "spatial_blocks": ""}
    by_scheme = document["fit_seconds_by_validation"]
    assert set(by_scheme) == {"random", "spatial_blocks"}
    assert document["fit_seconds"]["ols"] == pytest.approx(
        by_scheme["random"]["ols"] + by_scheme["spatial_blocks"]["ols"]
    )
    random_ols = results["random"].metrics.query("model == 'ols'").iloc[0]
    assert document["results"][0]["rmse"] == pytest.approx(random_ols["rmse"])
    assert {row["validation"] for row in document["fold_metrics"]} == {"random", "spatial_blocks"}


def test_predictions_and_plots_per_scheme(results, tmp_path) -> None:
    written = write_validation_report(results, tmp_path, config={})
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert list(predictions.columns) == [
        "validation",
        "sample_id",
        "fold",
        "target",
        "model",
        "observed",
        "predicted",
    ]
    assert predictions.groupby("validation").size().to_dict() == {
        "random": 120,
        "spatial_blocks": 120,
    }
    names = sorted(path.name for path in written)
    assert names == [
        "metrics.json",
        "obs_pred_C.png",
        "obs_pred_C_spatial_blocks.png",
        "predictions.csv",
        "report.md",
    ]


def test_report_puts_random_and_spatial_side_by_side(results, tmp_path) -> None:
    write_validation_report(results, tmp_path, config={"seed": 0})
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    header = (
        "| model | R² random K-fold | R² spatial blocks | RMSE random K-fold | "
        "RMSE spatial blocks | RMSE spatial blocks / random K-fold |"
    )
    assert header in report
    scores = {
        name: result.metrics.set_index("model").loc["ols"] for name, result in results.items()
    }
    ratio = scores["spatial_blocks"]["rmse"] / scores["random"]["rmse"]
    row = next(line for line in report.splitlines() if line.startswith("| ols | "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == f"{scores['random']['r2']:.3f}"
    assert cells[2] == f"{scores['spatial_blocks']['r2']:.3f}"
    assert cells[-1] == f"{ratio:.2f}"
    assert "![Observed vs predicted C (%), spatial blocks](obs_pred_C_spatial_blocks.png)" in report


def test_bad_scheme_names_are_refused(results, tmp_path) -> None:
    with pytest.raises(ValueError, match="plain words"):
        write_validation_report({"a/b": results["random"]}, tmp_path, config={})
    with pytest.raises(ValueError, match="results is empty"):
        write_validation_report({}, tmp_path, config={})
