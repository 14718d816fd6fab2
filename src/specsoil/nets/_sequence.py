"""Recurrent and attention networks over the band sequence: lstm1d, gru1d, transformer1d.

A spectrum of 200-2,000 bands is a long sequence for a recurrence or for attention, whose
cost grows with its length (attention with its square). Each network therefore first
shortens it: the recurrent ones with a strided convolution stem (two conv blocks of stride
2, so a step of the sequence covers 4 bands and sees a local shape, not one value), the
transformer with a patch embedding (one token per ``patch_size`` bands, ViT-style:
Dosovitskiy et al., 2021). The recurrence (bidirectional, so every step sees both ends of
the spectrum) or the encoder layers then relate all positions; the features are the mean
over the sequence, and the head is the usual dropout and linear layer.

Every stage is a module in ``blocks`` and every leaf layer returns a tensor or a tuple
whose first item is the sequence output, so the shape and receptive-field report
(``specsoil models show NAME``) traces them like the CNNs; the recurrence and attention
layers see the whole input ("all").
"""

from __future__ import annotations

import math

import torch
from torch import nn

from specsoil._errors import SpecsoilError
from specsoil.nets._base import SpectralCNN, build_stack
from specsoil.nets._blocks import (
    ConvBlock,
    Pad,
    Shape,
    check_choice,
    check_fraction,
    check_int,
)
from specsoil.nets._registry import register_model

RECURRENT_CELLS = ("lstm", "gru")


class ToSequence(nn.Module):
    """(N, C, L) feature maps → (N, L, C) sequences: one step per position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` with channels last."""
        return x.transpose(1, 2)


class SequenceMean(nn.Module):
    """(N, L, C) → (N, C): the mean over the sequence, the features the head reads."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the mean over axis 1."""
        return x.mean(dim=1)


class RecurrentStage(nn.Module):
    """A bidirectional LSTM or GRU over a sequence; returns every step's output.

    Args:
        cell: ``"lstm"`` or ``"gru"``.
        in_features: Width of each step of the input sequence.
        hidden: Hidden units per direction.
        layers: Stacked recurrent layers.
        dropout: Between stacked layers (ignored with one layer).
    """

    def __init__(
        self, cell: str, in_features: int, hidden: int, layers: int, dropout: float
    ) -> None:
        super().__init__()
        rnn_class: type[nn.LSTM | nn.GRU] = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_class(
            in_features,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.to_sequence = ToSequence()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, L) feature maps to (N, L, 2 * hidden) outputs."""
        out: torch.Tensor = self.rnn(self.to_sequence(x))[0]
        return out


class RecurrentNet(SpectralCNN):
    """Strided conv stem → bidirectional recurrence → mean over steps → head.

    Stages in ``blocks``: the stem's conv blocks, the :class:`RecurrentStage`, then the
    mean over the sequence.
    """

    def __init__(
        self,
        *,
        cell: str,
        input_shape: Shape,
        n_outputs: int,
        stem_channels: int,
        hidden: int,
        layers: int,
        dropout: float,
    ) -> None:
        stem = [
            ConvBlock(stem_channels, kernel_size=7, stride=2),
            ConvBlock(stem_channels, kernel_size=5, stride=2),
        ]
        stages, (channels, _steps) = build_stack(stem, input_shape, label="stem block")
        recurrent = RecurrentStage(cell, channels, hidden, layers, dropout)
        super().__init__(
            [*stages, recurrent, SequenceMean()],
            num_features=2 * hidden,
            input_shape=input_shape,
            n_outputs=n_outputs,
            head_dropout=dropout,
        )


def _recurrent(
    cell: str,
    n_outputs: int,
    input_shape: Shape,
    stem_channels: int,
    hidden: int,
    layers: int,
    dropout: float,
) -> SpectralCNN:
    check_choice(cell, "cell", RECURRENT_CELLS)
    check_int(stem_channels, "stem_channels", minimum=1)
    check_int(hidden, "hidden", minimum=1)
    check_int(layers, "layers", minimum=1)
    check_fraction(dropout, "dropout")
    return RecurrentNet(
        cell=cell,
        input_shape=input_shape,
        n_outputs=n_outputs,
        stem_channels=stem_channels,
        hidden=hidden,
        layers=layers,
        dropout=dropout,
    )


@register_model
def lstm1d(
    *,
    n_outputs: int,
    input_shape: Shape,
    stem_channels: int = 32,
    hidden: int = 64,
    layers: int = 1,
    dropout: float = 0.2,
) -> SpectralCNN:
    """Bidirectional LSTM over the band sequence, after a strided convolution stem.

    Two conv blocks (kernel 7 then 5, stride 2 each, BN, ReLU) shorten the spectrum 4x
    and give each step a local shape; the LSTM (Hochreiter & Schmidhuber, 1997) reads the
    steps in both directions, and the mean of its outputs over the steps feeds the head.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands).
        stem_channels: Filters of each stem block (the width of a step).
        hidden: LSTM units per direction (features: 2 x hidden).
        layers: Stacked LSTM layers.
        dropout: Between stacked layers and before the output layer.
    """
    return _recurrent("lstm", n_outputs, input_shape, stem_channels, hidden, layers, dropout)


@register_model
def gru1d(
    *,
    n_outputs: int,
    input_shape: Shape,
    stem_channels: int = 32,
    hidden: int = 64,
    layers: int = 1,
    dropout: float = 0.2,
) -> SpectralCNN:
    """Bidirectional GRU over the band sequence, after a strided convolution stem.

    As ``lstm1d`` with a gated recurrent unit (Cho et al., 2014): fewer parameters per
    unit and no separate cell state.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands).
        stem_channels: Filters of each stem block (the width of a step).
        hidden: GRU units per direction (features: 2 x hidden).
        layers: Stacked GRU layers.
        dropout: Between stacked layers and before the output layer.
    """
    return _recurrent("gru", n_outputs, input_shape, stem_channels, hidden, layers, dropout)


class PatchEmbedding(nn.Module):
    """Spectrum (N, C, L) → tokens (N, P, d): one linear map of each ``patch`` bands.

    The end is padded by repeating the last band up to a whole number of patches, and a
    learned :class:`PositionEmbedding` is added to each token.

    Args:
        input_shape: (channels, bands).
        patch: Bands per token.
        width: Token width d.
    """

    def __init__(self, input_shape: Shape, patch: int, width: int) -> None:
        super().__init__()
        channels, bands = input_shape
        self.n_patches = math.ceil(bands / patch)
        self.pad = Pad([(0, self.n_patches * patch - bands)], "replicate")
        self.proj = nn.Conv1d(channels, width, kernel_size=patch, stride=patch)
        self.to_sequence = ToSequence()
        self.position = PositionEmbedding(self.n_patches, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the tokens, shape (N, n_patches, width)."""
        tokens: torch.Tensor = self.position(self.to_sequence(self.proj(self.pad(x))))
        return tokens


