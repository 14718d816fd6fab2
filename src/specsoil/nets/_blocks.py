"""Convolution blocks and heads declared as data, checked by shape inference before building.

A :class:`ConvBlock` is conv → BatchNorm/activation (in the chosen order) → pooling →
dropout. :func:`conv_block_output_shape` works out the output shape from the settings
alone, so a stack that does not fit the input (a length that shrinks to 0, reflect padding
wider than the input) is refused with a message naming the block before any layer exists.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from specsoil._errors import SpecsoilError

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "sigmoid", "gelu", "none")
PADDING_MODES: tuple[str, ...] = ("zeros", "reflect", "replicate", "circular")
BATCHNORM_PLACEMENTS: tuple[str, ...] = ("before_activation", "after_activation", "none")
POOLS: tuple[str, ...] = ("max", "avg")
HEAD_POOLINGS: tuple[str, ...] = ("flatten", "global_avg", "global_max")

# (channels, *spatial): the shape of one sample, without the batch axis.
Shape = tuple[int, ...]

_AXIS_NAMES = {1: ("bands",), 2: ("rows (frequency bins)", "columns (frames)")}
_FIX_HINTS = {
    1: "use padding='same', a smaller kernel or stride, fewer pooling blocks, or more input bands",
    2: (
        "use padding='same', a smaller kernel or stride, fewer pooling blocks, or a larger "
        "input (more bands, or a smaller nperseg/noverlap for the spectrogram)"
    ),
}
# torch.nn.functional.pad names the zero mode "constant".
_PAD_MODES = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "replicate",
    "circular": "circular",
}


def check_int(value: Any, name: str, *, minimum: int) -> int:
    """Return ``value`` as an int, or raise SpecsoilError if it is not an integer >= minimum.

    Args:
        value: The value as given (bool is refused).
        name: What the value is, for the message (e.g. ``"ConvBlock kernel_size"``).
        minimum: Smallest accepted value.

    Returns:
        The value as a Python int.

    Raises:
        SpecsoilError: If ``value`` is not an integer >= ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise SpecsoilError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise SpecsoilError naming them.

    Raises:
        SpecsoilError: If ``value`` is not one of ``choices``.
    """
    if not isinstance(value, str) or value not in choices:
        raise SpecsoilError(f"{name} must be one of {list(choices)}; got {value!r}")
    return value


def check_fraction(value: Any, name: str) -> float:
    """Return a dropout-like probability in [0, 1), or raise SpecsoilError.

    Raises:
        SpecsoilError: If ``value`` is not a number in [0, 1).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= float(value) < 1.0
    ):
        raise SpecsoilError(f"{name} must be a number in [0, 1); got {value!r}")
    return float(value)


def check_int_tuple(
    value: Any, name: str, *, minimum: int, length: int | None = None
) -> tuple[int, ...]:
    """Return a non-empty tuple of integers >= minimum (a list, e.g. from JSON, is accepted).

    Args:
        value: The value as given.
        name: What the value is, for the message.
        minimum: Smallest accepted element.
        length: Required number of elements, or None for any non-zero number.

    Returns:
        The elements as a tuple of Python ints.

    Raises:
        SpecsoilError: If ``value`` is not such a sequence.
    """
    expected = f"{length} integers" if length is not None else "a non-empty tuple of integers"
    if (
        not isinstance(value, tuple | list)
        or not value
        or (length is not None and len(value) != length)
        or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum for v in value
        )
    ):
        raise SpecsoilError(f"{name} must be {expected} >= {minimum}; got {value!r}")
    return tuple(int(v) for v in value)


def _per_axis(value: Any, name: str, dims: int, *, minimum: int) -> tuple[int, ...]:
    """Return one int per spatial axis from an int or a tuple with one value per axis."""
    if isinstance(value, tuple | list):
        return check_int_tuple(value, name, minimum=minimum, length=dims)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise SpecsoilError(
            f"{name} must be an integer >= {minimum} or a tuple of {dims}; got {value!r}"
        )
    return (int(value),) * dims


