"""Tests of the training-curve picture."""

from __future__ import annotations

import math

import matplotlib.image
import pytest

from specsoil._errors import SpecsoilError
from specsoil.train import plot_training_curves

HISTORY = {
    "epoch": [1, 2, 3, 4, 5],
    "train_loss": [1.0, 0.6, 0.4, 0.3, 0.25],
    "val_loss": [1.1, 0.7, 0.5, 0.55, 0.6],
}


def _png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path)


class TestPlotTrainingCurves:
    def test_writes_png(self, tmp_path):
        path = plot_training_curves(HISTORY, tmp_path / "out" / "curves.png", title="cnn1d")
        assert path == tmp_path / "out" / "curves.png"
        image = _png(path)
        assert image.shape[0] == 400
        assert image.shape[1] == 640
        assert [p.name for p in path.parent.iterdir()] == ["curves.png"]  # no temp file left

    def test_marks_the_kept_epoch(self, tmp_path, monkeypatch):
        from matplotlib.axes import Axes

        marked = []
        real = Axes.axvline

        def spy(self, x=0, *args, **kwargs):
            marked.append(x)
            return real(self, x, *args, **kwargs)

        monkeypatch.setattr(Axes, "axvline", spy)
        plot_training_curves(HISTORY, tmp_path / "a.png")
        plot_training_curves(HISTORY, tmp_path / "b.png", best_epoch=4)
        assert marked == [3, 4]  # argmin of val_loss (1-based), then the one given

    def test_training_only_and_ensemble(self, tmp_path):
        _png(plot_training_curves({"train_loss": [2.0, 1.0], "val_loss": []}, tmp_path / "t.png"))
        _png(plot_training_curves([HISTORY, HISTORY], tmp_path / "e.png", best_epoch=[3, 2]))

    def test_non_finite_and_non_positive_losses(self, tmp_path):
        history = {"train_loss": [0.5, -0.1, math.nan], "val_loss": [math.inf, 0.2, 0.3]}
        _png(plot_training_curves(history, tmp_path / "odd.png"))

    @pytest.mark.parametrize(
        ("history", "match"),
        [
            ({"train_loss": [], "val_loss": []}, "holds no losses"),
            ({"train_loss": "abc"}, "must be a list"),
            ({"train_loss": [1.0, "x"]}, "must hold numbers"),
            ([], "history must be a dict"),
        ],
    )
    def test_bad_history(self, tmp_path, history, match):
        with pytest.raises(SpecsoilError, match=match):
            plot_training_curves(history, tmp_path / "bad.png")

    def test_best_epoch_count_must_match(self, tmp_path):
        with pytest.raises(SpecsoilError, match="best_epoch has 1 entries for 2"):
            plot_training_curves([HISTORY, HISTORY], tmp_path / "x.png", best_epoch=[1])