class PositionEmbedding(nn.Module):
    """Add a learned vector per token position (ViT's position embedding).

    Args:
        n_tokens: Sequence length.
        width: Token width.
    """

    def __init__(self, n_tokens: int, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, n_tokens, width))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` (N, n_tokens, width) plus the position vectors."""
        return x + self.weight


class EncoderLayer(nn.Module):
    """A pre-norm transformer encoder layer: x + attention(LN x), then x + MLP(LN x).

    Written out rather than ``nn.TransformerEncoderLayer``, whose inference fast path
    skips the attention module (and so the report's trace of it).

    Args:
        width: Token width.
        heads: Attention heads (must divide ``width``).
        mlp_ratio: Hidden width of the MLP as a multiple of ``width``.
        dropout: After attention and in the MLP.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.drop1 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_ratio * width, width),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the updated tokens, same shape as ``x``."""
        h = self.norm1(x)
        attended, _ = self.attn(h, h, h, need_weights=False)
        x = x + self.drop1(attended)
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


class TransformerNet(SpectralCNN):
    """Patch embedding → encoder layers → layer norm and mean over tokens → head.

    Stages in ``blocks``: the :class:`PatchEmbedding`, one :class:`EncoderLayer` each,
    then the final norm and mean.
    """

    def __init__(
        self,
        *,
        input_shape: Shape,
        n_outputs: int,
        patch_size: int,
        width: int,
        heads: int,
        layers: int,
        mlp_ratio: int,
        dropout: float,
    ) -> None:
        embed = PatchEmbedding(input_shape, patch_size, width)
        encoder = [EncoderLayer(width, heads, mlp_ratio, dropout) for _ in range(layers)]
        pool = nn.Sequential(nn.LayerNorm(width), SequenceMean())
        super().__init__(
            [embed, *encoder, pool],
            num_features=width,
            input_shape=input_shape,
            n_outputs=n_outputs,
            head_dropout=dropout,
        )


@register_model
def transformer1d(
    *,
    n_outputs: int,
    input_shape: Shape,
    patch_size: int = 8,
    width: int = 64,
    heads: int = 4,
    layers: int = 3,
    mlp_ratio: int = 2,
    dropout: float = 0.1,
) -> SpectralCNN:
    """Transformer encoder over patches of the spectrum (a 1D vision transformer).

    Every ``patch_size`` bands become one token (a linear map of the patch, plus a learned
    position embedding); ``layers`` pre-norm encoder layers (Vaswani et al., 2017) let
    every token attend to all others; the mean token after a final layer norm feeds the
    head. 210 bands at 10 nm make 27 tokens.

    Args:
        n_outputs: Number of targets.
        input_shape: (channels, bands).
        patch_size: Bands per token.
        width: Token width.
        heads: Attention heads; must divide ``width``.
        layers: Encoder layers.
        mlp_ratio: MLP hidden width as a multiple of ``width``.
        dropout: In attention and MLP, and before the output layer.
    """
    check_int(patch_size, "patch_size", minimum=1)
    check_int(width, "width", minimum=1)
    check_int(heads, "heads", minimum=1)
    check_int(layers, "layers", minimum=1)
    check_int(mlp_ratio, "mlp_ratio", minimum=1)
    check_fraction(dropout, "dropout")
    if width % heads:
        raise SpecsoilError(f"heads ({heads}) must divide width ({width})")
    return TransformerNet(
        input_shape=input_shape,
        n_outputs=n_outputs,
        patch_size=patch_size,
        width=width,
        heads=heads,
        layers=layers,
        mlp_ratio=mlp_ratio,
        dropout=dropout,
    )
