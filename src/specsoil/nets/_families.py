"""The registered architectures: classic CNN families adapted to spectra and spectrograms.

Each factory fixes an architecture and exposes a few typed options. The deep families
(AlexNet, VGG, ResNet, Inception) end in global average pooling, so their parameter count
does not grow with the number of bands (200 to 4,200 in practice); the classic examples
(``seed_cnn``, LeNet-5) keep their flatten → linear heads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from specsoil._errors import SpecsoilError
from specsoil.nets._base import ConvNet, SpectralCNN, build_stack
from specsoil.nets._blocks import (
    ACTIVATIONS,
    BATCHNORM_PLACEMENTS,
    POOLS,
    ConvBlock,
    Head,
    Shape,
    build_conv_block,
    build_head_stages,
    check_choice,
    check_fraction,
    check_int,
    check_int_tuple,
    conv_block_output_shape,
    dense_stage,
)
from specsoil.nets._layers import STFT, build_inception_module, build_residual_block
from specsoil.nets._registry import register_model
from specsoil.preprocess._spectrogram import resolve_noverlap


def _check_common(activation: str, batchnorm: str, dropout: float) -> None:
    check_choice(activation, "activation", ACTIVATIONS)
    check_choice(batchnorm, "batchnorm", BATCHNORM_PLACEMENTS)
    check_fraction(dropout, "dropout")


@register_model
def seed_cnn(*, n_outputs: int, input_shape: Shape) -> SpectralCNN:
    """The classic teaching example: three stride-2 convolutions, flatten, linear.

    Exactly ``Conv1d(C, 32, 3, stride=2, padding=1) → ReLU → Conv1d(32, 64, ...) → ReLU →
    Conv1d(64, 128, ...) → ReLU → flatten → Linear(128 · L', n_outputs)`` with
    ``L' = ceil(ceil(ceil(L / 2) / 2) / 2)``; for 20 bands the last maps are (128, 3) and
    the linear layer takes 384 features. No options: it is a fixed reference.
    """
    blocks = [
        ConvBlock(channels, kernel_size=3, stride=2, padding=1, batchnorm="none")
        for channels in (32, 64, 128)
    ]
    return ConvNet(blocks, Head(pooling="flatten"), input_shape, n_outputs)


def _lenet(
    dims: int,
    input_shape: Shape,
    n_outputs: int,
    *,
    activation: str,
    pool: str,
    batchnorm: str,
    dropout: float,
) -> SpectralCNN:
    _check_common(activation, batchnorm, dropout)
    check_choice(pool, "pool", POOLS)
    # LeCun et al. (1998, Proc. IEEE 86:2278), Fig. 2: C1 (6 maps, 5 wide) → S2 → C3 (16
    # maps) → S4 → F5 (120) → F6 (84) → output. "same" padding in place of the 32x32
    # input border, so that small inputs (8x8 digits, short spectra) still fit. The defaults
    # (ReLU, max pooling, BatchNorm) train more reliably than the 1998 tanh/average/no-BN
    # choice, which activation="tanh", pool="avg", batchnorm="none" restores.
    blocks = [
        ConvBlock(
            channels,
            kernel_size=5,
            dims=dims,
            pool=pool,
            pool_size=2,
            batchnorm=batchnorm,
            activation=activation,
        )
        for channels in (6, 16)
    ]
    head = Head(pooling="flatten", hidden=(120, 84), activation=activation, dropout=dropout)
    return ConvNet(blocks, head, input_shape, n_outputs)


@register_model
def lenet5(
    *,
    n_outputs: int,
    input_shape: Shape,
    activation: str = "relu",
    pool: str = "max",
    batchnorm: str = "before_activation",
    dropout: float = 0.0,
) -> SpectralCNN:
    """LeNet-5 in 1D: conv5/6 → pool → conv5/16 → pool → fc120 → fc84 → outputs.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands).
        activation: After every layer; LeCun used a scaled tanh (``"tanh"``).
        pool: ``"max"`` or ``"avg"`` (LeCun's subsampling).
        batchnorm: BatchNorm placement in the conv blocks.
        dropout: Before each fully connected layer.
    """
    return _lenet(
        1,
        input_shape,
        n_outputs,
        activation=activation,
        pool=pool,
        batchnorm=batchnorm,
        dropout=dropout,
    )


@register_model(input_kind="spectrogram")
def lenet5_2d(
    *,
    n_outputs: int,
    input_shape: Shape,
    activation: str = "relu",
    pool: str = "max",
    batchnorm: str = "before_activation",
    dropout: float = 0.0,
) -> SpectralCNN:
    """LeNet-5 in 2D (spectrograms or images): conv5x5/6 → pool → conv5x5/16 → pool → fc.

    Padding keeps the size through each convolution, so 8x8 images fit (2x2 maps reach
    the fully connected layers).

    Args:
        n_outputs: Number of targets (or classes).
        input_shape: (channels, height, width), e.g. (1, F, T) or (1, 8, 8).
        activation: After every layer.
        pool: ``"max"`` or ``"avg"``.
        batchnorm: BatchNorm placement in the conv blocks.
        dropout: Before each fully connected layer.
    """
    return _lenet(
        2,
        input_shape,
        n_outputs,
        activation=activation,
        pool=pool,
        batchnorm=batchnorm,
        dropout=dropout,
    )


@register_model
def alexnet1d(
    *,
    n_outputs: int,
    input_shape: Shape,
    channels: tuple[int, ...] = (32, 96, 128, 128, 96),
    hidden: tuple[int, ...] = (256, 256),
    batchnorm: str = "before_activation",
    activation: str = "relu",
    dropout: float = 0.5,
) -> SpectralCNN:
    """AlexNet in 1D: conv11/4 → pool → conv5 → pool → conv3 x3 → pool → GAP → fc → fc.

    The layout of Krizhevsky et al. (2012, NIPS), at about a third of the width, with
    BatchNorm in place of local response normalisation and global average pooling before
    the fully connected layers. Needs about 64 bands or more.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands).
        channels: Filters of the five conv layers.
        hidden: Widths of the fully connected hidden layers.
        batchnorm: BatchNorm placement.
        activation: Activation function.
        dropout: Before each fully connected layer (0.5 in the paper).
    """
    _check_common(activation, batchnorm, dropout)
    widths = check_int_tuple(channels, "channels", minimum=1, length=5)
    common: dict[str, Any] = {"batchnorm": batchnorm, "activation": activation}
    pooled: dict[str, Any] = {"pool": "max", "pool_size": 3, "pool_stride": 2, **common}
    blocks = [
        ConvBlock(widths[0], kernel_size=11, stride=4, **pooled),
        ConvBlock(widths[1], kernel_size=5, **pooled),
        ConvBlock(widths[2], kernel_size=3, **common),
        ConvBlock(widths[3], kernel_size=3, **common),
        ConvBlock(widths[4], kernel_size=3, **pooled),
    ]
    head = Head(hidden=hidden, activation=activation, dropout=dropout)
    return ConvNet(blocks, head, input_shape, n_outputs)


@register_model
def vgg1d(
    *,
    n_outputs: int,
    input_shape: Shape,
    channels: tuple[int, ...] = (32, 64, 128, 256),
    convs_per_stage: int = 2,
    kernel_size: int = 3,
    batchnorm: str = "before_activation",
    activation: str = "relu",
    dropout: float = 0.2,
) -> SpectralCNN:
    """VGG in 1D: stages of small same-padded convolutions, each ending in 2x max pooling.

    Simonyan & Zisserman (2015, ICLR): depth from stacked 3-wide kernels. Each stage
    halves the length, so the default four stages need at least 16 bands. Global average
    pooling and dropout before the linear output.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands).
        channels: Filters of each stage.
        convs_per_stage: Convolutions per stage.
        kernel_size: Kernel width of every convolution.
        batchnorm: BatchNorm placement.
        activation: Activation function.
        dropout: Before the output layer.
    """
    _check_common(activation, batchnorm, dropout)
    widths = check_int_tuple(channels, "channels", minimum=1)
    repeats = check_int(convs_per_stage, "convs_per_stage", minimum=1)
    check_int(kernel_size, "kernel_size", minimum=1)
    blocks = [
        ConvBlock(
            width,
            kernel_size=kernel_size,
            batchnorm=batchnorm,
            activation=activation,
            pool="max" if repeat == repeats - 1 else None,
        )
        for width in widths
        for repeat in range(repeats)
    ]
    return ConvNet(blocks, Head(dropout=dropout), input_shape, n_outputs)


@register_model
def resnet1d(
    *,
    n_outputs: int,
    input_shape: Shape,
    channels: tuple[int, ...] = (32, 64, 128, 256),
    blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2),
    kernel_size: int = 3,
    stem_kernel: int = 7,
    activation: str = "relu",
    dropout: float = 0.0,
) -> SpectralCNN:
    """ResNet in 1D: a strided stem, stages of residual basic blocks, global average pooling.

    He et al. (2016, CVPR), the ResNet-18 layout by default: stem conv (stride 2) with max
    pooling (3, stride 2), then one stage per entry of ``channels``; the first block of
    every stage after the first has stride 2 and a 1x1 projection shortcut. Stages in
    ``blocks`` (for fine-tuning): the stem, each residual block, the pooling.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands).
        channels: Filters of each stage.
        blocks_per_stage: Residual blocks in each stage (same length as ``channels``).
        kernel_size: Kernel width inside the residual blocks.
        stem_kernel: Kernel width of the stem convolution.
        activation: Activation function.
        dropout: Before the output layer.
    """
    _check_common(activation, "none", dropout)
    widths = check_int_tuple(channels, "channels", minimum=1)
    repeats = check_int_tuple(blocks_per_stage, "blocks_per_stage", minimum=1, length=len(widths))
    kernel = check_int(kernel_size, "kernel_size", minimum=1)
    stem_spec = ConvBlock(
        widths[0],
        kernel_size=check_int(stem_kernel, "stem_kernel", minimum=1),
        stride=2,
        pool="max",
        pool_size=3,
        pool_stride=2,
        activation=activation,
    )
    stem, shape = build_conv_block(stem_spec, input_shape, where="stem")
    stages: list[nn.Module] = [stem]
    for stage, (width, count) in enumerate(zip(widths, repeats, strict=True), start=1):
        for index in range(count):
            block, shape = build_residual_block(
                shape,
                width,
                kernel_size=kernel,
                stride=2 if stage > 1 and index == 0 else 1,
                activation=activation,
                where=f"stage {stage} residual block {index + 1}",
            )
            stages.append(block)
    head_stages, n_features = build_head_stages(Head(), shape)
    return SpectralCNN(
        [*stages, *head_stages],
        num_features=n_features,
        input_shape=input_shape,
        n_outputs=n_outputs,
        head_dropout=dropout,
    )


@register_model
def inception1d(
    *,
    n_outputs: int,
    input_shape: Shape,
    stem_channels: int = 32,
    channels: tuple[int, ...] = (64, 96, 128, 160),
    kernel_sizes: tuple[int, ...] = (1, 3, 5),
    pool_every: int = 2,
    activation: str = "relu",
    dropout: float = 0.2,
) -> SpectralCNN:
    """GoogLeNet-style 1D network: a stem, then inception modules, global average pooling.

    Szegedy et al. (2015, CVPR): every module runs 1/3/5-wide convolutions (with 1x1
    bottlenecks) and a max-pool branch side by side and concatenates them. Stem: conv7
    (stride 2) with max pooling (3, stride 2); a max pooling (3, stride 2, padded) halves
    the length after every ``pool_every`` modules. Stages in ``blocks``: the stem, each
    module, each pooling, the global pooling.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands).
        stem_channels: Filters of the stem convolution.
        channels: Output channels of each inception module (split between branches).
        kernel_sizes: Kernel widths of the convolution branches.
        pool_every: Modules between length-halving poolings.
        activation: Activation function.
        dropout: Before the output layer (0.4 in GoogLeNet).
    """
    _check_common(activation, "none", dropout)
    widths = check_int_tuple(channels, "channels", minimum=1)
    kernels = check_int_tuple(kernel_sizes, "kernel_sizes", minimum=1)
    every = check_int(pool_every, "pool_every", minimum=1)
    stem_spec = ConvBlock(
        check_int(stem_channels, "stem_channels", minimum=1),
        kernel_size=7,
        stride=2,
        pool="max",
        pool_size=3,
        pool_stride=2,
        activation=activation,
    )
    stem, shape = build_conv_block(stem_spec, input_shape, where="stem")
    stages: list[nn.Module] = [stem]
    for index, width in enumerate(widths, start=1):
        module, shape = build_inception_module(
            shape, width, kernel_sizes=kernels, activation=activation, where=f"module {index}"
        )
        stages.append(module)
        if index % every == 0 and index < len(widths):
            stages.append(nn.MaxPool1d(3, stride=2, padding=1))
            shape = (shape[0], (shape[1] + 1) // 2)  # ceil(L / 2) with this padding
    head_stages, n_features = build_head_stages(Head(), shape)
    return SpectralCNN(
        [*stages, *head_stages],
        num_features=n_features,
        input_shape=input_shape,
        n_outputs=n_outputs,
        head_dropout=dropout,
    )


def _spectrogram_blocks(
    in_shape: Shape,
    channels: Sequence[int],
    *,
    kernel_size: int,
    batchnorm: str,
    activation: str,
    label: str,
) -> tuple[list[nn.Module], Shape]:
    """2D conv blocks; all but the last halve each axis that still has 2 or more positions.

    Spectrograms are small along time (a few frames for a few hundred bands), so pooling
    stops along an axis rather than shrinking it to nothing.
    """
    specs: list[ConvBlock] = []
    shape = in_shape
    for index, width in enumerate(channels):
        block = ConvBlock(
            width, kernel_size=kernel_size, dims=2, batchnorm=batchnorm, activation=activation
        )
        conv_shape = conv_block_output_shape(block, shape, where=f"{label} {index + 1}")
        if index < len(channels) - 1:
            window = tuple(2 if size >= 2 else 1 for size in conv_shape[1:])
            block = ConvBlock(
                width,
                kernel_size=kernel_size,
                dims=2,
                batchnorm=batchnorm,
                activation=activation,
                pool="max",
                pool_size=window,
            )
        specs.append(block)
        shape = conv_block_output_shape(block, shape, where=f"{label} {index + 1}")
    return build_stack(specs, in_shape, label=label)


@register_model(input_kind="spectrogram")
def cnn2d(
    *,
    n_outputs: int,
    input_shape: Shape,
    channels: tuple[int, ...] = (16, 32, 64),
    kernel_size: int = 3,
    batchnorm: str = "before_activation",
    activation: str = "relu",
    dropout: float = 0.2,
) -> SpectralCNN:
    """A 2D CNN on spectrograms: 3x3 conv blocks with 2x2 max pooling, global average pool.

    After Padarian, Minasny & McBratney (2019, Geoderma Regional 16:e00198), who fed
    LUCAS spectrograms to a 2D CNN. Every block but the last halves each axis that still
    has at least 2 positions. Input: (channels, F, T), e.g. from
    :class:`specsoil.preprocess.Spectrogram`.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, frequencies, frames).
        channels: Filters of each block.
        kernel_size: Kernel size (square).
        batchnorm: BatchNorm placement.
        activation: Activation function.
        dropout: Before the output layer.
    """
    _check_common(activation, batchnorm, dropout)
    widths = check_int_tuple(channels, "channels", minimum=1)
    check_int(kernel_size, "kernel_size", minimum=1)
    stages, shape = _spectrogram_blocks(
        input_shape,
        widths,
        kernel_size=kernel_size,
        batchnorm=batchnorm,
        activation=activation,
        label="block",
    )
    head_stages, n_features = build_head_stages(Head(), shape)
    return SpectralCNN(
        [*stages, *head_stages],
        num_features=n_features,
        input_shape=input_shape,
        n_outputs=n_outputs,
        head_dropout=dropout,
    )


class TwoBranchCNN(SpectralCNN):
    """1D branch on the spectrum and 2D branch on its spectrogram, features concatenated.

    ``blocks`` holds the 1D branch, the 2D branch (STFT layer, conv blocks, pooling) and
    then one stage per hidden fully connected layer; :meth:`forward_features` runs both
    branches on the same input and concatenates their pooled features.
    """

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the concatenated branch features (then hidden layers), (N, num_features)."""
        branch_1d, branch_2d, *dense = self.blocks
        features = torch.cat([branch_1d(x), branch_2d(x)], dim=1)  # (N, C1 + C2)
        for stage in dense:
            features = stage(features)
        return features


