import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from specsoil.evaluate import cross_validate, kfold_splits, plot_observed_vs_predicted, write_report
from specsoil.evaluate._report import _safe_names

from ._estimators import MaskedLinearRegression, MaskedMean

RESULT_KEYS = ["model", "target", "n", "r2", "rmse", "bias", "rpd", "rpiq", "ccc"]


@pytest.fixture(scope="module")
def result():
    rng = np.random.default_rng(0)
    n = 40
    X = rng.normal(size=(n, 3))
    Y = np.column_stack([X @ np.array([1.0, 2.0, -1.0]), np.full(n, np.nan)])
    Y[0, 1] = 2.5  # a single observed value: that target's metrics are undefined (NaN)
    return cross_validate(
        {"ols": MaskedLinearRegression(), "mean": MaskedMean()},
        X,
        Y,
        target_names=["C (%)", "clay/silt"],
        folds=kfold_splits(n, n_splits=4),
    )


class TestWriteReport:
    def test_files(self, result, tmp_path):
        out = tmp_path / "run" / "report"
        written = write_report(result, out, config={"folds": 4, "seed": 0})
        names = [p.name for p in written]
        assert names == [
            "metrics.json", "predictions.csv", "obs_pred_C.png", "obs_pred_clay_silt.png",
            "report.md",
        ]  # fmt: skip
        assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary leftovers

    def test_metrics_json_schema(self, result, tmp_path):
        config = {"targets": ["C (%)"], "path": tmp_path, "alpha": np.float64(0.5), "x": math.nan}
        write_report(result, tmp_path, config=config)
        text = (tmp_path / "metrics.json").read_text(encoding="utf-8")

        def no_constants(name):
            raise AssertionError(f"bare {name} in JSON")

        document = json.loads(text, parse_constant=no_constants)
        assert {"results", "config"} <= set(document)
        assert len(document["results"]) == 4
        for entry in document["results"]:
            assert list(entry) == RESULT_KEYS
            assert isinstance(entry["n"], int)
        undefined = [e for e in document["results"] if e["target"] == "clay/silt"]
        assert all(e["r2"] is None and e["n"] == 1 for e in undefined)
        ols = next(e for e in document["results"] if (e["model"], e["target"]) == ("ols", "C (%)"))
        expected = result.metrics.iloc[0]
        assert ols["rmse"] == pytest.approx(expected["rmse"])
        assert document["config"] == {
            "targets": ["C (%)"], "path": str(tmp_path), "alpha": 0.5, "x": None
        }  # fmt: skip
        assert set(document["fit_seconds"]) == {"ols", "mean"}
        assert len(document["fold_metrics"]) == len(result.fold_metrics)

    def test_predictions_csv(self, result, tmp_path):
        write_report(result, tmp_path, config={})
        table = pd.read_csv(tmp_path / "predictions.csv", dtype={"sample_id": str, "fold": str})
        assert list(table.columns) == [
            "sample_id", "fold", "target", "model", "observed", "predicted"
        ]  # fmt: skip
        assert len(table) == len(result.predictions)
        np.testing.assert_allclose(table["predicted"], result.predictions["predicted"])

    def test_plots_are_png_images(self, result, tmp_path):
        write_report(result, tmp_path, config={})
        for name in ("obs_pred_C.png", "obs_pred_clay_silt.png"):
            path = tmp_path / name
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            image = imread(path)
            assert image.ndim == 3
            assert image.shape[0] > 100
            assert image.std() > 0  # not a blank canvas

    def test_markdown_summary(self, result, tmp_path):
        write_report(result, tmp_path, config={"seed": 0})
        text = (tmp_path / "report.md").read_text(encoding="utf-8")
        assert "## C (%)" in text
        assert "## clay/silt" in text
        assert "![Observed vs predicted C (%)](obs_pred_C.png)" in text
        ols = result.metrics.iloc[0]
        assert f"| ols | {int(ols['n'])} | {ols['r2']:.3f} |" in text
        assert "| mean | 1 | n/a |" in text

    def test_overwrites_previous_run(self, result, tmp_path):
        (tmp_path / "metrics.json").write_text("stale", encoding="utf-8")
        write_report(result, tmp_path, config={})
        assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))["results"]


