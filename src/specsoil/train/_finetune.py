"""Prepare a trained network for fine-tuning: copy it, maybe replace its head, freeze stages.

Imported lazily by ``CNNRegressor.finetune``, because it imports torch.
"""

from __future__ import annotations

import copy

from torch import nn

from specsoil.nets import SpectralCNN
from specsoil.train._estimator import FINETUNE_BATCHNORM


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
