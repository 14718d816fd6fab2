"""Composite layers of the registered families: residual and inception blocks, an STFT layer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import get_window
from torch import nn

from specsoil._errors import SpecsoilError
from specsoil.nets._blocks import ConvBlock, Shape, build_conv_block, make_activation
from specsoil.preprocess._spectrogram import resolve_noverlap, spectrogram_shape


class ResidualBlock(nn.Module):
    """A basic residual block: ``act(main(x) + shortcut(x))`` (He et al., 2016, CVPR).

    ``main`` is two convolutions with BatchNorm (the second without activation);
    ``shortcut`` is the identity, or a 1x1 convolution with BatchNorm (a projection) when
    the stride or the number of channels changes.
    """

    def __init__(self, main: nn.Module, shortcut: nn.Module, activation: str) -> None:
        super().__init__()
        self.main = main
        self.shortcut = shortcut
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block output, shape (N, out_channels, ceil(L / stride))."""
        out: torch.Tensor = self.act(self.main(x) + self.shortcut(x))
        return out


def build_residual_block(
    in_shape: Shape,
    out_channels: int,
    *,
    kernel_size: int,
    stride: int,
    activation: str,
    where: str,
) -> tuple[ResidualBlock, Shape]:
    """Check then build a 1D :class:`ResidualBlock`; errors name ``where``.

    Returns:
        The block and its output shape.
    """
    first = ConvBlock(out_channels, kernel_size=kernel_size, stride=stride, activation=activation)
    second = ConvBlock(out_channels, kernel_size=kernel_size, activation="none")
    conv1, shape = build_conv_block(first, in_shape, where=f"{where} conv 1")
    conv2, out_shape = build_conv_block(second, shape, where=f"{where} conv 2")
    shortcut: nn.Module = nn.Identity()
    if stride != 1 or in_shape[0] != out_channels:
        projection = ConvBlock(
            out_channels, kernel_size=1, stride=stride, padding=0, activation="none"
        )
        shortcut, short_shape = build_conv_block(projection, in_shape, where=f"{where} shortcut")
        if short_shape != out_shape:
            raise SpecsoilError(
                f"{where}: the shortcut gives {short_shape} but the main path {out_shape}"
            )
    return ResidualBlock(nn.Sequential(conv1, conv2), shortcut, activation), out_shape


class InceptionModule(nn.Module):
    """Parallel branches concatenated along channels (Szegedy et al., 2015, CVPR, Fig. 2b).

    Each branch keeps the length (``"same"`` padding), so the outputs can be stacked.
    """

    def __init__(self, branches: Sequence[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the branch outputs stacked, shape (N, sum of branch channels, L)."""
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def build_inception_module(
    in_shape: Shape,
    out_channels: int,
    *,
    kernel_sizes: Sequence[int],
    activation: str,
    where: str,
) -> tuple[InceptionModule, Shape]:
    """Check then build a 1D GoogLeNet-style inception module.

    Branches: a 1x1 convolution for kernel size 1; a 1x1 bottleneck (half the branch
    width) then a k-wide convolution for every other kernel size; and a 3-wide max pool
    (stride 1) followed by a 1x1 convolution. ``out_channels`` is split evenly between the
    branches, any remainder going to the first.

    Returns:
        The module and its output shape ``(out_channels, L)``.

    Raises:
        SpecsoilError: If ``out_channels`` is smaller than the number of branches.
    """
    n_branches = len(kernel_sizes) + 1
    if out_channels < n_branches:
        raise SpecsoilError(
            f"{where}: {out_channels} channels cannot be split between {n_branches} branches; "
            f"give at least {n_branches}"
        )
    base = out_channels // n_branches
    widths = [base + out_channels % n_branches] + [base] * (n_branches - 1)
    branches: list[nn.Module] = []
    for index, (kernel, width) in enumerate(zip(kernel_sizes, widths, strict=False), start=1):
        label = f"{where} branch {index} (kernel {kernel})"
        if kernel == 1:
            module, _ = build_conv_block(
                ConvBlock(width, kernel_size=1, activation=activation), in_shape, where=label
            )
        else:
            bottleneck = ConvBlock(max(width // 2, 1), kernel_size=1, activation=activation)
            reduce, shape = build_conv_block(bottleneck, in_shape, where=label)
            conv, _ = build_conv_block(
                ConvBlock(width, kernel_size=kernel, activation=activation), shape, where=label
            )
            module = nn.Sequential(reduce, conv)
        branches.append(module)
    projection, _ = build_conv_block(
        ConvBlock(widths[-1], kernel_size=1, activation=activation),
        in_shape,
        where=f"{where} pool branch",
    )
    branches.append(nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), projection))
    return InceptionModule(branches), (out_channels, in_shape[1])


class STFT(nn.Module):
    """Log-magnitude short-time Fourier transform inside a network: (N, C, L) → (N, C, F, T).

    Computes the same spectrogram as :class:`specsoil.preprocess.Spectrogram` (zero
    extension by ``nperseg // 2`` at both ends, zero padding to whole hops, magnitudes
    divided by the window sum) with :func:`torch.stft`, so a network can take plain spectra
    and still see their spectrogram. It has no parameters; the window is a non-persistent
    buffer, so state_dicts do not depend on it.

    Args:
        n_bands: Number of bands L of the input.
        nperseg: Segment length in bands, <= ``n_bands``.
        noverlap: Overlap in bands, < ``nperseg``; None for half a segment.
        window: A window accepted by :func:`scipy.signal.get_window`.
        log: Return ``log(|Z| + eps)`` instead of ``|Z|``.
        eps: Added before the log, > 0.
    """

    def __init__(
        self,
        n_bands: int,
        *,
        nperseg: int,
        noverlap: int | None,
        window: str | tuple[str, float],
        log: bool,
        eps: float,
    ) -> None:
        super().__init__()
        self.nperseg = nperseg
        self.noverlap = resolve_noverlap(nperseg, noverlap)
        self.hop = nperseg - self.noverlap
        self.log = log
        self.eps = eps
        self.n_frequencies, self.n_frames = spectrogram_shape(n_bands, nperseg, noverlap)
        taps = np.asarray(get_window(window, nperseg), dtype=np.float64)
        # float64 so float64 inputs match scipy exactly; cast to the input dtype in forward.
        self.register_buffer("window", torch.tensor(taps, dtype=torch.float64), persistent=False)
        self.scale = float(taps.sum())
        used = (self.n_frames - 1) * self.hop + nperseg
        self.pads = (nperseg // 2, used - n_bands - nperseg // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the spectrogram of every channel, shape (N, C, F, T)."""
        n, channels, length = x.shape
        flat = F.pad(x.reshape(n * channels, length), self.pads)  # (N*C, L + pads)
        window = self.get_buffer("window")
        coefficients = torch.stft(
            flat,
            n_fft=self.nperseg,
            hop_length=self.hop,
            window=window.to(flat.dtype),
            center=False,
            onesided=True,
            return_complex=True,
        )  # (N*C, F, T)
        magnitude = coefficients.abs() / self.scale
        if self.log:
            magnitude = torch.log(magnitude + self.eps)
        return magnitude.reshape(n, channels, self.n_frequencies, self.n_frames)  # (N, C, F, T)

    def extra_repr(self) -> str:
        """Show the STFT settings in ``print(model)``."""
        return f"nperseg={self.nperseg}, hop={self.hop}, log={self.log}"
