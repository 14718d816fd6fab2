"""The train operation: a model folder that is complete when it appears."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from specsoil._atomic import MARKER
from specsoil._errors import SpecsoilError
from specsoil.config import ModelConfig
from specsoil.data import read_spectra
from specsoil.models import SpectralModel
from specsoil.ops import OperationCancelled, ProgressUpdate, TrainRequest, run_train

from .conftest import GEEVES_SMALL, run_cli

# A tiny network: 40 nm bands and two epochs keep the CNN run to seconds.
QUICK_CNN = {
    "cnn1d": ModelConfig(
        preprocessing=[{"name": "resample", "step": 40, "method": "mean"}],
        params={"max_epochs": 2, "batch_size": 16, "patience": None},
    )
}


class TestRunTrain:
    def test_saves_a_model_that_predicts_like_the_one_returned(self, geeves, tmp_path):
        updates: list[ProgressUpdate] = []
        request = TrainRequest(source=geeves, targets=("clay_pct",), out=str(tmp_path / "m"))
        outcome = run_train(request, progress=updates.append)
        assert [u.description for u in updates] == ["load", "fit", "save"]
        assert outcome.summary.startswith("trained 'plsr' (plsr) on 60 samples for clay_pct")
        assert "CV+ intervals" in outcome.summary
        names = {p.name for p in outcome.files}
        assert {MARKER, "manifest.json", "config.resolved.yaml"} <= names
        settings = yaml.safe_load((outcome.out / "config.resolved.yaml").read_text())
        assert settings["targets"] == ["clay_pct"]
        assert settings["conformal"] == "cv+"
        table = read_spectra(GEEVES_SMALL, spectra_kind="reflectance")
        loaded = SpectralModel.load(outcome.out)
        np.testing.assert_allclose(loaded.predict(table), outcome.model.predict(table))

    def test_clip_bounds_are_checked_against_the_targets(self, geeves, tmp_path):
        request = TrainRequest(
            source=geeves, targets=("clay_pct",), clip={"sand": (0, 1)}, out=str(tmp_path / "m")
        )
        with pytest.raises(SpecsoilError, match="unknown target 'sand'"):
            run_train(request)
        assert list(tmp_path.iterdir()) == []

    def test_a_cancelled_fit_leaves_no_folder(self, geeves, tmp_path):
        def cancel(update: ProgressUpdate) -> None:
            if update.description == "fit":
                raise OperationCancelled

        request = TrainRequest(source=geeves, targets=("clay_pct",), out=str(tmp_path / "m"))
        with pytest.raises(OperationCancelled):
            run_train(request, progress=cancel)
        assert list(tmp_path.iterdir()) == []

    def test_a_cnn_folder_holds_its_pictures_when_it_appears(self, geeves, tmp_path):
        pytest.importorskip("torch")
        request = TrainRequest(
            source=geeves,
            targets=("clay_pct",),
            model="cnn1d",
            variants=QUICK_CNN,
            out=str(tmp_path / "cnn"),
        )
        outcome = run_train(request)
        pictures = {"training_curves.png", "feature_maps.png", "config.resolved.yaml"}
        assert pictures <= {p.name for p in outcome.files}
        # The marker is written last inside the temporary folder: what it lists was there
        # before the folder was renamed into place.
        marker = json.loads((outcome.out / MARKER).read_text())
        assert pictures <= set(marker["files"])

    def test_the_cli_gives_the_same_numbers(self, geeves, tmp_path):
        request = TrainRequest(source=geeves, targets=("clay_pct",), out=str(tmp_path / "op"))
        outcome = run_train(request)
        argv = ["train", "--data", GEEVES_SMALL, "--spectra-kind", "reflectance"]
        assert run_cli(*argv, "--target", "clay_pct", "--out", tmp_path / "cli") == 0
        table = read_spectra(GEEVES_SMALL, spectra_kind="reflectance")
        from_cli = SpectralModel.load(tmp_path / "cli")
        np.testing.assert_allclose(from_cli.predict(table), outcome.model.predict(table))
        low, high = from_cli.predict_interval(table, 0.9)[1:]
        np.testing.assert_allclose(low, outcome.model.predict_interval(table, 0.9)[1])
        np.testing.assert_allclose(high, outcome.model.predict_interval(table, 0.9)[2])