@register_model
def cnn1d2d(
    *,
    n_outputs: int,
    input_shape: Shape,
    channels_1d: tuple[int, ...] = (32, 64, 128),
    kernel_size: int = 7,
    channels_2d: tuple[int, ...] = (16, 32, 64),
    nperseg: int = 32,
    noverlap: int | None = None,
    window: str = "hann",
    log: bool = True,
    eps: float = 1e-6,
    hidden: tuple[int, ...] = (),
    dropout: float = 0.2,
) -> SpectralCNN:
    """Two branches: 1D convolutions on the spectrum, 2D on its spectrogram; multi-output.

    The input is just the spectra (channels, bands): the spectrogram of every channel is
    computed inside the network with :func:`torch.stft` (the same transform as
    :class:`specsoil.preprocess.Spectrogram`). The 1D branch is the ``cnn1d`` design, the
    2D branch the ``cnn2d`` design; each ends in global average pooling and their features
    are concatenated before optional hidden layers and one output per target.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands).
        channels_1d: Filters of the 1D blocks (each with 2x max pooling).
        kernel_size: Kernel width of the 1D blocks (the 2D blocks use 3x3).
        channels_2d: Filters of the 2D blocks.
        nperseg: STFT segment length in bands.
        noverlap: STFT overlap in bands; None for half a segment.
        window: STFT window name (scipy).
        log: Log magnitude.
        eps: Added before the log.
        hidden: Hidden fully connected layers after the concatenation.
        dropout: Before each fully connected layer.
    """
    check_fraction(dropout, "dropout")
    widths_1d = check_int_tuple(channels_1d, "channels_1d", minimum=1)
    widths_2d = check_int_tuple(channels_2d, "channels_2d", minimum=1)
    check_int(kernel_size, "kernel_size", minimum=1)
    segment = check_int(nperseg, "nperseg", minimum=2)
    n_bands = input_shape[1]
    if segment > n_bands:
        raise SpecsoilError(
            f"nperseg={segment} must be <= the number of bands ({n_bands}); "
            "use a smaller nperseg or more bands"
        )
    try:
        resolve_noverlap(segment, noverlap)
    except ValueError as exc:
        raise SpecsoilError(str(exc)) from None
    if not isinstance(window, str) or not isinstance(log, bool):
        raise SpecsoilError(f"window must be a name and log a bool; got {window!r}, {log!r}")
    if not isinstance(eps, float | int) or isinstance(eps, bool) or not eps > 0:
        raise SpecsoilError(f"eps must be a number > 0; got {eps!r}")
    specs_1d = [ConvBlock(w, kernel_size=kernel_size, pool="max") for w in widths_1d]
    stages_1d, shape_1d = build_stack(specs_1d, input_shape, label="1D block")
    reduce_1d, features_1d = build_head_stages(Head(), shape_1d)
    try:
        stft = STFT(n_bands, nperseg=segment, noverlap=noverlap, window=window, log=log, eps=eps)
    except ValueError as exc:
        raise SpecsoilError(f"spectrogram: {exc}") from None
    image_shape = (input_shape[0], stft.n_frequencies, stft.n_frames)
    stages_2d, shape_2d = _spectrogram_blocks(
        image_shape,
        widths_2d,
        kernel_size=3,
        batchnorm="before_activation",
        activation="relu",
        label="2D block",
    )
    reduce_2d, features_2d = build_head_stages(Head(), shape_2d)
    n_features = features_1d + features_2d
    dense: list[nn.Module] = []
    for width in () if hidden == () else check_int_tuple(hidden, "hidden", minimum=1):
        dense.append(dense_stage(n_features, width, "relu", dropout))
        n_features = width
    return TwoBranchCNN(
        [
            nn.Sequential(*stages_1d, *reduce_1d),
            nn.Sequential(stft, *stages_2d, *reduce_2d),
            *dense,
        ],
        num_features=n_features,
        input_shape=input_shape,
        n_outputs=n_outputs,
        head_dropout=dropout,
    )


