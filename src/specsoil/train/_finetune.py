"""Fine-tuning a fitted ``CNNRegressor``: the estimator copy and each network's preparation.

``finetune`` checks the arguments and trains a copy of the estimator; each network is
copied, maybe given a new head, and has stages frozen by ``prepare_for_finetuning``.

Imported lazily by ``CNNRegressor.finetune``, because it imports torch.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import clone
from sklearn.utils import check_array
from torch import nn

from specsoil.nets import SpectralCNN
from specsoil.train._engine import bool_param, float_param, int_param, val_fraction_param
from specsoil.train._estimator import (
    FINETUNE_BATCHNORM,
    FINETUNE_STRATEGIES,
    CNNRegressor,
    _check_augment_input,
    _Tuning,
)
from specsoil.train._targets import check_regression_targets, target_standardisation

# Fine-tuning with val_fraction=None holds out no rows when fewer than this many would be
# held out: early stopping on one to four spectra is noise, and a small local set needs
# every row for training.
_MIN_FINETUNE_VAL_ROWS = 5


def finetune(
    base: CNNRegressor,
    X: ArrayLike,
    y: ArrayLike,
    *,
    strategy: str,
    new_head: bool,
    max_epochs: int | None,
    lr: float | None,
    trainable_blocks: int,
    block_lr_factor: float,
    val_fraction: float | None,
    random_state: int | None,
    batchnorm: str,
    replay_X: ArrayLike | None,
    replay_y: ArrayLike | None,
    local_share: float,
) -> CNNRegressor:
    """The body of ``CNNRegressor.finetune``: a fine-tuned copy of the fitted ``base``.

    ``base`` is checked to be fitted and PyTorch to be installed by the caller; the
    arguments are those of ``CNNRegressor.finetune``, whose docstring describes them.

    Raises:
        ValueError: If an argument, X or y is invalid.
    """
    if strategy not in FINETUNE_STRATEGIES:
        raise ValueError(f"strategy must be one of {list(FINETUNE_STRATEGIES)}; got {strategy!r}")
    fresh_head = bool_param(new_head, "new_head")
    trainable_blocks = int_param(trainable_blocks, "trainable_blocks", 1)
    block_lr_factor = float_param(block_lr_factor, "block_lr_factor", low=0.0, low_inclusive=False)
    if batchnorm not in FINETUNE_BATCHNORM:
        raise ValueError(f"batchnorm must be one of {list(FINETUNE_BATCHNORM)}; got {batchnorm!r}")
    X_net = base._validate_X(X, reset=False)
    Y, y_ndim = check_regression_targets(y, X_net.shape[0])
    fresh_head = fresh_head or Y.shape[1] != base.target_mean_.shape[0]
    replay = _check_replay(base, replay_X, replay_y, Y.shape[1])
    if replay is not None:
        local_share = float_param(local_share, "local_share", low=0.0, low_inclusive=False)
        if local_share >= 1.0:
            raise ValueError(f"local_share must be below 1; got {local_share!r}")

    overrides: dict[str, Any] = {"checkpoint_dir": None, "resume": False}
    if max_epochs is not None:
        overrides["max_epochs"] = int_param(max_epochs, "max_epochs", 1)
    if lr is not None:
        overrides["lr"] = float_param(lr, "lr", low=0.0, low_inclusive=False)
    if random_state is not None:
        overrides["random_state"] = int_param(random_state, "random_state", 0)
    overrides["val_fraction"] = _val_fraction(val_fraction, base.val_fraction, X_net.shape[0])
    tuned: CNNRegressor = clone(base).set_params(**overrides)
    settings = tuned._check_params()
    _check_augment_input(settings, X_net)
    for name in ("n_features_in_", "feature_names_in_", "input_shape_", "_x_ndim"):
        if hasattr(base, name):
            setattr(tuned, name, copy.copy(getattr(base, name)))
    if fresh_head:
        standardize = bool_param(base.standardize_targets, "standardize_targets")
        # A new head is scaled on every lab value it trains on, replayed ones included.
        pooled = Y if replay is None else np.concatenate([Y, replay[1]])
        mean, scale = target_standardisation(pooled, standardize)
    else:
        mean, scale = base.target_mean_.copy(), base.target_scale_.copy()
    tuned.target_mean_, tuned.target_scale_, tuned._y_ndim = mean, scale, y_ndim
    Y_std = ((Y - mean) / scale).astype(np.float32)  # NaN stays NaN: masked in the loss
    tuning = _Tuning(
        members=base._members(),
        strategy=strategy,
        new_head=fresh_head,
        trainable_blocks=trainable_blocks,
        block_lr_factor=1.0 if strategy == "head" else block_lr_factor,
        batchnorm=batchnorm,
        replay_X=None if replay is None else replay[0],
        replay_Y=None if replay is None else ((replay[1] - mean) / scale).astype(np.float32),
        local_share=local_share,
    )
    tuned._fit_engine(X_net, Y_std, n_outputs=Y.shape[1], settings=settings, tuning=tuning)
    return tuned


def _check_replay(
    base: CNNRegressor,
    replay_X: ArrayLike | None,
    replay_y: ArrayLike | None,
    n_targets: int,
) -> tuple[NDArray[np.float32], NDArray[np.float64]] | None:
    """Replay inputs (network shape) and targets, checked against the local ones."""
    if replay_X is None and replay_y is None:
        return None
    if replay_X is None or replay_y is None:
        raise ValueError("replay needs both replay_X and replay_y (or neither)")
    X_replay = base._validate_X(replay_X, reset=False)
    Y_replay = check_array(
        replay_y,
        ensure_2d=False,
        dtype=np.float64,
        ensure_all_finite="allow-nan",
        input_name="replay_y",
    )
    if Y_replay.ndim == 1:
        Y_replay = Y_replay.reshape(-1, 1)
    if Y_replay.shape != (X_replay.shape[0], n_targets):
        raise ValueError(
            f"replay_y must have {X_replay.shape[0]} rows (as replay_X) and {n_targets} "
            f"target(s) (as y); got shape {Y_replay.shape}"
        )
    return X_replay, Y_replay


def _val_fraction(val_fraction: float | None, base_fraction: float, n_samples: int) -> float:
    """Rows held out for early stopping: as given, else the base's if they are enough."""
    if val_fraction is not None:
        return val_fraction_param(val_fraction)
    base = val_fraction_param(base_fraction)
    return base if round(base * n_samples) >= _MIN_FINETUNE_VAL_ROWS else 0.0


