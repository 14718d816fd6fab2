"""Tests of the CNN estimators: learning, masking, early stopping, configs, checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import KFold

torch = pytest.importorskip("torch")

from specsoil._errors import SpecsoilError  # noqa: E402
from specsoil.train import (  # noqa: E402
    CNNClassifier,
    CNNRegressor,
    _estimator,
)

# Small and fast: the tests check the engine, not the network.
FAST = {
    "module": "seed_cnn",
    "batch_size": 16,
    "random_state": 0,
    "device": "cpu",
    "num_threads": 1,  # tiny nets: extra threads only add contention on a shared CPU
}


def _standardised_loss(model, X, Y):
    """Masked MSE of a fitted model's outputs on standardised targets, recomputed in numpy."""
    pred = (model.predict(X).reshape(len(X), -1) - model.target_mean_) / model.target_scale_
    target = (Y.reshape(len(X), -1) - model.target_mean_) / model.target_scale_
    present = np.isfinite(target)
    return float(((pred - target)[present] ** 2).mean())


class TestLearning:
    def test_loss_halves_on_a_learnable_task(self, band_task):
        X, y = band_task
        model = CNNRegressor(
            **FAST, lr=3e-3, max_epochs=8, val_fraction=0.0, lr_schedule="none"
        ).fit(X, y)
        losses = model.history_["train_loss"]
        assert len(losses) == 8
        assert losses[-1] <= 0.5 * losses[0]
        # In original units the fit is better than predicting the mean.
        assert np.mean((model.predict(X) - y) ** 2) < 0.5 * np.var(y)

    def test_predictions_are_in_original_units(self, band_task):
        X, y = band_task
        model = CNNRegressor(**FAST, max_epochs=3, val_fraction=0.0).fit(X, y * 1000.0 + 5e4)
        np.testing.assert_allclose(model.target_mean_, [y.mean() * 1000.0 + 5e4])
        np.testing.assert_allclose(model.target_scale_, [y.std() * 1000.0])
        pred = model.predict(X)
        assert pred.shape == (len(X),)
        assert abs(pred.mean() - (y.mean() * 1000.0 + 5e4)) < 3 * y.std() * 1000.0

    def test_unstandardised_targets(self, band_task):
        X, y = band_task
        model = CNNRegressor(**FAST, max_epochs=1, standardize_targets=False).fit(X, y)
        np.testing.assert_array_equal(model.target_mean_, [0.0])
        np.testing.assert_array_equal(model.target_scale_, [1.0])

    def test_multi_task_shapes(self, band_task):
        X, y = band_task
        Y = np.column_stack([y, -2 * y, y**2])
        model = CNNRegressor(**FAST, max_epochs=2).fit(X, Y)
        assert model.predict(X).shape == (len(X), 3)
        assert model.module_.config()["n_outputs"] == 3

    def test_same_seed_same_model_and_global_rng_untouched(self, band_task):
        X, y = band_task
        state = np.random.get_state()[1].copy()  # noqa: NPY002 - the global state is the subject
        torch_state = torch.random.get_rng_state().clone()
        a = CNNRegressor(**FAST, max_epochs=2).fit(X, y).predict(X)
        b = CNNRegressor(**FAST, max_epochs=2).fit(X, y).predict(X)
        c = CNNRegressor(**{**FAST, "random_state": 1}, max_epochs=2).fit(X, y).predict(X)
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)
        np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002
        assert torch.equal(torch.random.get_rng_state(), torch_state)

    def test_multichannel_input(self, band_task):
        X, y = band_task
        X3 = np.stack([X, np.gradient(X, axis=1)], axis=1)  # (N, 2, L)
        model = CNNRegressor(**FAST, max_epochs=1).fit(X3, y)
        assert model.input_shape_ == (2, X.shape[1])
        assert model.predict(X3).shape == (len(X),)
        with pytest.raises(ValueError, match="per-sample shape"):
            model.predict(X3[:, :1])

    def test_spectrogram_input(self, band_task):
        X, y = band_task
        X4 = X.reshape(len(X), 1, 6, 8)  # (N, 1, F, T) as a Spectrogram transformer gives
        model = CNNRegressor(**{**FAST, "module": "lenet5_2d"}, max_epochs=1).fit(X4, y)
        assert model.input_shape_ == (1, 6, 8)
        assert model.predict(X4).shape == (len(X),)
        with pytest.raises(ValueError, match=r"per-sample shape \(1, 8, 6\)"):
            model.predict(X.reshape(len(X), 1, 8, 6))

    def test_predict_rejects_other_band_count(self, band_task):
        X, y = band_task
        model = CNNRegressor(**FAST, max_epochs=1).fit(X, y)
        with pytest.raises(ValueError, match="features"):
            model.predict(X[:, :-2])

    def test_predict_is_batched_and_deterministic(self, band_task, monkeypatch):
        X, y = band_task
        model = CNNRegressor(**FAST, max_epochs=1, augment={"noise": 0.5}).fit(X, y)
        full = model.predict(X)
        monkeypatch.setattr(_estimator, "_MIN_PREDICT_BATCH", 7)
        model.set_params(batch_size=1)
        np.testing.assert_allclose(model.predict(X), full, rtol=1e-5, atol=1e-6)
        assert not model.module_.training  # eval mode: no dropout, BatchNorm frozen