class TestPlot:
    def test_one_panel_per_model_and_no_pyplot_state(self, result, tmp_path):
        before = (
            sys.modules["matplotlib.pyplot"].get_fignums()
            if "matplotlib.pyplot" in sys.modules
            else []
        )
        one = plot_observed_vs_predicted(
            result.predictions,
            result.metrics[result.metrics["model"] == "ols"],
            "C (%)",
            tmp_path / "one.png",
        )
        two = plot_observed_vs_predicted(
            result.predictions, result.metrics, "C (%)", tmp_path / "two.png"
        )
        # Two panels side by side make a wider image than one.
        assert imread(two).shape[1] > 1.5 * imread(one).shape[1]
        after = (
            sys.modules["matplotlib.pyplot"].get_fignums()
            if "matplotlib.pyplot" in sys.modules
            else []
        )
        assert before == after

    def test_unknown_target(self, result, tmp_path):
        with pytest.raises(ValueError, match="no metrics for target 'pH'"):
            plot_observed_vs_predicted(result.predictions, result.metrics, "pH", tmp_path / "x.png")


class TestSafeNames:
    def test_sanitised_and_unique(self):
        stems = _safe_names(["C (%)", "C/%", "c", "..", "N_total_g_kg"])
        assert stems == {
            "C (%)": "C", "C/%": "C_2", "c": "c_3", "..": "target", "N_total_g_kg": "N_total_g_kg"
        }  # fmt: skip


@pytest.fixture(scope="module")
def chosen():
    """Cross-validation of a chain-choosing model and a stack on 48 rows."""
    from specsoil.models import ChainSelectCV, StackedRegressor

    rng = np.random.default_rng(1)
    n = 48
    X = rng.normal(size=(n, 12)) + 5.0
    Y = np.column_stack([X[:, 2] - X[:, 7], X[:, 4]])
    chains = {"absorbance": [], "snv": [{"name": "snv"}]}
    stack = StackedRegressor([("ols", MaskedLinearRegression()), ("mean", MaskedMean())], cv=3)
    return cross_validate(
        {"chosen": ChainSelectCV(MaskedLinearRegression(), chains=chains, cv=3), "stack": stack},
        X,
        Y,
        target_names=["a", "b"],
        folds=kfold_splits(n, n_splits=3),
    )


class TestFitChoices:
    """Chains and stack weights chosen in each fold's training rows reach the report."""

    def test_every_fold_records_its_choices(self, chosen):
        assert set(chosen.fit_details) == {"chosen", "stack"}
        assert len(chosen.fit_details["chosen"]) == 3
        for fold in chosen.fit_details["chosen"].values():
            assert fold["chain"][1] == "absorbance"  # b is one raw band: SNV only blurs it
        for fold in chosen.fit_details["stack"].values():
            assert fold["weights"]["ols"][0] > 0.9

    def test_metrics_json_and_report_show_chains_and_weights(self, chosen, tmp_path):
        write_report(chosen, tmp_path, config={})
        document = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
        fold = next(iter(document["fit_details"]["chosen"].values()))
        assert fold["chain"]["b"] == "absorbance"
        weights = next(iter(document["fit_details"]["stack"].values()))["weights"]
        assert set(weights) == {"ols", "mean"}
        assert set(weights["ols"]) == {"a", "b"}
        report = (tmp_path / "report.md").read_text(encoding="utf-8")
        assert "## Preprocessing chosen in the training folds" in report
        assert "| chosen |" in report
        assert "absorbance: 3" in report
        assert "## Stack weights: stack" in report
        assert "| a | " in report
