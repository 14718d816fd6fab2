"""The explain operation: importance curves and their report folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specsoil._errors import SpecsoilError
from specsoil.ops import ExplainRequest, run_explain

from .conftest import GEEVES_SMALL, run_cli


class TestRunExplain:
    def test_returns_the_curves_and_writes_the_report(self, geeves, plsr_dir, tmp_path):
        request = ExplainRequest(
            model=str(plsr_dir), source=geeves, folds=2, out=str(tmp_path / "why")
        )
        outcome = run_explain(request)
        names = {p.name for p in outcome.files}
        assert {"importance.csv", "explain.md", "importance_clay_pct.png"} <= names
        assert outcome.model_name == "plsr"
        curves = {f"{c.target} ({c.method})" for c in outcome.explanation.curves}
        assert set(outcome.peaks_nm) == curves
        low, high = outcome.explanation.wavelengths[[0, -1]]
        for peaks in outcome.peaks_nm.values():
            assert 0 < len(peaks) <= 3
            assert all(low <= peak <= high for peak in peaks)

    def test_one_fold_is_refused_before_any_work(self, geeves, plsr_dir, tmp_path):
        request = ExplainRequest(
            model=str(plsr_dir), source=geeves, folds=1, out=str(tmp_path / "why")
        )
        with pytest.raises(SpecsoilError, match="at least 2"):
            run_explain(request)
        assert list(tmp_path.iterdir()) == []

    def test_the_cli_gives_the_same_numbers(self, geeves, plsr_dir, tmp_path):
        request = ExplainRequest(
            model=str(plsr_dir), source=geeves, folds=2, out=str(tmp_path / "op")
        )
        outcome = run_explain(request)
        argv = ["explain", "--model", plsr_dir, "--data", GEEVES_SMALL, "--spectra-kind"]
        argv += ["reflectance", "--folds", 2, "--out", tmp_path / "cli"]
        assert run_cli(*argv) == 0
        from_op = pd.read_csv(outcome.out / "importance.csv")
        from_cli = pd.read_csv(tmp_path / "cli" / "importance.csv")
        np.testing.assert_allclose(from_cli["mean"], from_op["mean"])
        curve = outcome.explanation.curves[0]
        rows = from_cli[(from_cli["target"] == curve.target) & (from_cli["method"] == curve.method)]
        np.testing.assert_allclose(rows["mean"], curve.mean)
