"""Prepare a trained network for fine-tuning: copy it, maybe replace its head, freeze stages.

Imported lazily by ``CNNRegressor.finetune``, because it imports torch.
"""

from __future__ import annotations

import copy

from torch import nn

from specsoil.nets import SpectralCNN


def prepare_for_finetuning(
    base: SpectralCNN,
    *,
    strategy: str,
    n_outputs: int | None,
    trainable_blocks: int,
) -> tuple[SpectralCNN, tuple[str, ...]]:
    """A trainable copy of ``base`` and the names of its sub-modules that stay frozen.

    The base network is left untouched. Freezing sets ``requires_grad=False`` on the frozen
    parameters; the returned names are the frozen stages, which the training module holds in
    eval mode so that their BatchNorm running statistics (and dropout) do not change.

    Args:
        base: A trained network.
        strategy: ``"head"`` (train the output layer only), ``"partial"`` (the head and
            the last ``trainable_blocks`` stages that hold parameters) or ``"full"``
            (everything).
        n_outputs: Put a freshly initialised head with this many outputs on the copy
            (call inside a seeded block); None keeps the trained head.
        trainable_blocks: Stages left trainable by ``"partial"``; more than the network
            has unfreezes them all.

    Returns:
        The copy (CPU, train mode) and the dotted names of its frozen sub-modules.
    """
    net = copy.deepcopy(base).cpu().train()
    if n_outputs is not None:
        net.reset_head(n_outputs)
    net.requires_grad_(True)
    if strategy == "full":
        return net, ()
    if strategy == "head":
        net.freeze_backbone(trainable_blocks=0)
        # Everything but the output layer, parameter-free stages with buffers included.
        return net, tuple(
            name for name, _ in net.named_children() if name not in ("head", "head_dropout")
        )
    net.freeze_backbone(trainable_blocks=trainable_blocks)
    return net, frozen_modules(net)


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