def _as_tuple(value: Any) -> Any:
    """Lists (from JSON or YAML) become tuples, so frozen specs stay hashable."""
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True, slots=True)
class ConvBlock:
    """One convolution block: conv, BatchNorm and activation, pooling, dropout.

    The block is pure data, checked when created; :func:`build_conv_block` turns it into
    layers for a given input shape. Every size can be an int (same on each axis) or a tuple
    with one value per spatial axis (2D: (frequency, frame)).

    Args:
        out_channels: Number of filters.
        kernel_size: Kernel length in bands (or (height, width) in 2D).
        dims: 1 for spectra (N, C, L), 2 for spectrograms or images (N, C, H, W).
        stride: Step of the convolution.
        padding: Zeros (or ``padding_mode`` values) added at each end, or ``"same"``: the
            output length is ``ceil(L / stride)`` (TensorFlow's rule; with stride 1 the length
            is kept). When the total padding is odd the extra band goes at the end.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        dilation: Spacing between kernel taps.
        pool: None, ``"max"`` or ``"avg"``: pooling after the activation.
        pool_size: Pooling window.
        pool_stride: Pooling step; None for ``pool_size`` (non-overlapping windows).
        batchnorm: ``"before_activation"`` (conv → BN → act), ``"after_activation"``
            (conv → act → BN) or ``"none"``. With BN before the activation the conv has no
            bias, since the BN shift replaces it.
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"gelu"`` or ``"none"``.
        dropout: Probability of zeroing an activation after pooling, in [0, 1).

    Raises:
        SpecsoilError: If a setting is invalid; the message names it and what is accepted.
    """

    out_channels: int
    kernel_size: int | tuple[int, ...] = 3
    dims: int = 1
    stride: int | tuple[int, ...] = 1
    padding: int | tuple[int, ...] | str = "same"
    padding_mode: str = "zeros"
    dilation: int | tuple[int, ...] = 1
    pool: str | None = None
    pool_size: int | tuple[int, ...] = 2
    pool_stride: int | tuple[int, ...] | None = None
    batchnorm: str = "before_activation"
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            object.__setattr__(self, item.name, _as_tuple(getattr(self, item.name)))
        if self.dims not in (1, 2) or isinstance(self.dims, bool):
            raise SpecsoilError(f"ConvBlock dims must be 1 or 2; got {self.dims!r}")
        check_int(self.out_channels, "ConvBlock out_channels", minimum=1)
        self.kernel()
        self.strides()
        self.dilations()
        if self.padding != "same":
            if isinstance(self.padding, str):
                raise SpecsoilError(
                    f"ConvBlock padding must be an integer >= 0, a tuple of {self.dims}, "
                    f"or 'same'; got {self.padding!r}"
                )
            _per_axis(self.padding, "ConvBlock padding", self.dims, minimum=0)
        check_choice(self.padding_mode, "ConvBlock padding_mode", PADDING_MODES)
        if self.pool is not None:
            check_choice(self.pool, "ConvBlock pool", POOLS)
            self.pool_window()
            self.pool_strides()
        check_choice(self.batchnorm, "ConvBlock batchnorm", BATCHNORM_PLACEMENTS)
        check_choice(self.activation, "ConvBlock activation", ACTIVATIONS)
        check_fraction(self.dropout, "ConvBlock dropout")

    def kernel(self) -> tuple[int, ...]:
        """Kernel size per spatial axis."""
        return _per_axis(self.kernel_size, "ConvBlock kernel_size", self.dims, minimum=1)

    def strides(self) -> tuple[int, ...]:
        """Convolution stride per spatial axis."""
        return _per_axis(self.stride, "ConvBlock stride", self.dims, minimum=1)

    def dilations(self) -> tuple[int, ...]:
        """Dilation per spatial axis."""
        return _per_axis(self.dilation, "ConvBlock dilation", self.dims, minimum=1)

    def pool_window(self) -> tuple[int, ...]:
        """Pooling window per spatial axis."""
        return _per_axis(self.pool_size, "ConvBlock pool_size", self.dims, minimum=1)

    def pool_strides(self) -> tuple[int, ...]:
        """Pooling stride per spatial axis (the window when ``pool_stride`` is None)."""
        if self.pool_stride is None:
            return self.pool_window()
        return _per_axis(self.pool_stride, "ConvBlock pool_stride", self.dims, minimum=1)

    def describe(self) -> str:
        """Return ``ConvBlock(...)`` listing only the settings that differ from the defaults."""
        parts = [
            f"{item.name}={getattr(self, item.name)!r}"
            for item in dataclasses.fields(self)
            if item.default is dataclasses.MISSING or getattr(self, item.name) != item.default
        ]
        return f"ConvBlock({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict (tuples as lists)."""
        return {item.name: _jsonable(getattr(self, item.name)) for item in dataclasses.fields(self)}

    @classmethod
    def from_value(cls, value: ConvBlock | Mapping[str, Any], *, dims: int) -> ConvBlock:
        """Return ``value`` as a ConvBlock: as is, or built from a mapping of its settings.

        Args:
            value: A ConvBlock, or a mapping such as ``{"out_channels": 32, "kernel_size": 7}``.
            dims: Used when the mapping has no ``dims`` key.

        Returns:
            The block.

        Raises:
            SpecsoilError: If the mapping has unknown keys or invalid settings.
        """
        if isinstance(value, ConvBlock):
            return value
        if not isinstance(value, Mapping):
            raise SpecsoilError(
                f"a block must be a ConvBlock or a mapping of its settings; got {value!r}"
            )
        names = [item.name for item in dataclasses.fields(cls)]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise SpecsoilError(f"ConvBlock: unknown setting(s) {unknown}; accepted: {names}")
        if "out_channels" not in value:
            raise SpecsoilError(f"ConvBlock: 'out_channels' is required; got {dict(value)!r}")
        return cls(**{"dims": dims, **value})


