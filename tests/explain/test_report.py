"""The explain output folder and the known soil bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specsoil._errors import SpecsoilError
from specsoil.explain import (
    SOIL_BANDS,
    bands_near,
    explain_model,
    plot_importance,
    write_explanation,
)
from specsoil.models import SpectralModel


@pytest.fixture(scope="module")
def explanation(bands):
    model = SpectralModel.fit(bands, ["clay"], recipe="plsr")
    return explain_model(model, bands, folds=2)


class TestSoilBands:
    def test_the_issue_bands_are_there(self):
        centres = {round(band.centre_nm, -2) for band in SOIL_BANDS}
        assert {1400.0, 1700.0, 1900.0, 2200.0, 2300.0}.issubset(centres)
        assert any(band.contains(2340.0) and "carbonate" in band.label for band in SOIL_BANDS)
        assert any(band.high_nm <= 700.0 for band in SOIL_BANDS)  # the visible
        assert all(band.low_nm < band.centre_nm < band.high_nm for band in SOIL_BANDS)
        assert all(band.reference for band in SOIL_BANDS)

    def test_bands_near(self):
        assert [b.name for b in bands_near(2210.0)] == ["clay_aloh"]
        assert bands_near(1100.0) == []


class TestWriteExplanation:
    def test_writes_table_plot_and_summary(self, explanation, tmp_path):
        out = write_explanation(explanation, tmp_path / "explain", config={"folds": 2})
        frame = pd.read_csv(out / "importance.csv")
        assert list(frame.columns) == [
            "wavelength",
            "target",
            "method",
            "mean",
            "sd",
            "model",
            "fold_1",
            "fold_2",
        ]
        assert set(frame["method"]) == {"vip", "coefficient"}
        vip = frame[frame["method"] == "vip"]
        np.testing.assert_allclose(vip["mean"], vip[["fold_1", "fold_2"]].mean(axis=1))
        assert (out / "importance_clay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        summary = (out / "explain.md").read_text(encoding="utf-8")
        assert "Top regions by `vip`" in summary
        assert "2200 Al-OH clays" in summary.split("## Known soil bands")[0]
        assert "folds: 2" in (out / "config.resolved.yaml").read_text(encoding="utf-8")

    def test_unsafe_target_names_make_safe_file_names(self, bands, tmp_path):
        renamed = bands.metadata.rename(columns={"clay": "clay %/g"})
        table = type(bands)(X=bands.X, wavelengths=bands.wavelengths, metadata=renamed, source="t")
        model = SpectralModel.fit(table, ["clay %/g"], recipe="plsr")
        out = write_explanation(explain_model(model, table, folds=0), tmp_path / "o")
        assert (out / "importance_clay_g.png").is_file()

    def test_unknown_target_in_plot(self, explanation, tmp_path):
        with pytest.raises(SpecsoilError, match="no importance for target 'sand'"):
            plot_importance(explanation, "sand", tmp_path / "x.png")