class TestMissingTargets:
    def test_fit_with_half_missing_column(self, band_task):
        X, y = band_task
        Y = np.column_stack([y, 3.0 * y + 1.0])
        Y[::2, 1] = np.nan
        model = CNNRegressor(**FAST, max_epochs=4, lr=3e-3).fit(X, Y)
        np.testing.assert_allclose(model.target_mean_, np.nanmean(Y, axis=0))
        np.testing.assert_allclose(model.target_scale_, np.nanstd(Y, axis=0))
        assert np.isfinite(model.history_["train_loss"]).all()
        assert np.isfinite(model.history_["val_loss"]).all()
        pred = model.predict(X)
        assert pred.shape == Y.shape
        assert np.isfinite(pred).all()

    def test_missing_entries_do_not_influence_training(self, band_task):
        X, y = band_task
        Y = np.column_stack([y, 3.0 * y + 1.0])
        Y[::2, 1] = np.nan
        params = {**FAST, "max_epochs": 2, "standardize_targets": False, "val_fraction": 0.0}
        a = CNNRegressor(**params).fit(X, Y).predict(X)
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(CNNRegressor(**params).fit(X, Y).predict(X), a)
        # Values present where the NaN were (large, so they would dominate) change the fit.
        Y_present = Y.copy()
        Y_present[::2, 1] = 1e3
        assert not np.allclose(CNNRegressor(**params).fit(X, Y_present).predict(X), a)

    def test_target_without_any_value(self, band_task):
        X, y = band_task
        Y = np.column_stack([y, np.full_like(y, np.nan)])
        with pytest.raises(ValueError, match="target column 1 of y has no finite value"):
            CNNRegressor(**FAST, max_epochs=1).fit(X, Y)


