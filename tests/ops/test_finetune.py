"""The finetune operation: a new CNN model folder, complete when it appears."""

from __future__ import annotations

import json

import numpy as np
import pytest

from specsoil._atomic import MARKER
from specsoil._errors import SpecsoilError
from specsoil.data import read_spectra
from specsoil.models import SpectralModel
from specsoil.ops import FinetuneRequest, TrainRequest, run_finetune, run_train

from .conftest import GEEVES_SMALL
from .test_train import QUICK_CNN

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory):
    from specsoil.ops import DataSource

    source = DataSource(data=str(GEEVES_SMALL), spectra_kind="reflectance")
    out = tmp_path_factory.mktemp("base") / "cnn"
    request = TrainRequest(
        source=source,
        targets=("clay_pct", "total_carbon_pct"),
        model="cnn1d",
        variants=QUICK_CNN,
        out=str(out),
    )
    return run_train(request).out


class TestRunFinetune:
    def test_saves_a_complete_model_with_a_new_head(self, geeves, cnn_dir, tmp_path):
        request = FinetuneRequest(
            base=str(cnn_dir),
            source=geeves,
            targets=("clay_pct",),
            epochs=2,
            out=str(tmp_path / "tuned"),
        )
        outcome = run_finetune(request)
        assert "new output layer" in outcome.summary
        assert outcome.model.targets == ["clay_pct"]
        marker = json.loads((outcome.out / MARKER).read_text())
        expected = {"training_curves.png", "feature_maps.png", "config.resolved.yaml"}
        assert expected <= set(marker["files"])
        table = read_spectra(GEEVES_SMALL, spectra_kind="reflectance")
        saved = SpectralModel.load(outcome.out)
        np.testing.assert_allclose(saved.predict(table), outcome.model.predict(table), rtol=1e-5)

    def test_without_data_it_says_what_is_missing(self, cnn_dir, tmp_path):
        from specsoil.ops import DataSource

        request = FinetuneRequest(base=str(cnn_dir), source=DataSource(), out=str(tmp_path / "t"))
        with pytest.raises(SpecsoilError, match="say which local spectra"):
            run_finetune(request)
