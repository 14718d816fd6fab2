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
from collections.abc import Callable, Iterator
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


def _last(value: Any) -> int:
    return int(value[-1]) if isinstance(value, tuple | list) else int(value)


def _window(module: nn.Module) -> tuple[int, int, int, int] | None:
    """(kernel, stride, dilation, left padding) along the last axis, or None if pointwise."""
    from torch import nn

    from specsoil.nets._blocks import Pad
    from specsoil.nets._layers import STFT

    if isinstance(module, nn.Conv1d | nn.Conv2d):
        kernel, dilation = _last(module.kernel_size), _last(module.dilation)
        padding = module.padding
        if padding == "same":
            left = dilation * (kernel - 1) // 2  # torch puts the odd extra band at the end
        else:
            left = 0 if padding == "valid" else _last(padding)
        return kernel, _last(module.stride), dilation, left
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d | nn.AvgPool1d | nn.AvgPool2d):
        kernel = _last(module.kernel_size)
        stride = _last(module.stride) if module.stride else kernel
        return kernel, stride, _last(getattr(module, "dilation", 1)), _last(module.padding)
    if isinstance(module, Pad):
        return 1, 1, 1, int(module.pads[-1][0])
    if isinstance(module, STFT):
        return module.nperseg, module.hop, 1, int(module.pads[0])
    return None


def _advance(module: nn.Module, geometry: LayerGeometry) -> LayerGeometry:
    window = _window(module)
    if window is None:
        return geometry
    kernel, stride, dilation, left = window
    return LayerGeometry(
        start=geometry.start - left * geometry.jump,
        jump=geometry.jump * stride,
        size=geometry.size + (kernel - 1) * dilation * geometry.jump,
    )


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)


@dataclass(frozen=True, slots=True)
class _Map:
    name: str
    activation: NDArray[np.float32]  # (C, L') or (C, F', T')
    geometry: LayerGeometry


def conv_feature_maps(module: nn.Module, x: torch.Tensor) -> list[_Map]:
    """Run one input through ``module`` and collect every convolution's output.

    Geometries travel with the tensors: forward hooks on the leaf layers update them, and a
    torch function mode carries them through the functional ops between layers
    (concatenation, sums, reshapes), taking the widest field where branches meet.
    """
    import torch
    from torch import nn
    from torch.overrides import TorchFunctionMode

    fields: dict[int, tuple[torch.Tensor, LayerGeometry]] = {}

    def lookup(tensor: torch.Tensor) -> LayerGeometry | None:
        entry = fields.get(id(tensor))
        return entry[1] if entry is not None and entry[0] is tensor else None

    class _Carry(TorchFunctionMode):
        def __torch_function__(
            self,
            func: Callable[..., Any],
            types: Any,
            args: tuple[Any, ...] = (),
            kwargs: dict[str, Any] | None = None,
        ) -> Any:
            out = func(*args, **(kwargs or {}))
            known = [g for t in _tensors(list(args)) if (g := lookup(t)) is not None]
            if known:
                widest = max(known, key=lambda g: g.size)
                for tensor in _tensors(out):
                    fields.setdefault(id(tensor), (tensor, widest))
            return out

    names = {id(m): name for name, m in module.named_modules()}
    maps: list[_Map] = []

    def hook(layer: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        before = (lookup(source) if source is not None else None) or LayerGeometry(0, 1, 1)
        after = _advance(layer, before)
        if isinstance(output, torch.Tensor):
            fields[id(output)] = (output, after)
            if isinstance(layer, nn.Conv1d | nn.Conv2d):
                values = output[0].detach().float().cpu().numpy()
                maps.append(_Map(names[id(layer)], values, after))

    leaves = [m for m in module.modules() if next(m.children(), None) is None]
    handles = [leaf.register_forward_hook(hook) for leaf in leaves]
    fields[id(x)] = (x, LayerGeometry(0, 1, 1))
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad(), _Carry():
            module(x)
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return maps


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