@register_model
def cnn1d(
    *,
    n_outputs: int,
    input_shape: Shape,
    channels: tuple[int, ...] = (32, 64, 128),
    kernel_size: int = 7,
    pool_size: int = 2,
    batchnorm: str = "before_activation",
    activation: str = "relu",
    dropout: float = 0.2,
) -> SpectralCNN:
    """The recommended default 1D CNN: conv blocks with BatchNorm and max pooling, GAP.

    Three blocks (32-64-128 filters, 7 bands wide), each conv → BN → ReLU → 2x max pool,
    then global average pooling, dropout and one linear output per target. Pooling halves
    the length after every block, so an epoch costs about half that of the same net
    without pooling (the issue's 3-block 32-64-128 k7 reference). The ``cnn1d`` recipe
    feeds it three channels (absorbance, first derivative, SNV) with augmentation; that
    input, not a wider or deeper net, is what closed most of the gap to PLSR in inner CV
    (docs/benchmarks.md, section bench_cnn).

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands); several channels (e.g. absorbance and derivative)
            are allowed.
        channels: Filters of each block.
        kernel_size: Kernel width in bands.
        pool_size: Max-pooling window and stride after each block (1 = no pooling).
        batchnorm: BatchNorm placement.
        activation: Activation function.
        dropout: Before the output layer.
    """
    _check_common(activation, batchnorm, dropout)
    widths = check_int_tuple(channels, "channels", minimum=1)
    check_int(kernel_size, "kernel_size", minimum=1)
    pool = check_int(pool_size, "pool_size", minimum=1)
    blocks = [
        ConvBlock(
            width,
            kernel_size=kernel_size,
            batchnorm=batchnorm,
            activation=activation,
            pool="max" if pool > 1 else None,
            pool_size=pool,
        )
        for width in widths
    ]
    return ConvNet(blocks, Head(dropout=dropout), input_shape, n_outputs)


