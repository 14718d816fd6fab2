"""A saved CNN predicts identically after it is loaded (skops and pickle)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
skops_io = pytest.importorskip("skops.io")

from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from specsoil.train import CNNClassifier, CNNRegressor  # noqa: E402

FAST = {"module": "seed_cnn", "max_epochs": 2, "random_state": 0, "device": "cpu", "num_threads": 1}
# What the lead's loader trusts: no torch type may be needed to load a model.
ALLOWED_PREFIXES = ("specsoil.", "sklearn.", "numpy.", "builtins.")


def _skops_round_trip(obj, path):
    skops_io.dump(obj, path)
    untrusted = skops_io.get_untrusted_types(file=path)
    assert all(name.startswith(ALLOWED_PREFIXES) for name in untrusted), untrusted
    return skops_io.load(path, trusted=untrusted)


@pytest.fixture
def fitted(band_task):
    X, y = band_task
    Y = np.column_stack([y, 2.0 * y])
    Y[::3, 1] = np.nan
    return CNNRegressor(**FAST).fit(X, Y), X


class TestPersistence:
    def test_skops_round_trip(self, fitted, tmp_path):
        model, X = fitted
        loaded = _skops_round_trip(model, tmp_path / "cnn.skops")
        np.testing.assert_allclose(loaded.predict(X), model.predict(X), atol=1e-6)
        assert loaded.module_.config() == model.module_.config()
        assert loaded.history_ == model.history_
        assert loaded.best_epoch_ == model.best_epoch_
        np.testing.assert_array_equal(loaded.target_mean_, model.target_mean_)
        assert loaded.get_params() == model.get_params()
        assert not loaded.module_.training

    def test_skops_pipeline_with_ensemble(self, band_task, tmp_path):
        X, y = band_task
        pipe = make_pipeline(StandardScaler(), CNNRegressor(**FAST, n_ensemble=2)).fit(X, y)
        loaded = _skops_round_trip(pipe, tmp_path / "pipe.skops")
        assert isinstance(loaded[-1].module_, list)
        assert len(loaded[-1].module_) == 2
        np.testing.assert_allclose(loaded.predict(X), pipe.predict(X), atol=1e-6)

    def test_pickle_round_trip(self, fitted):
        model, X = fitted
        loaded = pickle.loads(pickle.dumps(model))
        np.testing.assert_allclose(loaded.predict(X), model.predict(X), atol=1e-6)
        # The original keeps its live torch module: pickling does not strip it.
        assert isinstance(model.module_, torch.nn.Module)

    def test_classifier_round_trip(self, band_task, tmp_path):
        X, y = band_task
        labels = np.where(y > np.median(y), "high", "low")
        model = CNNClassifier(**FAST).fit(X, labels)
        loaded = _skops_round_trip(model, tmp_path / "clf.skops")
        np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)
        np.testing.assert_array_equal(loaded.classes_, model.classes_)

    def test_unfitted_round_trip(self, tmp_path):
        model = CNNRegressor("seed_cnn", augment={"noise": 0.01})
        loaded = _skops_round_trip(model, tmp_path / "unfitted.skops")
        assert loaded.get_params() == model.get_params()
        assert not hasattr(loaded, "module_")


class TestScheduleIsKept:
    def test_skops_keeps_best_epoch_and_schedule(self, band_task, tmp_path):
        X, y = band_task
        model = CNNRegressor(**{**FAST, "max_epochs": 4}, patience=2, refit=True).fit(X, y)
        loaded = _skops_round_trip(model, tmp_path / "m.skops")
        assert loaded.schedule_ == model.schedule_
        assert loaded.best_epoch_ == model.best_epoch_

    def test_model_manifest_records_the_network_training(self, geeves_small, tmp_path):
        import json

        from specsoil.models import SpectralModel

        model = SpectralModel.fit(
            geeves_small,
            ["clay_pct"],
            recipe="seed_cnn",
            params={"max_epochs": 3, "patience": 2, "refit": True},
        )
        final = model.pipeline[-1]
        manifest = json.loads((model.save(tmp_path / "m") / "manifest.json").read_text())
        network = manifest["training"]["network"]
        assert network == {"best_epoch": final.best_epoch_, "schedule": final.schedule_}
        assert network["schedule"]["refit"] is True
