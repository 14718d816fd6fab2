"""Shape report: every layer's output shape, parameters and receptive field, from a real forward.

The shapes come from forward hooks during a forward pass on a dummy batch, so they are the
shapes the model really produces. The receptive field follows the standard recurrence
along the last input axis (Araujo, Norris & Sim, 2019, Distill, "Computing receptive
fields of convolutional neural networks"): a layer with kernel k, stride s and dilation d
maps (r, j) to (r + (k - 1)·d·j, j·s), starting from r = j = 1 at the input; with left
padding p the first position's field starts p·j bands earlier. It is tracked per tensor by
:func:`trace_fields`, so where branches meet (concatenation in inception modules, the sum
in residual blocks) the field is the largest of the branches. Flatten, global pooling and
fully connected layers see the whole input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from torch.overrides import TorchFunctionMode

from specsoil._errors import SpecsoilError
from specsoil.nets._base import SpectralCNN
from specsoil.nets._blocks import Pad
from specsoil.nets._layers import STFT


@dataclass(frozen=True, slots=True)
class LayerRow:
    """One layer call in a shape report.

    Attributes:
        name: Qualified module name (``blocks.0.conv``); ``input`` for the first row.
        kind: The layer's class name (``Conv1d``, ``ReLU``...).
        output_shape: Output of one sample, without the batch axis.
        n_params: Parameters held by this layer itself.
        receptive_field: Input positions along the last input axis that one output value
            depends on, or None when it depends on the whole input. The unit is ``unit``.
        receptive_field_nm: The same in nm (receptive field x band step), when a band step
            was given and the unit is bands; else None.
        unit: ``"bands"`` for networks on spectra; ``"frames"`` (spectrogram time frames)
            for 2D networks on spectrograms, whose last input axis is time.
    """

    name: str
    kind: str
    output_shape: tuple[int, ...]
    n_params: int
    receptive_field: int | None
    receptive_field_nm: float | None
    unit: str


@dataclass(frozen=True, slots=True)
class ReceptiveField:
    """Where the positions of a tensor lie along the network input's last axis.

    Attributes:
        start: Input index of the first band seen by position 0 (negative inside padding).
        jump: Total stride: input positions between neighbouring positions.
        size: Receptive field in input positions.
        whole: True once a layer (flatten, global pooling, fully connected) sees the whole
            input; ``start``, ``jump`` and ``size`` then keep their last local values.
    """

    start: int
    jump: int
    size: int
    whole: bool = False


@dataclass(frozen=True, slots=True)
class TracedLayer:
    """One leaf layer call seen by :func:`trace_fields`.

    Attributes:
        name: Qualified module name (``blocks.0.conv``).
        module: The layer.
        output: Its output tensor (detached: the trace runs without gradients).
        field: The receptive field of that output.
    """

    name: str
    module: nn.Module
    output: torch.Tensor
    field: ReceptiveField


_INPUT_FIELD = ReceptiveField(start=0, jump=1, size=1)
_GLOBAL_LAYERS = (
    # Recurrences and attention relate every position of the sequence to every other.
    nn.LSTM,
    nn.GRU,
    nn.MultiheadAttention,
    nn.Flatten,
    nn.Linear,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
)
_POOL_LAYERS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)


def _last(value: Any) -> int:
    """The value along the last axis of an int-or-tuple layer setting."""
    return int(value[-1]) if isinstance(value, tuple | list) else int(value)


def _window(module: nn.Module) -> tuple[int, int, int, int] | None:
    """(kernel, stride, dilation, left padding) along the last axis, or None if pointwise."""
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        kernel, dilation = _last(module.kernel_size), _last(module.dilation)
        padding = module.padding
        if padding == "same":
            left = dilation * (kernel - 1) // 2  # torch puts the odd extra band at the end
        else:
            left = 0 if padding == "valid" else _last(padding)
        return kernel, _last(module.stride), dilation, left
    if isinstance(module, _POOL_LAYERS):
        kernel = _last(module.kernel_size)
        stride = _last(module.stride) if module.stride else kernel
        return kernel, stride, _last(getattr(module, "dilation", 1)), _last(module.padding)
    if isinstance(module, Pad):
        return 1, 1, 1, int(module.pads[-1][0])
    if isinstance(module, STFT):
        return module.nperseg, module.hop, 1, int(module.pads[0])
    return None  # element-wise layers (activations, BatchNorm, dropout) keep the field


def _layer_field(module: nn.Module, field: ReceptiveField) -> ReceptiveField:
    """Apply one layer's kernel/stride/dilation/padding to the field of its input."""
    if field.whole or isinstance(module, _GLOBAL_LAYERS):
        return ReceptiveField(field.start, field.jump, field.size, whole=True)
    window = _window(module)
    if window is None:
        return field
    kernel, stride, dilation, left = window
    return ReceptiveField(
        start=field.start - left * field.jump,
        jump=field.jump * stride,
        size=field.size + (kernel - 1) * dilation * field.jump,
    )


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