class TestEarlyStopping:
    def test_validation_rows_come_from_the_training_data_only(self, band_task, monkeypatch):
        X, y = band_task
        seen = []
        real = _estimator.make_loader

        def spy(X_part, Y_part, **kwargs):
            seen.append((X_part.copy(), kwargs["shuffle"]))
            return real(X_part, Y_part, **kwargs)

        monkeypatch.setattr(_estimator, "make_loader", spy)
        train, test = next(KFold(4, shuffle=True, random_state=0).split(X))
        model = CNNRegressor(**FAST, max_epochs=1, val_fraction=0.25).fit(X[train], y[train])
        val_rows = model.validation_indices_
        assert len(val_rows) == round(0.25 * len(train))
        assert val_rows.min() >= 0
        assert val_rows.max() < len(train)
        (train_x, train_shuffled), (val_x, val_shuffled) = seen
        assert train_shuffled
        assert not val_shuffled
        X_fit = X[train]
        np.testing.assert_array_equal(val_x[:, 0], X_fit[val_rows])
        others = np.setdiff1d(np.arange(len(train)), val_rows)
        np.testing.assert_array_equal(train_x[:, 0], X_fit[others])
        # No row of the outer test fold is used for training or early stopping.
        used = np.concatenate([train_x[:, 0], val_x[:, 0]])
        assert not (used[:, None, :] == X[test][None, :, :]).all(axis=2).any()

    def test_stops_and_restores_the_best_epoch(self, band_task):
        X, _ = band_task
        # Pure-noise targets: the validation loss is lowest early and then rises as the
        # network memorises its training rows, so early stopping must fire.
        y = np.random.default_rng(0).normal(size=len(X))
        model = CNNRegressor(
            **FAST, lr=1e-2, lr_schedule="none", max_epochs=60, patience=3, val_fraction=0.3
        ).fit(X, y)
        val = model.history_["val_loss"]
        assert len(val) < 60, "early stopping did not fire"
        assert model.best_epoch_ == int(np.argmin(val)) + 1
        assert len(val) == model.best_epoch_ + 3
        rows = model.validation_indices_
        # The kept weights reproduce the best epoch's validation loss, not the last one's.
        assert _standardised_loss(model, X[rows], y[rows]) == pytest.approx(min(val), rel=1e-4)
        assert min(val) < val[-1]

    def test_without_validation_trains_all_epochs(self, band_task):
        X, y = band_task
        model = CNNRegressor(**FAST, max_epochs=3, val_fraction=0.0, patience=1).fit(X, y)
        assert model.history_["val_loss"] == []
        assert model.best_epoch_ == 3
        assert model.validation_indices_.size == 0

    @pytest.mark.parametrize("schedule", ["onecycle", "cosine", "plateau", "none"])
    def test_schedules(self, band_task, schedule):
        X, y = band_task
        model = CNNRegressor(**FAST, max_epochs=2, lr_schedule=schedule).fit(X, y)
        assert len(model.history_["train_loss"]) == 2


class TestConfigErrors:
    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"module": "no_such_net"}, "unknown module 'no_such_net'; available"),
            ({"module": 3}, "module must be a registered network name"),
            ({"lr": 0.0}, "lr must be a finite number > 0"),
            ({"lr": -1e-3}, "lr must be a finite number > 0"),
            ({"lr": "fast"}, "lr must be a finite number > 0"),
            ({"weight_decay": -1.0}, "weight_decay must be a finite number >= 0"),
            ({"max_epochs": 0}, "max_epochs must be an int >= 1"),
            ({"batch_size": 2.5}, "batch_size must be an int >= 1"),
            ({"patience": 0}, "patience must be an int >= 1 or None"),
            ({"val_fraction": 1.0}, r"val_fraction must be a number in \[0, 1\)"),
            ({"val_fraction": -0.1}, r"val_fraction must be a number in \[0, 1\)"),
            ({"lr_schedule": "step"}, "lr_schedule must be one of"),
            ({"augment": {"warp": 0.1}}, "augment has unknown key 'warp'"),
            ({"augment": {"noise": -1}}, r"augment\['noise'\] must be a finite number >= 0"),
            ({"n_ensemble": 0}, "n_ensemble must be an int >= 1"),
            ({"device": "tpu"}, "device must be one of"),
            ({"precision": "8-bit"}, "precision must be one of"),
            ({"resume": True}, "resume=True needs checkpoint_dir"),
            ({"strategy": "horovod"}, "strategy must be one of"),
            ({"devices": 0}, "devices must be 'auto'"),
            ({"num_nodes": 0}, "num_nodes must be an int >= 1"),
            ({"num_threads": 0}, "num_threads must be an int >= 1 or None"),
            ({"module_params": {"n_outputs": 3}}, r"module_params must not set \['n_outputs'\]"),
            ({"module_params": [1]}, "module_params must be None or a dict"),
            ({"standardize_targets": "yes"}, "standardize_targets must be True or False"),
        ],
    )
    def test_bad_parameter_at_fit(self, band_task, params, match):
        X, y = band_task
        model = CNNRegressor(**{**FAST, "max_epochs": 1, **params})  # construction never fails
        with pytest.raises(ValueError, match=match):
            model.fit(X, y)

    def test_augment_needs_spectra(self, band_task):
        X, y = band_task
        with pytest.raises(ValueError, match="augment perturbs spectra"):
            CNNRegressor(**FAST, augment={"noise": 0.1}).fit(X.reshape(len(X), 1, 6, 8), y)

    @pytest.mark.parametrize(
        ("y_bad", "match"),
        [
            (lambda y: y[:-1], "y has 95 rows but X has 96"),
            (lambda y: np.where(np.arange(len(y)) == 3, np.inf, y), "infinity"),
            (lambda y: y.reshape(-1, 1, 1), "y must be"),
        ],
    )
    def test_bad_targets(self, band_task, y_bad, match):
        X, y = band_task
        with pytest.raises(ValueError, match=match):
            CNNRegressor(**FAST, max_epochs=1).fit(X, y_bad(y))

    def test_bad_x(self):
        with pytest.raises(ValueError, match="got shape"):
            CNNRegressor(**FAST).fit(np.zeros((4, 2, 3, 5)), np.zeros(4))
        with pytest.raises(ValueError, match="NaN"):
            CNNRegressor(**FAST).fit(np.full((4, 8), np.nan), np.zeros(4))