_DEFAULT_BLOCKS = (
    ConvBlock(32, kernel_size=7),
    ConvBlock(64, kernel_size=7),
    ConvBlock(128, kernel_size=7),
)


@register_model(input_kind="any")
def convnet(
    *,
    n_outputs: int,
    input_shape: Shape,
    blocks: tuple[ConvBlock | Mapping[str, Any], ...] = _DEFAULT_BLOCKS,
    head: Head | Mapping[str, Any] | None = None,
) -> SpectralCNN:
    """Any stack of conv blocks and a head, declared as data (e.g. in a YAML config).

    Each block is a :class:`ConvBlock` or a mapping of its settings, e.g.
    ``{"out_channels": 32, "kernel_size": 7, "pool": "max"}``; ``dims`` defaults to the
    input's spatial axes. The head is a :class:`Head` or mapping (None: global average
    pooling → linear). Default: three blocks of 32-64-128 filters, 7 wide, BN and ReLU.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands) for 1D blocks, (channels, F, T) for 2D blocks.
        blocks: The conv blocks, in order.
        head: The head spec.
    """
    if not isinstance(blocks, tuple | list):
        raise SpecsoilError(f"blocks must be a sequence of ConvBlock settings; got {blocks!r}")
    return ConvNet(blocks, head, input_shape, n_outputs)
