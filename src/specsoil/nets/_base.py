"""The network base class every registered architecture derives from, and the generic ConvNet."""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from specsoil._errors import SpecsoilError
from specsoil.nets._blocks import (
    ConvBlock,
    Head,
    Shape,
    build_conv_block,
    build_head_stages,
    check_int,
    jsonable,
)


class SpectralCNN(nn.Module):
    """A network for spectra or spectrograms: feature stages, then one linear output layer.

    ``forward(x) = forward_head(forward_features(x))``. The feature path is ``blocks``, an
    :class:`torch.nn.ModuleList` of stages run in order (conv blocks, then the reduction
    stage — flatten or global pooling — then any hidden fully connected layers); subclasses
    with parallel branches override :meth:`forward_features` and document their stages.
    The head is a dropout (``head_dropout``, identity when 0) and one ``nn.Linear``
    (``head``), one output per target.

    Transfer learning: :meth:`backbone_parameters` and :meth:`head_parameters` split the
    parameters; :meth:`freeze_backbone` freezes everything but the head and the last k
    stages that hold parameters. :meth:`reset_head` puts a new output layer on the same
    features.

    Args:
        blocks: The feature stages, in order.
        num_features: Width of the feature vector the stages produce.
        input_shape: Shape of one input sample without the batch: ``(channels, bands)`` or
            ``(channels, frequencies, frames)``.
        n_outputs: Number of outputs (targets).
        head_dropout: Dropout before the output layer, in [0, 1).

    Attributes:
        input_shape: As given.
        n_outputs: Current number of outputs (changed by :meth:`reset_head`).
        num_features: Width of the features fed to the head.
    """

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        *,
        num_features: int,
        input_shape: Shape,
        n_outputs: int,
        head_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_shape: Shape = tuple(int(v) for v in input_shape)
        self.n_outputs = check_int(n_outputs, "n_outputs", minimum=1)
        self.num_features = int(num_features)
        self.blocks = nn.ModuleList(blocks)
        self.head_dropout: nn.Module = (
            nn.Dropout(head_dropout) if head_dropout > 0 else nn.Identity()
        )
        self.head = nn.Linear(self.num_features, self.n_outputs)
        self._model_name = type(self).__name__.lower()
        self._options: dict[str, Any] = {}

    def _set_config(self, name: str, options: Mapping[str, Any]) -> None:
        """Record the registry name and options that :meth:`config` reports."""
        self._model_name = name
        self._options = jsonable(dict(options))

    def config(self) -> dict[str, Any]:
        """Return what rebuilds this architecture: ``create_model(**model.config())``.

        Returns:
            A JSON-serialisable dict with ``name``, ``n_outputs``, ``input_shape`` (a list)
            and every option of the model's factory, defaults included, so a saved model
            still loads if a default changes later.
        """
        return {
            "name": self._model_name,
            "n_outputs": self.n_outputs,
            "input_shape": list(self.input_shape),
            **self._options,
        }

    def _check_input(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.input_shape or x.dim() != len(self.input_shape) + 1:
            raise SpecsoilError(
                f"model {self._model_name!r} was built for input (N, "
                f"{', '.join(map(str, self.input_shape))}); got a tensor of shape "
                f"{tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the features of a batch, shape (N, num_features).

        Args:
            x: A batch, shape (N, *input_shape).
        """
        for block in self.blocks:
            x = block(x)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Map features (N, num_features) to outputs (N, n_outputs)."""
        out: torch.Tensor = self.head(self.head_dropout(features))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the predictions for a batch.

        Args:
            x: A batch, shape (N, *input_shape).

        Returns:
            Outputs, shape (N, n_outputs).

        Raises:
            SpecsoilError: If ``x`` does not have the shape the model was built for.
        """
        self._check_input(x)
        return self.forward_head(self.forward_features(x))

    def reset_head(self, n_outputs: int) -> None:
        """Replace the output layer by a freshly initialised one with ``n_outputs`` outputs.

        The features are kept, so this is the step before fine-tuning on new targets. The
        new layer is on the device and dtype of the old one.
        """
        n_outputs = check_int(n_outputs, "n_outputs", minimum=1)
        old = self.head
        self.head = nn.Linear(self.num_features, n_outputs).to(
            device=old.weight.device, dtype=old.weight.dtype
        )
        self.n_outputs = n_outputs

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Yield the parameters of the output layer."""
        yield from self.head.parameters()

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Yield every parameter that is not in the output layer (all of ``blocks``)."""
        head = {id(p) for p in self.head.parameters()}
        for parameter in self.parameters():
            if id(parameter) not in head:
                yield parameter

    def freeze_backbone(self, *, trainable_blocks: int = 0) -> None:
        """Freeze the feature stages for fine-tuning; the head stays trainable.

        Sets ``requires_grad`` only; BatchNorm running statistics still update in train
        mode, so put frozen stages in eval mode too if they should stay fixed.
        ``model.requires_grad_(True)`` unfreezes everything.

        Args:
            trainable_blocks: How many of the last stages holding parameters stay trainable
                (0 = only the head). Parameter-free stages (flatten, pooling) are skipped
                when counting.
        """
        trainable_blocks = check_int(trainable_blocks, "trainable_blocks", minimum=0)
        for parameter in self.backbone_parameters():
            parameter.requires_grad_(False)
        with_parameters = [b for b in self.blocks if any(True for _ in b.parameters())]
        if trainable_blocks:
            for block in with_parameters[-trainable_blocks:]:
                block.requires_grad_(True)
        self.head.requires_grad_(True)


def build_stack(
    blocks: Sequence[ConvBlock], in_shape: Shape, *, label: str = "block"
) -> tuple[list[nn.Module], Shape]:
    """Check then build a sequence of conv blocks; errors name ``"{label} {i}"`` (1-based).

    Returns:
        The built blocks and the shape after the last one.
    """
    built: list[nn.Module] = []
    shape = in_shape
    for index, block in enumerate(blocks, start=1):
        module, shape = build_conv_block(block, shape, where=f"{label} {index}")
        built.append(module)
    return built, shape


class ConvNet(SpectralCNN):
    """Any stack of :class:`ConvBlock` followed by a :class:`Head`: the generic network.

    Every block is checked against the input shape (by shape inference) before any layer
    is built, so a stack that does not fit fails with an error naming the block. The stages
    in ``blocks`` are the conv blocks, the reduction (flatten or global pooling) and one
    stage per hidden layer of the head.

    Args:
        blocks: The conv blocks, all with ``dims`` equal to the input's spatial axes.
        head: The head; its dropout also applies before the output layer.
        input_shape: ``(channels, bands)`` for 1D blocks, ``(channels, height, width)`` for
            2D blocks.
        n_outputs: Number of outputs (targets).

    Raises:
        SpecsoilError: If there are no blocks, the shape is invalid, or a block does not fit.
    """

    def __init__(
        self,
        blocks: Sequence[ConvBlock | Mapping[str, Any]],
        head: Head | Mapping[str, Any] | None,
        input_shape: Shape,
        n_outputs: int,
    ) -> None:
        shape = check_input_shape(input_shape, dims=None)
        specs = [ConvBlock.from_value(b, dims=len(shape) - 1) for b in blocks]
        if not specs:
            raise SpecsoilError("ConvNet needs at least one ConvBlock; got none")
        head_spec = Head.from_value(head)
        stages, out_shape = build_stack(specs, shape)
        head_stages, n_features = build_head_stages(head_spec, out_shape)
        super().__init__(
            [*stages, *head_stages],
            num_features=n_features,
            input_shape=shape,
            n_outputs=n_outputs,
            head_dropout=head_spec.dropout,
        )
        self._set_config("convnet", {"blocks": specs, "head": head_spec})


def check_input_shape(input_shape: Any, *, dims: int | None) -> Shape:
    """Return ``input_shape`` as a tuple of positive ints, (C, L) or (C, H, W).

    Args:
        input_shape: Shape of one sample without the batch (a list is accepted).
        dims: Required number of spatial axes (1 or 2), or None for either.

    Raises:
        SpecsoilError: If the shape is not valid.
    """
    expected = {
        1: "(channels, bands)",
        2: "(channels, frequencies, frames)",
        None: "(channels, bands) or (channels, frequencies, frames)",
    }[dims]
    lengths = (dims + 1,) if dims is not None else (2, 3)
    if (
        not isinstance(input_shape, tuple | list)
        or len(input_shape) not in lengths
        or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in input_shape)
        or any(v < 1 for v in input_shape)
    ):
        raise SpecsoilError(
            f"input_shape must be {expected} with positive integers; got {input_shape!r}"
        )
    return tuple(int(v) for v in input_shape)