class TestEnsemble:
    def test_members_use_consecutive_seeds_and_are_averaged(self, band_task):
        X, y = band_task
        params = {**FAST, "max_epochs": 2, "random_state": 5}
        ensemble = CNNRegressor(**params, n_ensemble=2).fit(X, y)
        assert isinstance(ensemble.module_, list)
        assert len(ensemble.module_) == 2
        assert len(ensemble.history_) == 2
        assert len(ensemble.best_epoch_) == 2
        singles = [CNNRegressor(**{**params, "random_state": 5 + i}).fit(X, y) for i in range(2)]
        for member, single in zip(ensemble.module_, singles, strict=True):
            for key, value in member.state_dict().items():
                torch.testing.assert_close(value, single.module_.state_dict()[key])
        np.testing.assert_array_equal(
            ensemble.validation_indices_[1], singles[1].validation_indices_
        )
        expected = np.mean([s.predict(X) for s in singles], axis=0)
        np.testing.assert_allclose(ensemble.predict(X), expected, rtol=1e-5, atol=1e-6)


class TestAugmentationInTraining:
    def test_changes_training_not_inference(self, band_task):
        X, y = band_task
        plain = CNNRegressor(**FAST, max_epochs=2).fit(X, y)
        augmented = CNNRegressor(
            **FAST, max_epochs=2, augment={"offset": 0.05, "noise": 0.01, "shift": 1.0}
        ).fit(X, y)
        assert not np.allclose(plain.predict(X), augmented.predict(X))
        np.testing.assert_array_equal(augmented.predict(X), augmented.predict(X))


