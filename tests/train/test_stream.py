"""Training from a stream of batches (CNNRegressor.fit_stream)."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from sklearn.metrics import r2_score

torch = pytest.importorskip("torch")
skops_io = pytest.importorskip("skops.io")

from specsoil.train import CNNRegressor  # noqa: E402

FAST = {
    "module": "seed_cnn",
    "batch_size": 16,
    "random_state": 0,
    "device": "cpu",
    "num_threads": 1,
}


class Batches:
    """In-memory data served like row groups: shuffled per epoch, one batch at a time."""

    def __init__(self, X, Y, batch_size=16):
        self.X = X[:, None, :]  # (N, 1, L): network-shaped
        self.Y = Y.reshape(len(X), -1)  # (N, k)
        self.batch_size = batch_size
        self.epochs: list[int] = []

    def __call__(self, epoch):
        self.epochs.append(epoch)
        order = np.random.default_rng(epoch).permutation(len(self.X))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            yield self.X[rows], self.Y[rows]

    def stats(self):
        return np.nanmean(self.Y, axis=0), np.nanstd(self.Y, axis=0)


def _fit_stream(model, batches, **kwargs):
    mean, scale = batches.stats()
    return model.fit_stream(
        batches, input_shape=(1, batches.X.shape[2]), target_mean=mean, target_scale=scale, **kwargs
    )


class TestLearning:
    def test_reaches_the_fit_of_in_memory_data(self, band_task):
        X, y = band_task
        batches = Batches(X, y)
        streamed = _fit_stream(CNNRegressor(**FAST, max_epochs=15), batches)
        in_memory = CNNRegressor(**FAST, max_epochs=15, val_fraction=0.0).fit(X, y)
        r2_stream = r2_score(y, streamed.predict(X)[:, 0])
        r2_fit = r2_score(y, in_memory.predict(X))
        assert r2_stream > 0.95
        assert abs(r2_stream - r2_fit) < 0.05
        history = streamed.history_
        assert history["train_loss"][-1] < 0.2 * history["train_loss"][0]

    def test_called_once_per_epoch_in_order(self, band_task):
        X, y = band_task
        batches = Batches(X, y)
        model = _fit_stream(CNNRegressor(**FAST, max_epochs=4), batches)
        assert batches.epochs == [0, 1, 2, 3]
        assert len(model.history_["train_loss"]) == 4
        assert model.history_["val_loss"] == []
        assert model.best_epoch_ == 4

    def test_early_stopping_on_validation_batches(self, band_task):
        X, _ = band_task
        y = np.random.default_rng(0).normal(size=len(X))  # noise: validation loss rises
        batches = Batches(X[:64], y[:64])
        val_calls = []

        def val_batches():
            val_calls.append(1)
            yield X[64:, None, :], y[64:, None]

        model = _fit_stream(
            CNNRegressor(**FAST, lr=1e-2, lr_schedule="none", max_epochs=60, patience=3),
            batches,
            val_batches=val_batches,
        )
        val = model.history_["val_loss"]
        assert len(val) < 60, "early stopping did not fire"
        assert batches.epochs == list(range(len(val)))
        assert len(val_calls) == len(val)
        assert model.best_epoch_ == int(np.argmin(val)) + 1
        # The best epoch's weights were restored.
        pred = (model.predict(X[64:])[:, 0] - model.target_mean_[0]) / model.target_scale_[0]
        target = (y[64:] - model.target_mean_[0]) / model.target_scale_[0]
        assert np.mean((pred - target) ** 2) == pytest.approx(min(val), rel=1e-4)

    def test_ensemble_members_each_see_every_epoch(self, band_task):
        X, y = band_task
        batches = Batches(X, y)
        model = _fit_stream(CNNRegressor(**FAST, max_epochs=2, n_ensemble=2), batches)
        assert batches.epochs == [0, 1, 0, 1]
        assert len(model.module_) == 2
        assert [v.size for v in model.validation_indices_] == [0, 0]

    @pytest.mark.parametrize("schedule", ["onecycle", "cosine", "plateau", "none"])
    def test_schedules(self, band_task, schedule):
        X, y = band_task
        model = _fit_stream(CNNRegressor(**FAST, max_epochs=3, lr_schedule=schedule), Batches(X, y))
        assert np.isfinite(model.history_["train_loss"]).all()

    def test_augmentation_and_missing_targets(self, band_task):
        X, y = band_task
        Y = np.column_stack([y, 2.0 * y])
        Y[::3, 1] = np.nan
        plain = _fit_stream(CNNRegressor(**FAST, max_epochs=2), Batches(X, Y))
        augmented = _fit_stream(
            CNNRegressor(**FAST, max_epochs=2, augment={"noise": 0.01, "offset": 0.05}),
            Batches(X, Y),
        )
        assert np.isfinite(plain.history_["train_loss"]).all()
        assert not np.allclose(plain.predict(X), augmented.predict(X))


class TestMemory:
    def test_batches_are_not_kept(self, band_task, monkeypatch):
        from specsoil.train._module import SpectralLightningModule

        X, y = band_task
        made: list[weakref.ref] = []  # the caller's arrays
        seen: list[weakref.ref] = []  # the tensors that reach the training step
        most_made = most_seen = 0
        real_step = SpectralLightningModule.training_step

        def spy_step(self, batch, batch_idx):
            nonlocal most_seen
            seen.append(weakref.ref(batch[0]))
            most_seen = max(most_seen, sum(r() is not None for r in seen))
            return real_step(self, batch, batch_idx)

        monkeypatch.setattr(SpectralLightningModule, "training_step", spy_step)

        def train_batches(epoch):
            nonlocal most_made
            for start in range(0, len(X), 4):  # 24 batches per epoch
                x = X[start : start + 4, None, :].copy()
                made.append(weakref.ref(x))
                most_made = max(most_made, sum(r() is not None for r in made))
                yield x, y[start : start + 4, None]

        CNNRegressor(**FAST, max_epochs=2).fit_stream(
            train_batches,
            input_shape=(1, X.shape[1]),
            target_mean=np.array([y.mean()]),
            target_scale=np.array([y.std()]),
        )
        assert len(seen) == 48
        # Only the batch in flight and the one prefetched (and the one being made).
        assert most_made <= 3
        assert most_seen <= 3


class TestFittedModel:
    def test_is_like_a_fitted_model(self, band_task, tmp_path):
        X, y = band_task
        model = _fit_stream(CNNRegressor(**FAST, max_epochs=2), Batches(X, y))
        assert model.n_features_in_ == X.shape[1]
        assert model.input_shape_ == (1, X.shape[1])
        assert model.predict(X).shape == (len(X), 1)  # fitted on 2-D Y
        path = tmp_path / "stream.skops"
        skops_io.dump(model, path)
        loaded = skops_io.load(path, trusted=skops_io.get_untrusted_types(file=path))
        np.testing.assert_allclose(loaded.predict(X), model.predict(X), atol=1e-6)
        assert loaded.get_params() == model.get_params()
        with pytest.raises(ValueError, match="features"):
            model.predict(X[:, :40])

    def test_multichannel_input(self, band_task):
        X, y = band_task
        X3 = np.stack([X, X**2], axis=1)  # (N, 2, L)

        def train_batches(epoch):
            for start in range(0, len(X), 16):
                yield X3[start : start + 16], y[start : start + 16, None]

        model = CNNRegressor(**FAST, max_epochs=1).fit_stream(
            train_batches,
            input_shape=(2, X.shape[1]),
            target_mean=np.array([y.mean()]),
            target_scale=np.array([y.std()]),
        )
        assert model.predict(X3).shape == (len(X), 1)

    def test_spectrogram_input(self, band_task):
        X, y = band_task
        X4 = X.reshape(len(X), 1, 6, 8)  # (N, 1, F, T)

        def train_batches(epoch):
            for start in range(0, len(X), 16):
                yield X4[start : start + 16], y[start : start + 16, None]

        model = CNNRegressor(**{**FAST, "module": "lenet5_2d"}, max_epochs=1).fit_stream(
            train_batches,
            input_shape=(1, 6, 8),
            target_mean=np.array([y.mean()]),
            target_scale=np.array([y.std()]),
        )
        assert model.predict(X4).shape == (len(X), 1)
        with pytest.raises(ValueError, match="per-sample shape"):
            model.predict(X.reshape(len(X), 1, 8, 6))

    def test_same_seed_same_model(self, band_task):
        X, y = band_task
        runs = [_fit_stream(CNNRegressor(**FAST, max_epochs=2), Batches(X, y)) for _ in range(2)]
        np.testing.assert_array_equal(runs[0].predict(X), runs[1].predict(X))


class TestCheckpoints:
    def test_resume_continues_at_the_next_epoch(self, band_task, tmp_path):
        X, y = band_task
        params = {**FAST, "lr_schedule": "none", "checkpoint_dir": tmp_path}
        first = _fit_stream(CNNRegressor(**params, max_epochs=3), Batches(X, y))
        assert (tmp_path / "last.ckpt").is_file()
        batches = Batches(X, y)
        resumed = _fit_stream(CNNRegressor(**params, max_epochs=5, resume=True), batches)
        assert batches.epochs == [3, 4]
        assert resumed.history_["train_loss"][:3] == first.history_["train_loss"]
        assert len(resumed.history_["train_loss"]) == 5


class TestErrors:
    def test_ddp_is_refused(self, band_task):
        X, y = band_task
        model = CNNRegressor(**FAST, strategy="ddp_spawn", devices=2)
        with pytest.raises(ValueError, match="fit_stream trains in one process"):
            _fit_stream(model, Batches(X, y))

    def test_bad_batch_names_the_epoch_and_batch(self, band_task):
        X, y = band_task

        def train_batches(epoch):
            yield X[:16, None, :], y[:16, None]
            yield X[16:32, None, :40], y[16:32, None]

        with pytest.raises(ValueError, match=r"train_batches\(epoch=0\) batch 1: X must have"):
            CNNRegressor(**FAST, max_epochs=1).fit_stream(
                train_batches,
                input_shape=(1, 48),
                target_mean=np.array([0.0]),
                target_scale=np.array([1.0]),
            )

    def test_an_epoch_without_batches(self, band_task):
        X, y = band_task

        def train_batches(epoch):
            if epoch == 0:
                yield X[:16, None, :], y[:16, None]
            yield X[16:17, None, :], y[16:17, None]  # one sample: skipped

        with pytest.raises(ValueError, match=r"train_batches\(epoch=1\) yielded no batches"):
            CNNRegressor(**FAST, max_epochs=2).fit_stream(
                train_batches,
                input_shape=(1, 48),
                target_mean=np.array([0.0]),
                target_scale=np.array([1.0]),
            )

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"input_shape": (48,)}, "input_shape must be"),
            ({"input_shape": (2, 8, 6)}, "input_shape must be"),
            ({"target_scale": np.array([0.0])}, "target_scale finite and > 0"),
            ({"target_mean": np.array([0.0, 1.0])}, "same length"),
        ],
    )
    def test_bad_arguments(self, band_task, kwargs, match):
        X, y = band_task
        arguments = {
            "input_shape": (1, 48),
            "target_mean": np.array([y.mean()]),
            "target_scale": np.array([y.std()]),
            **kwargs,
        }
        with pytest.raises(ValueError, match=match):
            CNNRegressor(**FAST, max_epochs=1).fit_stream(Batches(X, y), **arguments)
