"""Fine-tuning a fitted CNNRegressor: freezing, heads, small sets, ensembles, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

torch = pytest.importorskip("torch")
skops_io = pytest.importorskip("skops.io")

from specsoil.train import CNNRegressor  # noqa: E402
from specsoil.train._finetune import (  # noqa: E402
    batchnorm_layers,
    frozen_modules,
    prepare_for_finetuning,
)
from specsoil.train._module import SpectralLightningModule  # noqa: E402

# cnn1d has BatchNorm and dropout in its blocks: what freezing must hold still.
BN = {"module": "cnn1d", "batch_size": 16, "random_state": 0, "device": "cpu", "num_threads": 1}
FAST = {**BN, "module": "seed_cnn"}


def _state(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _changed(before, after, prefix):
    keys = [k for k in before if k.startswith(prefix)]
    assert keys, prefix
    return {k: not torch.equal(before[k], after[k]) for k in keys}


@pytest.fixture(scope="module")
def base_task():
    """A base model's data and a second, shifted task sharing its spectra's bands."""
    rng = np.random.default_rng(3)
    grid = np.arange(48.0)
    bands = np.exp(-0.5 * ((grid[None, :] - np.array([8.0, 20.0, 33.0, 41.0])[:, None]) / 2.5) ** 2)

    def draw(n, coef, intercept, offset):
        heights = rng.uniform(0.0, 1.0, (n, 4))
        X = offset + 0.5 + heights @ bands + rng.normal(0.0, 0.01, (n, 48))
        return X.astype(np.float32), heights @ np.asarray(coef) + intercept

    X, y = draw(96, [3.0, -2.0, 1.0, 0.5], 10.0, 0.0)
    # The local task: another baseline and another calibration of the same bands.
    X_local, y_local = draw(40, [1.0, -3.0, 2.5, 0.5], 14.0, 0.05)
    X_test, y_test = draw(60, [1.0, -3.0, 2.5, 0.5], 14.0, 0.05)
    return X, y, (X_local, y_local), (X_test, y_test)


@pytest.fixture(scope="module")
def base_bn(base_task):
    X, y, _, _ = base_task
    return CNNRegressor(**BN, max_epochs=3, val_fraction=0.0).fit(X, y)


class TestFreezing:
    def test_head_only_changes_the_head(self, base_bn, base_task):
        _, _, (X_local, y_local), _ = base_task
        before = _state(base_bn.module_)
        tuned = base_bn.finetune(X_local, y_local, strategy="head", max_epochs=3, val_fraction=0)
        after = _state(tuned.module_)
        assert not any(_changed(before, after, "blocks.").values())  # BN buffers included
        assert all(_changed(before, after, "head.").values())
        # The base model is untouched and still a separate network.
        assert all(torch.equal(v, base_bn.module_.state_dict()[k]) for k, v in before.items())
        assert tuned.module_ is not base_bn.module_
        assert all(p.requires_grad for p in tuned.module_.parameters())

    def test_partial_unfreezes_the_last_block_only(self, base_bn, base_task):
        _, _, (X_local, y_local), _ = base_task
        before = _state(base_bn.module_)
        tuned = base_bn.finetune(
            X_local, y_local, strategy="partial", trainable_blocks=1, max_epochs=3, val_fraction=0
        )
        after = _state(tuned.module_)
        for frozen in ("blocks.0.", "blocks.1."):
            assert not any(_changed(before, after, frozen).values()), frozen
        last = _changed(before, after, "blocks.2.")
        assert last["blocks.2.conv.weight"]
        assert last["blocks.2.bn.weight"]  # BatchNorm's scale trains ...
        assert not last["blocks.2.bn.running_mean"]  # ... on the base's statistics
        assert not last["blocks.2.bn.running_var"]
        assert all(_changed(before, after, "head.").values())

    @pytest.mark.parametrize("strategy", ["partial", "full"])
    def test_batchnorm_statistics_are_held_by_default(self, base_bn, base_task, strategy):
        _, _, (X_local, y_local), _ = base_task
        before = _state(base_bn.module_)
        stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
        assert len(stats) == 6  # three blocks with BatchNorm

        def changed_stats(**kwargs):
            tuned = base_bn.finetune(
                X_local, y_local, strategy=strategy, max_epochs=2, val_fraction=0, **kwargs
            )
            after = _state(tuned.module_)
            assert _changed(before, after, "blocks.2.")["blocks.2.conv.weight"]
            return {k for k in stats if not torch.equal(before[k], after[k])}

        assert changed_stats() == set()
        adapted = changed_stats(batchnorm="adapt")
        expected = (
            {k for k in stats if k.startswith("blocks.2.")} if strategy == "partial" else set(stats)
        )
        assert adapted == expected

    def test_batchnorm_layers_are_held_in_eval_mode(self, base_bn):
        net, held = prepare_for_finetuning(
            base_bn.module_, strategy="partial", n_outputs=None, trainable_blocks=1
        )
        assert held == ("blocks.0", "blocks.1", "blocks.2.bn")
        assert batchnorm_layers(net) == ("blocks.0.bn", "blocks.1.bn", "blocks.2.bn")
        _, adapt = prepare_for_finetuning(
            base_bn.module_,
            strategy="partial",
            n_outputs=None,
            trainable_blocks=1,
            batchnorm="adapt",
        )
        assert adapt == ("blocks.0", "blocks.1")

    def test_full_changes_everything(self, base_bn, base_task):
        _, _, (X_local, y_local), _ = base_task
        before = _state(base_bn.module_)
        tuned = base_bn.finetune(X_local, y_local, strategy="full", max_epochs=2, val_fraction=0)
        after = _state(tuned.module_)
        assert _changed(before, after, "blocks.0.")["blocks.0.conv.weight"]
        assert all(_changed(before, after, "head.").values())

    def test_frozen_stages_are_named(self, base_bn):
        net, frozen = prepare_for_finetuning(
            base_bn.module_,
            strategy="partial",
            n_outputs=None,
            trainable_blocks=2,
            batchnorm="adapt",
        )
        assert frozen == ("blocks.0",)
        assert frozen_modules(net) == frozen
        _, head_frozen = prepare_for_finetuning(
            base_bn.module_, strategy="head", n_outputs=3, trainable_blocks=1
        )
        assert head_frozen == ("blocks",)  # BatchNorm layers are inside the frozen stages
        _, none = prepare_for_finetuning(
            base_bn.module_,
            strategy="full",
            n_outputs=None,
            trainable_blocks=1,
            batchnorm="adapt",
        )
        assert none == ()

    def test_backbone_learns_at_a_lower_rate(self, base_bn):
        net, frozen = prepare_for_finetuning(
            base_bn.module_, strategy="partial", n_outputs=None, trainable_blocks=1
        )
        lit = SpectralLightningModule(net, lr=1e-2, frozen=frozen, backbone_lr_factor=0.1)
        groups = lit._param_groups()
        head = {id(p) for p in net.head.parameters()}
        trainable = {id(p) for p in net.parameters() if p.requires_grad}
        seen = set()
        for group in groups:
            ids = {id(p) for p in group["params"]}
            seen |= ids
            expected = 1e-2 if ids <= head else pytest.approx(1e-3)
            assert group["lr"] == expected
        assert seen == trainable  # frozen parameters are not handed to the optimiser


class TestTargets:
    def test_kept_head_keeps_the_standardisation(self, base_bn, base_task):
        _, _, (X_local, y_local), _ = base_task
        tuned = base_bn.finetune(X_local, y_local, strategy="head", max_epochs=1)
        np.testing.assert_array_equal(tuned.target_mean_, base_bn.target_mean_)
        np.testing.assert_array_equal(tuned.target_scale_, base_bn.target_scale_)

    def test_other_targets_get_a_new_head(self, base_bn, base_task):
        _, _, (X_local, y_local), _ = base_task
        Y = np.column_stack([y_local, -y_local])
        Y[::4, 1] = np.nan
        tuned = base_bn.finetune(X_local, Y, strategy="head", max_epochs=2, val_fraction=0)
        assert tuned.module_.n_outputs == 2
        assert tuned.predict(X_local).shape == (40, 2)
        np.testing.assert_allclose(tuned.target_mean_, np.nanmean(Y, axis=0))
        # The features are the base model's: only the new head was trained.
        base_blocks = base_bn.module_.blocks.state_dict()
        for key, value in tuned.module_.blocks.state_dict().items():
            assert torch.equal(value, base_blocks[key]), key

    def test_new_head_on_request(self, base_bn, base_task):
        _, _, (X_local, y_local), _ = base_task
        tuned = base_bn.finetune(
            X_local, y_local, new_head=True, strategy="head", max_epochs=1, val_fraction=0
        )
        assert tuned.predict(X_local).shape == (40,)
        np.testing.assert_allclose(tuned.target_mean_, [y_local.mean()])
        np.testing.assert_allclose(tuned.target_scale_, [y_local.std()])

    def test_fine_tuning_fits_the_shifted_task(self, base_task):
        X, y, (X_local, y_local), (X_test, y_test) = base_task
        base = CNNRegressor(**FAST, max_epochs=40, lr=3e-3, val_fraction=0.0).fit(X, y)
        tuned = base.finetune(
            X_local, y_local, strategy="partial", max_epochs=60, lr=3e-3, val_fraction=0
        )

        def rmse(model):
            return float(np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2)))

        assert rmse(tuned) < 0.5 * rmse(base)


class TestReplay:
    """Fine-tuning with rehearsal: the local rows trained together with replayed old ones."""

    def test_replay_rows_are_trained_on(self, base_task):
        X, y, (X_local, y_local), _ = base_task
        base = CNNRegressor(**FAST, max_epochs=1, val_fraction=0.0).fit(X, y)
        kwargs = {
            "strategy": "head",
            "max_epochs": 5,
            "lr": 3e-2,
            "val_fraction": 0,
            "random_state": 2,
        }
        plain = base.finetune(X_local[:10], y_local[:10], **kwargs)
        replayed = base.finetune(X_local[:10], y_local[:10], replay_X=X, replay_y=y, **kwargs)
        # Ten local rows in batches of 16 make one step an epoch; with 96 replay rows and
        # the local ones repeated ten times (half of each epoch) there are 12.
        assert not np.allclose(replayed.predict(X), plain.predict(X))
        wrong = base.finetune(X_local[:10], y_local[:10], replay_X=X, replay_y=y + 100.0, **kwargs)
        # Replayed targets steer the fit: 100 more on half of each epoch's rows moves the
        # predictions up by tens (about 28 here); the local rows alone would not.
        shift = np.mean(wrong.predict(X) - replayed.predict(X))
        assert shift > 10.0

    def test_local_share_repeats_local_rows(self, base_bn):
        from specsoil.train._estimator import _Tuning, _with_replay

        X_local = np.zeros((10, 1, 48), np.float32)
        Y_local = np.zeros((10, 1), np.float32)
        replay_X = np.ones((90, 1, 48), np.float32)
        replay_Y = np.ones((90, 1), np.float32)

        def local_rows(share):
            tuning = _Tuning(
                members=[base_bn.module_],
                strategy="head",
                new_head=False,
                trainable_blocks=1,
                block_lr_factor=1.0,
                replay_X=replay_X,
                replay_Y=replay_Y,
                local_share=share,
            )
            X, Y = _with_replay(X_local, Y_local, tuning)
            assert X.shape[0] == Y.shape[0]
            assert int((Y == 1).sum()) == 90  # every replay row, once
            return int((Y == 0).sum())

        assert local_rows(0.5) == 90  # ten copies: half of the epoch
        assert local_rows(0.25) == 30
        assert local_rows(0.01) == 10  # never fewer than one copy of each local row

    def test_replay_with_a_new_head_scales_on_all_values(self, base_bn, base_task):
        X, y, (X_local, y_local), _ = base_task
        tuned = base_bn.finetune(
            X_local,
            y_local,
            new_head=True,
            strategy="head",
            max_epochs=1,
            val_fraction=0,
            replay_X=X,
            replay_y=y,
        )
        pooled = np.concatenate([y_local, y])
        np.testing.assert_allclose(tuned.target_mean_, [pooled.mean()])
        np.testing.assert_allclose(tuned.target_scale_, [pooled.std()])


class TestSmallSets:
    def test_eight_samples_with_a_large_batch(self, base_bn, base_task):
        _, _, (X_local, y_local), _ = base_task
        tuned = base_bn.finetune(X_local[:8], y_local[:8], strategy="partial", max_epochs=4)
        # 0.15 of 8 rows is one spectrum: too few for early stopping, so all rows train.
        assert tuned.get_params()["val_fraction"] == 0.0
        assert len(tuned.history_["train_loss"]) == 4
        assert tuned.history_["val_loss"] == []
        assert tuned.validation_indices_.size == 0
        assert np.isfinite(tuned.predict(X_local)).all()

    def test_enough_rows_keep_the_base_fraction(self, base_task):
        X, y, _, _ = base_task
        base = CNNRegressor(**FAST, max_epochs=1, val_fraction=0.15).fit(X, y)
        tuned = base.finetune(X[:40], y[:40], strategy="head", max_epochs=2)
        assert tuned.get_params()["val_fraction"] == 0.15
        assert tuned.validation_indices_.size == 6

    def test_too_few_training_rows(self, base_bn, base_task):
        _, _, (X_local, y_local), _ = base_task
        with pytest.raises(ValueError, match="at least 2 training rows"):
            base_bn.finetune(X_local[:2], y_local[:2], val_fraction=0.5, max_epochs=1)


class TestEstimatorContract:
    def test_ensemble_members_are_each_fine_tuned(self, base_task):
        X, y, (X_local, y_local), _ = base_task
        base = CNNRegressor(**BN, max_epochs=1, val_fraction=0.0, n_ensemble=2).fit(X, y)
        tuned = base.finetune(X_local, y_local, strategy="head", max_epochs=2)
        assert isinstance(tuned.module_, list)
        assert len(tuned.module_) == 2
        for before, after in zip(base.module_, tuned.module_, strict=True):
            assert not torch.equal(before.head.weight, after.head.weight)
            assert torch.equal(before.blocks[0].conv.weight, after.blocks[0].conv.weight)
        assert len(tuned.history_) == 2

    def test_parameters_record_the_run_and_skops_round_trip(self, base_task, tmp_path):
        X, y, (X_local, y_local), _ = base_task
        base = CNNRegressor(**FAST, max_epochs=1, checkpoint_dir=tmp_path / "base").fit(X, y)
        tuned = base.finetune(X_local, y_local, max_epochs=2, lr=5e-4, random_state=4)
        params = tuned.get_params()
        assert (params["max_epochs"], params["lr"], params["random_state"]) == (2, 5e-4, 4)
        assert params["checkpoint_dir"] is None  # never overwrites the base's checkpoints
        assert base.get_params()["max_epochs"] == 1
        assert clone(tuned).get_params() == params
        path = tmp_path / "tuned.skops"
        skops_io.dump(tuned, path)
        loaded = skops_io.load(path, trusted=skops_io.get_untrusted_types(file=path))
        np.testing.assert_allclose(loaded.predict(X_local), tuned.predict(X_local), atol=1e-6)
        assert loaded.get_params() == params

    def test_same_seed_same_result(self, base_bn, base_task):
        _, _, (X_local, y_local), _ = base_task
        runs = [
            base_bn.finetune(X_local, y_local, new_head=True, max_epochs=2, random_state=1)
            for _ in range(2)
        ]
        np.testing.assert_array_equal(runs[0].predict(X_local), runs[1].predict(X_local))

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"strategy": "last"}, "strategy must be one of"),
            ({"trainable_blocks": 0}, "trainable_blocks must be an int >= 1"),
            ({"block_lr_factor": 0.0}, "block_lr_factor must be a finite number > 0"),
            ({"val_fraction": 1.0}, "val_fraction must be a number in"),
            ({"max_epochs": 0}, "max_epochs must be an int >= 1"),
            ({"new_head": "yes"}, "new_head must be True or False"),
            ({"batchnorm": "train"}, "batchnorm must be one of"),
            ({"replay_X": np.zeros((4, 48))}, "both replay_X and replay_y"),
            (
                {"replay_X": np.zeros((4, 48)), "replay_y": np.zeros(5)},
                "replay_y must have 4 rows",
            ),
            (
                {"replay_X": np.zeros((4, 48)), "replay_y": np.zeros(4), "local_share": 1.0},
                "local_share must be below 1",
            ),
            (
                {"replay_X": np.zeros((4, 48)), "replay_y": np.zeros(4), "local_share": 0},
                "local_share must be a finite number > 0",
            ),
            ({"replay_X": np.zeros((4, 40)), "replay_y": np.zeros(4)}, "features"),
        ],
    )
    def test_bad_arguments(self, base_bn, base_task, kwargs, match):
        _, _, (X_local, y_local), _ = base_task
        with pytest.raises(ValueError, match=match):
            base_bn.finetune(X_local, y_local, **kwargs)

    def test_other_band_count_and_unfitted(self, base_bn, base_task):
        _, _, (X_local, y_local), _ = base_task
        with pytest.raises(ValueError, match="features"):
            base_bn.finetune(X_local[:, :40], y_local)
        with pytest.raises(NotFittedError):
            CNNRegressor(**BN).finetune(X_local, y_local)