class TestCheckpoints:
    def test_files_and_resume(self, band_task, tmp_path, monkeypatch):
        X, y = band_task
        params = {**FAST, "lr_schedule": "none", "patience": None, "checkpoint_dir": tmp_path}
        first = CNNRegressor(**params, max_epochs=3).fit(X, y)
        for name in ("last.ckpt", "best.ckpt", "history.json", "run.json", "logs/metrics.csv"):
            assert (tmp_path / name).is_file(), name
        assert (
            json.loads((tmp_path / "history.json").read_text())["train_loss"]
            == (first.history_["train_loss"])
        )
        from specsoil.train._module import SpectralLightningModule

        epochs_run = []
        monkeypatch.setattr(
            SpectralLightningModule,
            "on_train_epoch_start",
            lambda self: epochs_run.append(self.current_epoch),
            raising=False,
        )
        resumed = CNNRegressor(**{**params, "random_state": None}, max_epochs=5, resume=True).fit(
            X, y
        )
        assert epochs_run == [3, 4]  # continued after epoch 3 instead of starting again
        assert len(resumed.history_["train_loss"]) == 5
        assert resumed.history_["train_loss"][:3] == first.history_["train_loss"]
        np.testing.assert_array_equal(resumed.validation_indices_, first.validation_indices_)

    def test_resume_refuses_other_data(self, band_task, tmp_path):
        X, y = band_task
        CNNRegressor(**FAST, max_epochs=1, checkpoint_dir=tmp_path).fit(X, y)
        with pytest.raises(SpecsoilError, match=r"cannot resume.*n_samples=96, now 50"):
            CNNRegressor(**FAST, max_epochs=2, checkpoint_dir=tmp_path, resume=True).fit(
                X[:50], y[:50]
            )

    def test_resume_without_checkpoint_starts_fresh(self, band_task, tmp_path):
        X, y = band_task
        model = CNNRegressor(**FAST, max_epochs=2, checkpoint_dir=tmp_path, resume=True)
        assert len(model.fit(X, y).history_["train_loss"]) == 2

    def test_ensemble_members_have_own_folders(self, band_task, tmp_path):
        X, y = band_task
        CNNRegressor(**FAST, max_epochs=1, n_ensemble=2, checkpoint_dir=tmp_path).fit(X, y)
        assert (tmp_path / "member_0" / "last.ckpt").is_file()
        assert (tmp_path / "member_1" / "last.ckpt").is_file()

    def test_nothing_written_to_cwd_and_quiet(self, band_task, tmp_path, monkeypatch, capfd):
        X, y = band_task
        monkeypatch.chdir(tmp_path)
        CNNRegressor(**FAST, max_epochs=1).fit(X, y)
        assert list(tmp_path.iterdir()) == []
        out, err = capfd.readouterr()
        assert out == ""
        assert err == ""

    def test_last_checkpoint_every_epoch_and_resume_where_it_stopped(
        self, band_task, tmp_path, monkeypatch
    ):
        """A run interrupted at epoch k resumes at epoch k, not at the last best epoch."""
        import pytorch_lightning as pl

        from specsoil.train import _engine

        X, y = band_task
        saved_epochs: list[int] = []

        class Interrupt(pl.Callback):
            def __init__(self, at):
                self.at = at

            def on_train_epoch_start(self, trainer, pl_module):
                last = tmp_path / "last.ckpt"
                if trainer.current_epoch > 0:
                    # Tensors, numbers and strings only: loadable with pickling off.
                    state = torch.load(last, weights_only=True, map_location="cpu")
                    saved_epochs.append(int(state["epoch"]))
                if trainer.current_epoch == self.at:
                    raise KeyboardInterrupt

        own = _engine.trainer_kwargs

        def with_interrupt(at):
            def trainer_kwargs(*args, **kwargs):
                out = own(*args, **kwargs)
                out["callbacks"] = [*out["callbacks"], Interrupt(at)]
                return out

            return trainer_kwargs

        params = {**FAST, "max_epochs": 8, "patience": None, "checkpoint_dir": tmp_path}
        monkeypatch.setattr(_engine, "trainer_kwargs", with_interrupt(5))
        with pytest.raises(SystemExit):  # Lightning's answer to KeyboardInterrupt
            CNNRegressor(**params).fit(X, y)
        assert saved_epochs == [0, 1, 2, 3, 4]  # written after every epoch, best or not
        assert not list(tmp_path.glob(".*.tmp"))  # checkpoints are renamed into place

        started: list[int] = []
        monkeypatch.setattr(_engine, "trainer_kwargs", with_interrupt(-1))
        from specsoil.train._module import SpectralLightningModule

        monkeypatch.setattr(
            SpectralLightningModule,
            "on_train_epoch_start",
            lambda self: started.append(self.current_epoch),
            raising=False,
        )
        resumed = CNNRegressor(**params, resume=True).fit(X, y)
        assert started == [5, 6, 7]
        assert len(resumed.history_["train_loss"]) == 8
        uninterrupted = CNNRegressor(**{**params, "checkpoint_dir": None}).fit(X, y)
        # The epochs before the interruption are the ones an uninterrupted run has (random
        # streams are not checkpointed, so later epochs differ slightly).
        np.testing.assert_allclose(
            resumed.history_["train_loss"][:5], uninterrupted.history_["train_loss"][:5], rtol=1e-5
        )
        assert (tmp_path / "best.ckpt").is_file()


