"""Resuming from a checkpoint folder never unpickles code: a crafted last.ckpt does not run.

The only torch.load in specsoil is Lightning's, when ``resume=True`` reads ``last.ckpt``;
it loads with ``weights_only`` (torch's default since 2.6), so a checkpoint holding a pickled
callable is refused. Model folders hold no torch files at all (the weights travel as numpy
arrays inside the .skops pipeline).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.train import CNNRegressor

torch = pytest.importorskip("torch")


class _RunsShell:
    """Pickles to ``os.system(command)``: unpickling runs it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.command,)


def test_crafted_last_checkpoint_is_not_unpickled(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 32)).astype(np.float32)
    y = rng.normal(size=24)
    run_dir = tmp_path / "run"
    settings = {"max_epochs": 1, "checkpoint_dir": run_dir, "random_state": 0, "num_threads": 1}
    CNNRegressor("seed_cnn", **settings).fit(X, y)
    assert (run_dir / "last.ckpt").is_file()
    marker = tmp_path / "payload-ran"
    torch.save({"state_dict": _RunsShell(f"touch {marker}")}, run_dir / "last.ckpt")
    with pytest.raises(SpecsoilError, match=r"last\.ckpt: refused to resume"):
        CNNRegressor("seed_cnn", **{**settings, "max_epochs": 2}, resume=True).fit(X, y)
    assert not marker.exists()