class _FieldTracker(TorchFunctionMode):
    """Carry receptive fields through the functional ops between layers (cat, add, view).

    Each tensor's field is kept under ``id(tensor)`` together with the tensor itself, so an
    id cannot be reused while the trace runs. A layer's forward hook overwrites what this
    mode guessed for its output.
    """

    def __init__(self, fields: dict[int, tuple[torch.Tensor, ReceptiveField]]) -> None:
        super().__init__()
        self.fields = fields

    def lookup(self, tensor: torch.Tensor) -> ReceptiveField | None:
        entry = self.fields.get(id(tensor))
        return entry[1] if entry is not None and entry[0] is tensor else None

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        known = [f for t in _tensors((args, kwargs or {})) if (f := self.lookup(t)) is not None]
        if known:
            widest = max(known, key=lambda f: f.size)
            merged = ReceptiveField(
                start=widest.start,
                jump=max(f.jump for f in known),
                size=widest.size,
                whole=any(f.whole for f in known),
            )
            for tensor in _tensors(out):
                self.fields[id(tensor)] = (tensor, merged)
        return out


# Layers reported as one: attention calls its output projection functionally, so that
# sub-module never runs on its own.
_OPAQUE_LAYERS = (nn.MultiheadAttention,)


def report_layers(model: nn.Module) -> list[nn.Module]:
    """The layers the report has a row for: leaves, and opaque layers (not their insides)."""
    inside: set[int] = set()
    layers: list[nn.Module] = []
    for module in model.modules():
        if id(module) in inside:
            continue
        if isinstance(module, _OPAQUE_LAYERS):
            inside.update(id(m) for m in module.modules())
            layers.append(module)
        elif next(module.children(), None) is None:
            layers.append(module)
    return layers


def trace_fields(model: nn.Module, x: torch.Tensor) -> list[TracedLayer]:
    """Run ``x`` through ``model`` and give every leaf layer call's output and field.

    Fields travel with the tensors: forward hooks on the leaf layers advance them, and a
    torch function mode carries them through the functional ops between layers
    (concatenation, sums, reshapes), taking the widest field where branches meet. The model
    runs in eval mode without gradients; its train/eval mode is restored afterwards.

    Args:
        model: The network (any module; the field is along the last axis of ``x``).
        x: A batch of network inputs.

    Returns:
        One entry per leaf layer call that returns a tensor (or a tuple led by one, as
        recurrent and attention layers do), in execution order.
    """
    names = {id(module): name for name, module in model.named_modules()}
    fields: dict[int, tuple[torch.Tensor, ReceptiveField]] = {id(x): (x, _INPUT_FIELD)}
    tracker = _FieldTracker(fields)
    traced: list[TracedLayer] = []

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        before = (tracker.lookup(source) if source is not None else None) or _INPUT_FIELD
        after = _layer_field(module, before)
        for tensor in _tensors(output):
            fields[id(tensor)] = (tensor, after)
        # Recurrent and attention layers return (sequence output, state or weights).
        first = output[0] if isinstance(output, tuple) and output else output
        if isinstance(first, torch.Tensor):
            traced.append(TracedLayer(names[id(module)], module, first, after))

    leaves = report_layers(model)
    handles = [leaf.register_forward_hook(hook) for leaf in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), tracker:
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return traced