class TestRefit:
    def test_chooses_epochs_then_trains_every_row_to_the_end(self, band_task, monkeypatch):
        X, y = band_task
        from specsoil.train import _engine

        runs = []
        own = _engine.train_network

        def spy(net, train_loader, val_loader, **kwargs):
            runs.append((len(train_loader.dataset), val_loader is not None, kwargs["settings"]))
            return own(net, train_loader, val_loader, **kwargs)

        monkeypatch.setattr(_estimator, "train_network", spy)
        model = CNNRegressor(**FAST, max_epochs=15, patience=3, refit=True).fit(X, y)
        (n_select, validated, select), (n_refit, refit_validated, refit) = runs
        chosen = model.best_epoch_
        assert validated
        assert not refit_validated
        assert n_select == len(X) - len(model.validation_indices_)
        assert n_refit == len(X)  # the validation rows are trained on too
        assert select.max_epochs == 15
        assert select.patience == 3
        # The refit's schedule is laid over the chosen epochs, and it runs all of them.
        assert refit.max_epochs == chosen
        assert refit.patience is None
        assert len(model.history_["refit_train_loss"]) == chosen
        assert model.schedule_ == {
            "lr_schedule": "onecycle",
            "schedule_epochs": chosen,
            "epochs_run": chosen,
            "batch_size": 16,
            "lr": 1e-3,
            "refit": True,
            "selected_epochs": chosen,
            "selection_epochs_run": len(model.history_["train_loss"]),
        }
        # The selection run's best epoch is the refit length.
        val = model.history_["val_loss"]
        assert chosen == int(np.nanargmin(val)) + 1

    def test_without_validation_rows_nothing_to_choose(self, band_task):
        X, y = band_task
        model = CNNRegressor(**FAST, max_epochs=3, val_fraction=0.0, refit=True).fit(X, y)
        assert model.schedule_["refit"] is False
        assert model.best_epoch_ == 3
        assert "refit_train_loss" not in model.history_

    def test_saved_state_keeps_the_schedule(self, band_task):
        import pickle

        X, y = band_task
        model = CNNRegressor(**FAST, max_epochs=4, patience=2, refit=True).fit(X, y)
        loaded = pickle.loads(pickle.dumps(model))
        assert loaded.schedule_ == model.schedule_
        assert loaded.best_epoch_ == model.best_epoch_
        np.testing.assert_array_equal(loaded.predict(X[:5]), model.predict(X[:5]))

    def test_resume_after_the_selection_goes_on_with_the_refit(self, band_task, tmp_path):
        X, y = band_task
        params = {**FAST, "max_epochs": 6, "patience": 2, "refit": True, "checkpoint_dir": tmp_path}
        first = CNNRegressor(**params).fit(X, y)
        selection = json.loads((tmp_path / "selection.json").read_text())
        assert selection["best_epoch"] == first.best_epoch_
        for name in ("select/last.ckpt", "refit/last.ckpt", "select/best.ckpt"):
            assert (tmp_path / name).is_file(), name
        (tmp_path / "select" / "last.ckpt").unlink()  # a resume must not need it
        again = CNNRegressor(**params, resume=True).fit(X, y)
        assert again.schedule_ == first.schedule_
        np.testing.assert_array_equal(again.predict(X[:5]), first.predict(X[:5]))

    def test_logs_the_schedule(self, band_task, caplog):
        X, y = band_task
        with caplog.at_level("INFO", logger="specsoil.train"):
            CNNRegressor(**FAST, max_epochs=3, patience=2, refit=True).fit(X, y)
        records = [r.schedule for r in caplog.records if hasattr(r, "schedule")]
        assert len(records) == 1
        assert records[0]["module"] == "seed_cnn"
        assert records[0]["refit"] is True
        assert records[0]["n_rows"] == len(X)