def prepare_for_finetuning(
    base: SpectralCNN,
    *,
    strategy: str,
    n_outputs: int | None,
    trainable_blocks: int,
    batchnorm: str = "frozen",
) -> tuple[SpectralCNN, tuple[str, ...]]:
    """A trainable copy of ``base`` and the names of its sub-modules held in eval mode.

    The base network is left untouched. Freezing sets ``requires_grad=False`` on the frozen
    parameters; the returned names are the frozen stages, which the training module holds in
    eval mode so that their BatchNorm running statistics (and dropout) do not change, and
    with ``batchnorm="frozen"`` also every BatchNorm layer of the trainable stages.

    Why hold BatchNorm statistics: with a few local spectra per batch, the running mean and
    variance drift to those few samples (and are noisy), so the features the head was
    trained on shift under it; on 20 local samples this more than doubled the RMSE of a
    ``partial`` fine-tune (docs/benchmarks.md, bench_transfer). Held in eval mode, a
    BatchNorm layer normalises with the base's statistics while its scale and shift still
    train wherever its stage is unfrozen.

    Args:
        base: A trained network.
        strategy: ``"head"`` (train the output layer only), ``"partial"`` (the head and
            the last ``trainable_blocks`` stages that hold parameters) or ``"full"``
            (everything).
        n_outputs: Put a freshly initialised head with this many outputs on the copy
            (call inside a seeded block); None keeps the trained head.
        trainable_blocks: Stages left trainable by ``"partial"``; more than the network
            has unfreezes them all.
        batchnorm: ``"frozen"`` (every BatchNorm layer keeps the base's running statistics)
            or ``"adapt"`` (those of trainable stages update in train mode).

    Returns:
        The copy (CPU, train mode) and the dotted names of the sub-modules to hold in eval
        mode: the frozen stages, then any BatchNorm layers outside them.

    Raises:
        ValueError: If ``batchnorm`` is not one of ``FINETUNE_BATCHNORM``.
    """
    if batchnorm not in FINETUNE_BATCHNORM:
        raise ValueError(f"batchnorm must be one of {list(FINETUNE_BATCHNORM)}; got {batchnorm!r}")
    net = copy.deepcopy(base).cpu().train()
    if n_outputs is not None:
        net.reset_head(n_outputs)
    net.requires_grad_(True)
    frozen: tuple[str, ...]
    if strategy == "full":
        frozen = ()
    elif strategy == "head":
        net.freeze_backbone(trainable_blocks=0)
        # Everything but the output layer, parameter-free stages with buffers included.
        frozen = tuple(
            name for name, _ in net.named_children() if name not in ("head", "head_dropout")
        )
    else:
        net.freeze_backbone(trainable_blocks=trainable_blocks)
        frozen = frozen_modules(net)
    if batchnorm == "frozen":
        frozen += batchnorm_layers(net, outside=frozen)
    return net, frozen


def batchnorm_layers(net: nn.Module, *, outside: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Dotted names of the BatchNorm layers of ``net`` not inside the modules ``outside``."""
    return tuple(
        name
        for name, module in net.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and not any(name == o or name.startswith(f"{o}.") for o in outside)
    )


def frozen_modules(net: nn.Module) -> tuple[str, ...]:
    """Dotted names of the largest sub-modules whose parameters are all frozen.

    A parameter-free module is counted with its parent: a pooling layer inside a frozen
    stage is frozen with it, while a parameter-free module next to trainable ones is left
    alone.
    """
    names: list[str] = []

    def visit(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            params = list(child.parameters())
            if params and not any(p.requires_grad for p in params):
                names.append(path)
            elif params:
                visit(child, f"{path}.")

    visit(net, "")
    return tuple(names)
