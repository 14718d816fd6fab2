"""Feature maps of every convolution for one spectrum, drawn over wavelength as a PNG file.

Positions of a layer are mapped back to nm with the receptive-field recurrence along the
last input axis (Araujo, Norris & Sim, 2019, Distill, "Computing receptive fields of
convolutional neural networks"): a layer with kernel k, stride s, dilation d and left
padding p maps the field (start, jump, size) of its input to
(start - p·jump, jump·s, size + (k - 1)·d·jump), from (0, 1, 1) at the input. Position i
then covers input bands start + i·jump ... start + i·jump + size - 1, and is drawn at the
wavelength of the centre of that range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from specsoil._atomic import atomic_path
from specsoil._errors import SpecsoilError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True, slots=True)
class LayerGeometry:
    """Where the positions of a layer's output lie on the input's last axis.

    Attributes:
        start: Input index of the first band seen by position 0 (negative inside padding).
        jump: Total stride: input bands between neighbouring positions.
        size: Receptive field in input bands.
    """

    start: int
    jump: int
    size: int


def layer_wavelengths(
    wavelengths: ArrayLike, n_positions: int, geometry: LayerGeometry
) -> NDArray[np.float64]:
    """The wavelength at the centre of each position's receptive field.

    Args:
        wavelengths: Band centres of the network input in nm, ascending, shape (L,).
        n_positions: Positions of the layer output along its last axis.
        geometry: The layer's :class:`LayerGeometry`.

    Returns:
        Shape (n_positions,): the wavelength at input index
        ``start + i * jump + (size - 1) / 2``, extrapolated linearly with the end band
        steps for positions centred in the padding.

    Raises:
        SpecsoilError: If ``wavelengths`` is not ascending with at least 2 bands.
    """
    grid = np.asarray(wavelengths, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.diff(grid) > 0):
        raise SpecsoilError(
            f"wavelengths must be ascending with at least 2 bands; got shape {grid.shape}"
        )
    index = geometry.start + geometry.jump * np.arange(n_positions) + (geometry.size - 1) / 2
    inside = np.interp(index, np.arange(grid.size), grid)
    below = grid[0] + index * (grid[1] - grid[0])
    above = grid[-1] + (index - (grid.size - 1)) * (grid[-1] - grid[-2])
    centres = np.where(index < 0, below, np.where(index > grid.size - 1, above, inside))
    return np.asarray(centres, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Map:
    name: str
    activation: NDArray[np.float32]  # (C, L') or (C, F', T')
    geometry: LayerGeometry


def conv_feature_maps(module: nn.Module, x: torch.Tensor) -> list[_Map]:
    """Run one input through ``module`` and collect every convolution's output.

    Geometries come from :func:`specsoil.nets.trace_fields`, which follows every tensor
    through the forward pass.
    """
    from torch import nn

    from specsoil.nets import trace_fields

    return [
        _Map(
            layer.name,
            layer.output[0].detach().float().cpu().numpy(),
            LayerGeometry(layer.field.start, layer.field.jump, layer.field.size),
        )
        for layer in trace_fields(module, x)
        if isinstance(layer.module, nn.Conv1d | nn.Conv2d)
    ]


def _network(estimator_or_module: Any) -> nn.Module:
    from torch import nn

    if isinstance(estimator_or_module, nn.Module):
        return estimator_or_module
    fitted = getattr(estimator_or_module, "module_", None)
    if isinstance(fitted, list) and fitted:
        fitted = fitted[0]  # an ensemble: its first member stands for the design
    if isinstance(fitted, nn.Module):
        return fitted
    raise SpecsoilError(
        "plot_feature_maps needs a torch network or a fitted CNNRegressor/CNNClassifier; "
        f"got {type(estimator_or_module).__name__}"
    )


def _input(network: nn.Module, spectrum: ArrayLike) -> torch.Tensor:
    import torch

    values = np.asarray(spectrum, dtype=np.float32)
    expected = getattr(network, "input_shape", None)
    if values.ndim == 1:
        values = values[None, :]  # (1, L): one channel
    if expected is not None and values.shape != tuple(expected):
        if values.shape[0] == 1 and values.shape[1:] == tuple(expected):
            values = values[0]  # a batch of one was given
        else:
            raise SpecsoilError(
                f"spectrum has shape {np.asarray(spectrum).shape} but the network takes "
                f"{tuple(expected)} (preprocess it as for training)"
            )
    reference = next(network.parameters())
    return torch.as_tensor(values[None], dtype=reference.dtype, device=reference.device)


def plot_feature_maps(
    estimator_or_module: Any,
    spectrum: ArrayLike,
    wavelengths: ArrayLike | None,
    path: str | os.PathLike[str],
    *,
    max_channels: int = 8,
) -> Path:
    """Draw the input and every convolution's activations for one spectrum.

    1D layers are drawn over wavelength: up to ``max_channels`` channels as thin lines, the
    mean over all channels in black with a band of one standard deviation. 2D layers (on
    spectrograms) are drawn as images of the mean over channels, with the frame axis
    mapped to wavelength where possible.

    Args:
        estimator_or_module: A fitted ``CNNRegressor``/``CNNClassifier`` (the first member
            of an ensemble is drawn) or a ``specsoil.nets.SpectralCNN``.
        spectrum: One network input, already preprocessed as for training: shape (L,),
            (C, L) or, for 2D networks, (1, F, T).
        wavelengths: The nm of each position along the input's last axis (bands, or frame
            centres of a spectrogram); None to draw against the position index.
        path: The PNG file to write (its folder is created; replaced atomically).
        max_channels: Channels drawn per 1D layer, >= 1.

    Returns:
        The path written.

    Raises:
        SpecsoilError: If the network has no convolution, the spectrum does not fit it,
            or the wavelengths do not match the input.
    """
    if isinstance(max_channels, bool) or not isinstance(max_channels, int) or max_channels < 1:
        raise SpecsoilError(f"max_channels must be an integer >= 1; got {max_channels!r}")
    network = _network(estimator_or_module)
    x = _input(network, spectrum)
    length = int(x.shape[-1])
    grid = np.arange(length, dtype=np.float64) if wavelengths is None else wavelengths
    grid = np.asarray(grid, dtype=np.float64)
    if grid.shape != (length,):
        raise SpecsoilError(
            f"wavelengths has shape {grid.shape}; expected ({length},), one per position "
            "along the input's last axis"
        )
    maps = conv_feature_maps(network, x)
    if not maps:
        raise SpecsoilError(f"{type(network).__name__} has no convolution layer to draw")
    unit = "nm" if wavelengths is not None else "position"
    figure = Figure(figsize=(9.0, 1.9 * (len(maps) + 1)), layout="constrained")
    axes = figure.subplots(len(maps) + 1, 1, sharex=True, squeeze=False)[:, 0]
    image = x[0].detach().float().cpu().numpy()
    _draw(axes[0], "input", image, grid, LayerGeometry(0, 1, 1), max_channels)
    for ax, item in zip(axes[1:], maps, strict=True):
        _draw(ax, item.name, item.activation, grid, item.geometry, max_channels)
    axes[-1].set_xlabel(f"input axis ({unit})" if x.ndim == 4 else f"wavelength ({unit})")
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(final) as tmp:
        FigureCanvasAgg(figure)  # attaches the Agg canvas; no pyplot global state
        figure.savefig(tmp, format="png", dpi=100)
    return final


def _draw(
    ax: Any,
    name: str,
    values: NDArray[np.float32],
    grid: NDArray[np.float64],
    geometry: LayerGeometry,
    max_channels: int,
) -> None:
    x = layer_wavelengths(grid, values.shape[-1], geometry)
    channels = values.shape[0]
    if values.ndim == 3:  # (C, F, T): an image per layer, averaged over channels
        half = 0.5 * (x[1] - x[0]) if x.size > 1 else 0.5
        mean = values.mean(axis=0)
        ax.imshow(
            mean,
            aspect="auto",
            origin="lower",
            extent=(x[0] - half, x[-1] + half, -0.5, mean.shape[0] - 0.5),
            cmap="viridis",
        )
        ax.set_ylabel("frequency bin")
        ax.set_title(f"{name}: mean of {channels} channels, {tuple(values.shape)}", fontsize=9)
        return
    for channel in values[:max_channels]:
        ax.plot(x, channel, linewidth=0.7, alpha=0.6)
    if channels > 1:
        mean, spread = values.mean(axis=0), values.std(axis=0)
        ax.fill_between(x, mean - spread, mean + spread, color="0.6", alpha=0.3, linewidth=0)
        ax.plot(x, mean, color="black", linewidth=1.2)
    shown = min(channels, max_channels)
    legend = " (black: mean ± SD)" if channels > 1 else ""
    ax.set_title(
        f"{name}: {shown} of {channels} channels{legend}, field {geometry.size} bands, "
        f"stride {geometry.jump}",
        fontsize=9,
    )
