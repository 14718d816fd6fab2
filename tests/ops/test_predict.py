"""The predict operation: predictions, intervals and the domain, in a frame and a CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specsoil._errors import SpecsoilError
from specsoil.ops import PredictRequest, run_predict

from .conftest import GEEVES_SMALL, run_cli


class TestRunPredict:
    def test_writes_what_it_returns(self, geeves, plsr_dir, tmp_path):
        request = PredictRequest(
            model=str(plsr_dir), source=geeves, interval=0.9, out=str(tmp_path / "p.csv")
        )
        outcome = run_predict(request)
        assert outcome.files == (outcome.out,)
        frame = outcome.predictions
        assert list(frame.columns) == [
            "sample_id",
            "clay_pct",
            "clay_pct_lower",
            "clay_pct_upper",
            "in_domain",
            "hotelling_t2",
            "q_residual",
        ]
        assert len(frame) == 60
        assert (frame["clay_pct_lower"] <= frame["clay_pct"]).all()
        assert (frame["clay_pct"] <= frame["clay_pct_upper"]).all()
        written = pd.read_csv(outcome.out, dtype={"sample_id": str})
        pd.testing.assert_frame_equal(written, frame, check_dtype=False)
        assert "with 0.9 intervals for 60 spectra with 'plsr'" in outcome.summary
        assert "outside the applicability domain" in outcome.summary

    def test_clip_overrides_bound_the_predictions(self, geeves, plsr_dir, tmp_path):
        request = PredictRequest(
            model=str(plsr_dir),
            source=geeves,
            clip={"clay_pct": (None, 20.0)},
            out=str(tmp_path / "p.csv"),
        )
        outcome = run_predict(request)
        assert outcome.predictions["clay_pct"].max() == 20.0
        assert "clipped to" in outcome.summary

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"interval": 1.5}, "between 0 and 1"),
            ({"clip": {"sand": (0.0, 1.0)}}, "unknown target 'sand'"),
        ],
    )
    def test_bad_requests_write_nothing(self, geeves, plsr_dir, tmp_path, changes, message):
        out = tmp_path / "p.csv"
        request = PredictRequest(model=str(plsr_dir), source=geeves, out=str(out), **changes)
        with pytest.raises(SpecsoilError, match=message):
            run_predict(request)
        assert not out.exists()

    def test_the_cli_gives_the_same_numbers(self, geeves, plsr_dir, tmp_path):
        request = PredictRequest(
            model=str(plsr_dir), source=geeves, interval=0.8, out=str(tmp_path / "op.csv")
        )
        outcome = run_predict(request)
        argv = ["predict", "--model", plsr_dir, "--data", GEEVES_SMALL]
        argv += ["--spectra-kind", "reflectance", "--interval", 0.8]
        assert run_cli(*argv, "--out", tmp_path / "cli.csv") == 0
        from_cli = pd.read_csv(tmp_path / "cli.csv")
        numbers = outcome.predictions.select_dtypes("number").columns
        np.testing.assert_allclose(from_cli[numbers], outcome.predictions[numbers])