@dataclass(frozen=True, slots=True)
class Head:
    """How the last feature maps become the outputs: reduction, hidden layers, linear.

    Args:
        pooling: ``"flatten"`` (every position feeds the linear layer, as in the classic
            examples; the input length is then fixed), ``"global_avg"`` or ``"global_max"``
            (one value per channel, so the parameter count does not grow with the bands).
        hidden: Widths of fully connected hidden layers between the reduction and the
            output layer, e.g. ``(120, 84)`` in LeNet-5; ``()`` for none.
        activation: Activation after each hidden layer.
        dropout: Dropout before each fully connected layer (hidden and output), in [0, 1).

    Raises:
        SpecsoilError: If a setting is invalid.
    """

    pooling: str = "global_avg"
    hidden: tuple[int, ...] = ()
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", _as_tuple(self.hidden))
        check_choice(self.pooling, "Head pooling", HEAD_POOLINGS)
        if self.hidden != ():
            check_int_tuple(self.hidden, "Head hidden", minimum=1)
        check_choice(self.activation, "Head activation", ACTIVATIONS)
        check_fraction(self.dropout, "Head dropout")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict (tuples as lists)."""
        return {item.name: _jsonable(getattr(self, item.name)) for item in dataclasses.fields(self)}

    @classmethod
    def from_value(cls, value: Head | Mapping[str, Any] | None) -> Head:
        """Return ``value`` as a Head (None gives the default head).

        Raises:
            SpecsoilError: If the mapping has unknown keys or invalid settings.
        """
        if value is None:
            return cls()
        if isinstance(value, Head):
            return value
        if not isinstance(value, Mapping):
            raise SpecsoilError(f"head must be a Head or a mapping of its settings; got {value!r}")
        names = [item.name for item in dataclasses.fields(cls)]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise SpecsoilError(f"Head: unknown setting(s) {unknown}; accepted: {names}")
        return cls(**value)


def _jsonable(value: Any) -> Any:
    """Tuples become lists and specs become dicts, recursively, for JSON configs."""
    if isinstance(value, ConvBlock | Head):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def jsonable(value: Any) -> Any:
    """Return ``value`` with tuples as lists and blocks/heads as dicts, ready for JSON."""
    return _jsonable(value)


def _does_not_fit(where: str, block: ConvBlock, axis: int, detail: str) -> SpecsoilError:
    unit = _AXIS_NAMES[block.dims][axis]
    return SpecsoilError(
        f"{where} {block.describe()} does not fit its input along the {unit}: {detail}; "
        f"{_FIX_HINTS[block.dims]}"
    )


def resolve_padding(block: ConvBlock, spatial: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Return the (start, end) padding of each spatial axis for an input of size ``spatial``.

    For ``"same"`` the total is ``(ceil(L / s) - 1) * s + (k - 1) * d + 1 - L`` (clipped at
    0), split evenly with any odd band at the end.
    """
    kernel, strides, dilations = block.kernel(), block.strides(), block.dilations()
    if block.padding != "same":
        fixed = _per_axis(block.padding, "ConvBlock padding", block.dims, minimum=0)
        return tuple((p, p) for p in fixed)
    pads = []
    for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def conv_block_output_shape(block: ConvBlock, in_shape: Shape, *, where: str) -> Shape:
    """Infer the output shape of ``block`` for one input sample, without building it.

    Args:
        block: The block.
        in_shape: ``(channels, *spatial)`` of its input.
        where: How to name the block in errors, e.g. ``"block 3"``.

    Returns:
        ``(out_channels, *spatial_out)``.

    Raises:
        SpecsoilError: If the block does not fit: the input has the wrong number of
            spatial axes, the kernel (or pooling window) is longer than the (padded) input,
            or the padding is too wide for ``reflect``/``circular`` mode. The message names
            the block and suggests a fix.
    """
    spatial = in_shape[1:]
    if len(spatial) != block.dims:
        raise SpecsoilError(
            f"{where} {block.describe()} is a {block.dims}D block but its input has "
            f"{len(spatial)} spatial axis/axes, shape {in_shape}; set dims={len(spatial)}"
        )
    pads = resolve_padding(block, spatial)
    out = []
    pool_window, pool_strides = block.pool_window(), block.pool_strides()
    for axis, size in enumerate(spatial):
        k, s, d = block.kernel()[axis], block.strides()[axis], block.dilations()[axis]
        start, end = pads[axis]
        if block.padding_mode == "reflect" and max(start, end) >= size:
            raise _does_not_fit(
                where,
                block,
                axis,
                f"reflect padding of {max(start, end)} needs more than {max(start, end)} "
                f"values but the input has {size}",
            )
        if block.padding_mode == "circular" and max(start, end) > size:
            raise _does_not_fit(
                where,
                block,
                axis,
                f"circular padding of {max(start, end)} needs at least that many values but "
                f"the input has {size}",
            )
        span = (k - 1) * d + 1
        if size + start + end < span:
            raise _does_not_fit(
                where,
                block,
                axis,
                f"the kernel spans {span} (kernel_size={k}, dilation={d}) but the input "
                f"has {size} plus {start + end} padding",
            )
        length = (size + start + end - span) // s + 1
        if block.pool is not None:
            if length < pool_window[axis]:
                raise _does_not_fit(
                    where,
                    block,
                    axis,
                    f"the convolution leaves {length} but the pooling window is "
                    f"{pool_window[axis]}",
                )
            length = (length - pool_window[axis]) // pool_strides[axis] + 1
        out.append(length)
    return (block.out_channels, *out)