def _band_step(
    model: SpectralCNN, wavelengths: ArrayLike | None, band_step: float | None
) -> float | None:
    if wavelengths is not None and band_step is not None:
        raise SpecsoilError("shape_report: give wavelengths or band_step, not both")
    if band_step is not None:
        if not isinstance(band_step, int | float) or not math.isfinite(band_step) or band_step <= 0:
            raise SpecsoilError(
                f"shape_report: band_step must be a number > 0 nm; got {band_step!r}"
            )
        return float(band_step)
    if wavelengths is None:
        return None
    grid = np.asarray(wavelengths, dtype=np.float64)
    if grid.ndim != 1 or grid.size != model.input_shape[-1]:
        raise SpecsoilError(
            f"shape_report: wavelengths has shape {grid.shape} but the model takes "
            f"{model.input_shape[-1]} positions along its last input axis; give one "
            "wavelength per band"
        )
    steps = np.diff(grid)
    if grid.size < 2 or not np.all(np.isfinite(grid)) or np.any(steps <= 0):
        raise SpecsoilError("shape_report: wavelengths must be finite, ascending, at least 2")
    return float(np.median(steps))  # an irregular grid is summarised by its typical step


def shape_report(
    model: SpectralCNN,
    *,
    wavelengths: ArrayLike | None = None,
    band_step: float | None = None,
) -> list[LayerRow]:
    """Run a dummy batch through ``model`` and report every layer call in order.

    The model runs in eval mode without gradients on a batch of 2 random inputs of its
    ``input_shape`` (on its device and dtype); its train/eval mode is restored afterwards.

    Args:
        model: The network.
        wavelengths: Band centres in nm, one per input band, to express the receptive field
            in nm (with the median band step). Only used for networks on spectra (input
            (C, bands)); for 2D networks on spectrograms the field is in frames.
        band_step: The band step in nm, instead of ``wavelengths``.

    Returns:
        One row for the input, then one per leaf layer call, in execution order.

    Raises:
        SpecsoilError: If the wavelengths do not match the input or the step is invalid.
    """
    step = _band_step(model, wavelengths, band_step)
    unit = "bands" if len(model.input_shape) == 2 else "frames"
    if unit != "bands":
        step = None

    def row(
        name: str, kind: str, out: torch.Tensor, n_params: int, field: ReceptiveField
    ) -> LayerRow:
        size = None if field.whole else field.size
        return LayerRow(
            name=name,
            kind=kind,
            output_shape=tuple(int(v) for v in out.shape[1:]),
            n_params=n_params,
            receptive_field=size,
            receptive_field_nm=None if size is None or step is None else size * step,
            unit=unit,
        )

    reference = next(model.parameters())
    generator = torch.Generator().manual_seed(0)
    dummy = torch.randn((2, *model.input_shape), generator=generator, dtype=reference.dtype)
    dummy = dummy.to(reference.device)
    rows = [row("input", "Input", dummy, 0, _INPUT_FIELD)]
    for layer in trace_fields(model, dummy):
        # An opaque layer owns its sub-modules' parameters (attention's output projection).
        opaque = isinstance(layer.module, _OPAQUE_LAYERS)
        n_params = sum(p.numel() for p in layer.module.parameters(recurse=opaque))
        rows.append(
            row(layer.name, type(layer.module).__name__, layer.output, n_params, layer.field)
        )
    return rows


def format_shape_report(rows: list[LayerRow]) -> str:
    """Return the report as an aligned text table, with the total parameter count.

    Args:
        rows: Rows from :func:`shape_report`.

    Returns:
        The table; "all" marks layers that see the whole input.
    """
    unit = rows[0].unit if rows else "bands"
    header = ("layer", "type", "output shape", "params", f"RF ({unit})", "RF (nm)")
    table = [header]
    has_nm = any(item.receptive_field_nm is not None for item in rows)
    for item in rows:
        field = "all" if item.receptive_field is None else str(item.receptive_field)
        if item.receptive_field_nm is not None:
            nm = f"{item.receptive_field_nm:g}"
        else:
            nm = "all" if has_nm and item.receptive_field is None else "-"
        shape = "(" + ", ".join(map(str, item.output_shape)) + ")"
        table.append((item.name, item.kind, shape, f"{item.n_params:,}", field, nm))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if i < 3 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]
    total = sum(item.n_params for item in rows)
    lines.append(f"total parameters: {total:,}")
    return "\n".join(lines)
