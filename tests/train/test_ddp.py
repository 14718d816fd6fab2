"""Data-parallel training (DDP) with two CPU processes."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from specsoil.train import CNNRegressor  # noqa: E402


@pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this torch build has no torch.distributed"
)
def test_ddp_spawn_two_cpu_processes(band_task):
    X, y = band_task
    model = CNNRegressor(
        "seed_cnn",
        device="cpu",
        strategy="ddp_spawn",
        devices=2,
        max_epochs=3,
        batch_size=16,
        lr=3e-3,
        lr_schedule="none",
        num_threads=1,
        random_state=0,
    ).fit(X, y)
    history = model.history_
    # Both ranks' epochs were recorded and synced back to this process.
    assert len(history["train_loss"]) == 3
    assert len(history["val_loss"]) == 3
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert model.best_epoch_ == int(np.argmin(history["val_loss"])) + 1
    # The weights trained in the workers came back: the kept epoch's validation loss is
    # reproduced here, which an untrained network would not do.
    rows = model.validation_indices_
    pred = (model.predict(X[rows]) - model.target_mean_[0]) / model.target_scale_[0]
    target = (y[rows] - model.target_mean_[0]) / model.target_scale_[0]
    assert np.mean((pred - target) ** 2) == pytest.approx(min(history["val_loss"]), rel=1e-4)