class Pad(nn.Module):
    """Pad the spatial axes (possibly unevenly) before a convolution with no padding.

    Used for ``"same"`` padding when the total is odd or the stride is above 1, which
    torch's own ``padding="same"`` does not handle.

    Args:
        pads: ``(start, end)`` per spatial axis, in axis order.
        mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
    """

    def __init__(self, pads: Sequence[tuple[int, int]], mode: str) -> None:
        super().__init__()
        self.pads = tuple(pads)
        self.mode = mode
        # F.pad wants the last axis first.
        self._torch_pads = tuple(p for pair in reversed(self.pads) for p in pair)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` padded, shape (N, C, L + start + end) (per axis in 2D)."""
        return F.pad(x, self._torch_pads, mode=_PAD_MODES[self.mode])

    def extra_repr(self) -> str:
        """Show the padding in ``print(model)``."""
        return f"pads={self.pads}, mode={self.mode!r}"


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for ``relu``, ``tanh``, ``sigmoid``, ``gelu``, ``none``.

    Raises:
        SpecsoilError: If ``name`` is not one of them.
    """
    check_choice(name, "activation", ACTIVATIONS)
    modules: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
        "none": nn.Identity,
    }
    return modules[name]()


def build_conv_block(
    block: ConvBlock, in_shape: Shape, *, where: str
) -> tuple[nn.Sequential, Shape]:
    """Check that ``block`` fits ``in_shape``, then build its layers.

    The layers are named ``pad`` (only for uneven ``"same"`` padding), ``conv``, ``bn``,
    ``act``, ``pool`` and ``drop``, in that order except that ``bn`` follows ``act`` with
    ``batchnorm="after_activation"``; layers that are switched off are left out.

    Args:
        block: The block.
        in_shape: ``(channels, *spatial)`` of its input.
        where: How to name the block in errors.

    Returns:
        The layers and the output shape ``(out_channels, *spatial_out)``.

    Raises:
        SpecsoilError: If the block does not fit (see :func:`conv_block_output_shape`).
    """
    out_shape = conv_block_output_shape(block, in_shape, where=where)
    pads = resolve_padding(block, in_shape[1:])
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if all(start == end for start, end in pads):
        padding = tuple(start for start, _ in pads)
    else:
        layers["pad"] = Pad(pads, block.padding_mode)
        padding = (0,) * block.dims
    conv_class: type[nn.Module] = nn.Conv1d if block.dims == 1 else nn.Conv2d
    # Sizes are tuples with one entry per axis; torch's stubs want fixed-length tuples.
    settings: dict[str, Any] = {
        "kernel_size": block.kernel(),
        "stride": block.strides(),
        "padding": padding,
        "dilation": block.dilations(),
        "bias": block.batchnorm != "before_activation",
        "padding_mode": block.padding_mode,
    }
    layers["conv"] = conv_class(in_shape[0], block.out_channels, **settings)
    norm_class = nn.BatchNorm1d if block.dims == 1 else nn.BatchNorm2d
    if block.batchnorm == "before_activation":
        layers["bn"] = norm_class(block.out_channels)
    if block.activation != "none":
        layers["act"] = make_activation(block.activation)
    if block.batchnorm == "after_activation":
        layers["bn"] = norm_class(block.out_channels)
    if block.pool is not None:
        pool_classes: dict[tuple[str, int], type[nn.Module]] = {
            ("max", 1): nn.MaxPool1d,
            ("max", 2): nn.MaxPool2d,
            ("avg", 1): nn.AvgPool1d,
            ("avg", 2): nn.AvgPool2d,
        }
        layers["pool"] = pool_classes[block.pool, block.dims](
            kernel_size=block.pool_window(), stride=block.pool_strides()
        )
    if block.dropout > 0:
        layers["drop"] = nn.Dropout(block.dropout)
    return nn.Sequential(layers), out_shape


def build_head_stages(head: Head, in_shape: Shape) -> tuple[list[nn.Module], int]:
    """Build the reduction and hidden layers of ``head`` (not the output layer).

    Args:
        head: The head spec.
        in_shape: ``(channels, *spatial)`` of the last feature maps.

    Returns:
        The stages (a reduction stage, then one per hidden layer) and the number of
        features they output, which the output layer takes.
    """
    dims = len(in_shape) - 1
    reduce: OrderedDict[str, nn.Module] = OrderedDict()
    if head.pooling == "flatten":
        n_features = math.prod(in_shape)
    else:
        pool_classes: dict[tuple[str, int], type[nn.Module]] = {
            ("global_avg", 1): nn.AdaptiveAvgPool1d,
            ("global_avg", 2): nn.AdaptiveAvgPool2d,
            ("global_max", 1): nn.AdaptiveMaxPool1d,
            ("global_max", 2): nn.AdaptiveMaxPool2d,
        }
        reduce["pool"] = pool_classes[head.pooling, dims](1)  # (N, C, 1) or (N, C, 1, 1)
        n_features = in_shape[0]
    reduce["flatten"] = nn.Flatten()  # (N, n_features)
    stages: list[nn.Module] = [nn.Sequential(reduce)]
    for width in head.hidden:
        stages.append(dense_stage(n_features, width, head.activation, head.dropout))
        n_features = width
    return stages, n_features


def dense_stage(in_features: int, width: int, activation: str, dropout: float) -> nn.Sequential:
    """Return dropout (if any) → linear → activation, one hidden fully connected layer."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if dropout > 0:
        layers["drop"] = nn.Dropout(dropout)
    layers["linear"] = nn.Linear(in_features, width)
    if activation != "none":
        layers["act"] = make_activation(activation)
    return nn.Sequential(layers)