class TestCPUPathUnchanged:
    def test_same_predictions_as_before_the_gpu_path(self, band_task):
        """Stored before the GPU path existed (seed 0, 4 epochs, CPU): CPU fits must not move.

        The tolerance allows for other CPUs' rounding, not for any change of the training.
        """
        X, y = band_task
        model = CNNRegressor(**FAST, max_epochs=4).fit(X, y)
        assert model.best_epoch_ == 4
        np.testing.assert_allclose(
            model.history_["train_loss"],
            [1.0035189390182495, 0.959047257900238, 0.8850081562995911, 0.8449355363845825],
            rtol=1e-4,
        )
        np.testing.assert_allclose(
            model.predict(X[:5]),
            [11.32247166, 11.19711379, 11.42753197, 11.29447765, 11.44673661],
            rtol=1e-5,
        )
        assert model.schedule_["batch_size"] == 16
        assert model.schedule_["lr"] == 1e-3

    def test_device_resident_data_path_trains_the_same(self, band_task, monkeypatch):
        """The GPU's data path (tensors cut a batch at a time), run on the CPU, changes
        nothing: same batches in the same order, so the same model."""
        X, y = band_task
        host = CNNRegressor(**FAST, max_epochs=3).fit(X, y)
        monkeypatch.setattr(_estimator, "data_device", lambda settings: "cpu")
        resident = CNNRegressor(**FAST, max_epochs=3).fit(X, y)
        assert resident.history_["train_loss"] == host.history_["train_loss"]
        np.testing.assert_array_equal(resident.predict(X), host.predict(X))


def _cuda():
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
class TestGPU:
    def test_gpu_and_cpu_predictions_agree(self, band_task):
        """Trained in bf16 mixed precision on the GPU; predicted in float32 on both."""
        X, y = band_task
        params = {**FAST, "device": "cuda", "precision": "bf16-mixed", "max_epochs": 5}
        model = CNNRegressor(**params).fit(X, y)
        on_gpu = model.predict(X)
        assert next(model.module_.parameters()).device.type == "cpu"  # kept on the CPU
        on_cpu = model.set_params(device="cpu").predict(X)
        assert np.max(np.abs(on_gpu - on_cpu)) <= 1e-4 * model.target_scale_[0]

    def test_gpu_training_keeps_data_on_the_device_and_scales_the_batch(self):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(4096, 64)).astype(np.float32)
        y = X[:, 10] - X[:, 40]
        model = CNNRegressor(
            **{**FAST, "device": "cuda", "max_epochs": 2, "val_fraction": 0.0}
        ).fit(X, y)
        # 4,096 rows at batch 16: x16 leaves 16 steps of 256; lr x 4.
        assert model.schedule_["batch_size"] == 256
        assert model.schedule_["lr"] == pytest.approx(4e-3)

    def test_onnx_parity_of_a_gpu_trained_model(self, tmp_path):
        pytest.importorskip("onnxruntime")
        from specsoil.data import load_dataset
        from specsoil.export import OnnxModel, export_onnx
        from specsoil.models import SpectralModel

        table = load_dataset("nirsoil")
        model = SpectralModel.fit(
            table,
            ["C_iso_pct"],
            recipe="cnn1d",
            params={"max_epochs": 3, "device": "cuda", "precision": "bf16-mixed"},
        )
        path = export_onnx(model, tmp_path / "model.onnx")
        torch_pred = model.predict(table)
        onnx_pred = OnnxModel.load(path).predict(table)
        scale = float(np.nanstd(torch_pred))
        worst = float(np.max(np.abs(torch_pred - onnx_pred)))
        assert worst <= 1e-4 * scale


class TestSklearnContract:
    def test_clone_and_params(self):
        model = CNNRegressor("seed_cnn", module_params={"dropout": 0.1}, lr=0.01)
        copy = clone(model)
        assert copy.get_params() == model.get_params()
        assert copy.module_params is not model.module_params
        assert set(CNNRegressor().get_params()) >= {"module", "augment", "n_ensemble", "devices"}

    def test_importing_does_not_import_torch(self):
        code = (
            "import sys, specsoil.train, specsoil.train._estimator; "
            "assert 'torch' not in sys.modules and 'pytorch_lightning' not in sys.modules"
        )
        subprocess.run([sys.executable, "-c", code], check=True)


class TestClassifier:
    def test_learns_separable_classes(self, band_task):
        X, y = band_task
        labels = np.where(y > np.median(y), "high", "low")
        model = CNNClassifier(**FAST, max_epochs=15, lr=3e-3, val_fraction=0.0).fit(X, labels)
        assert list(model.classes_) == ["high", "low"]
        proba = model.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        assert model.score(X, labels) > 0.8
        assert model.history_["train_loss"][-1] < model.history_["train_loss"][0]
