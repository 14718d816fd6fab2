"""The registry of named architectures: ``create_model(name, n_outputs=..., input_shape=...)``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

from specsoil._errors import SpecsoilError
from specsoil.nets._base import SpectralCNN, check_input_shape
from specsoil.nets._blocks import Shape, check_int, jsonable
from specsoil.preprocess._spectrogram import spectrogram_shape

InputKind = Literal["spectrum", "spectrogram", "any"]
Factory = Callable[..., SpectralCNN]

_INPUT_KINDS: tuple[InputKind, ...] = ("spectrum", "spectrogram", "any")
_DIMS: dict[InputKind, int | None] = {"spectrum": 1, "spectrogram": 2, "any": None}
_REQUIRED = ("n_outputs", "input_shape")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the registry knows about an architecture, for listings and help.

    Attributes:
        name: Registry name.
        input_kind: ``"spectrum"`` (input (C, bands)), ``"spectrogram"`` (input (C, F, T),
            e.g. from :class:`specsoil.preprocess.Spectrogram`) or ``"any"``.
        summary: First line of the factory's docstring.
        options: The factory's options and their defaults, JSON-serialisable.
    """

    name: str
    input_kind: InputKind
    summary: str
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Entry:
    factory: Factory
    input_kind: InputKind
    defaults: dict[str, Any]


_MODELS: dict[str, _Entry] = {}


def _options_of(fn: Factory) -> dict[str, Any]:
    """Return the factory's options with their defaults; reject signatures that break configs."""
    params = inspect.signature(fn).parameters
    missing = [name for name in _REQUIRED if name not in params]
    if missing:
        raise ValueError(f"model factory {fn.__name__!r} must accept {missing}")
    defaults: dict[str, Any] = {}
    for name, param in params.items():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise ValueError(
                f"model factory {fn.__name__!r}: parameter {name!r} must be keyword-only "
                "(put it after '*')"
            )
        if name in _REQUIRED:
            continue
        if param.default is inspect.Parameter.empty:
            raise ValueError(
                f"model factory {fn.__name__!r}: option {name!r} needs a default so that "
                "create_model(name, n_outputs=..., input_shape=...) works"
            )
        defaults[name] = param.default
    return defaults


@overload
def register_model(fn: Factory, /) -> Factory: ...


@overload
def register_model(*, input_kind: InputKind = "spectrum") -> Callable[[Factory], Factory]: ...


def register_model(
    fn: Factory | None = None, /, *, input_kind: InputKind = "spectrum"
) -> Factory | Callable[[Factory], Factory]:
    """Register a model factory under its function name (STYLE §4).

    Use as ``@register_model`` for networks on spectra, or
    ``@register_model(input_kind="spectrogram")`` for networks on spectrograms. The factory
    takes keyword-only ``n_outputs``, ``input_shape`` and typed options with defaults
    (scalars or tuples, so configs stay flat). The returned function builds through
    :func:`create_model`, so its models carry a :meth:`SpectralCNN.config` either way.

    Args:
        fn: The factory (when used without arguments).
        input_kind: ``"spectrum"``, ``"spectrogram"`` or ``"any"``.

    Returns:
        The wrapped factory, or a decorator when called with ``input_kind`` only.

    Raises:
        ValueError: If the name is taken or the factory's signature is unsuitable.
    """
    if input_kind not in _INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {list(_INPUT_KINDS)}; got {input_kind!r}")

    def decorate(factory: Factory) -> Factory:
        name = factory.__name__
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = _Entry(factory, input_kind, _options_of(factory))

        @functools.wraps(factory)
        def build(*, n_outputs: int, input_shape: Sequence[int], **options: Any) -> SpectralCNN:
            return create_model(name, n_outputs=n_outputs, input_shape=input_shape, **options)

        return build

    return decorate if fn is None else decorate(fn)


def _entry(name: str) -> _Entry:
    if not isinstance(name, str) or name not in _MODELS:
        raise SpecsoilError(f"unknown model {name!r}; available: {list_models()}")
    return _MODELS[name]


def _tuples(value: Any) -> Any:
    """Lists from JSON/YAML configs become tuples, the type factories declare."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def list_models() -> list[str]:
    """Return the registered model names, sorted."""
    return sorted(_MODELS)


def describe_model(name: str) -> ModelInfo:
    """Return the input kind, one-line summary and default options of a registered model.

    Raises:
        SpecsoilError: If ``name`` is not registered.
    """
    entry = _entry(name)
    doc = inspect.getdoc(entry.factory) or ""
    return ModelInfo(
        name=name,
        input_kind=entry.input_kind,
        summary=doc.splitlines()[0] if doc else "",
        options=jsonable(entry.defaults),
    )


def create_model(
    name: str, *, n_outputs: int, input_shape: Sequence[int], **kwargs: Any
) -> SpectralCNN:
    """Build a registered architecture.

    ``create_model(**model.config())`` rebuilds the same architecture, so a saved
    ``state_dict`` plus config reloads a model exactly.

    Args:
        name: A name from :func:`list_models`.
        n_outputs: Number of outputs (targets), >= 1.
        input_shape: One sample without the batch: ``(channels, bands)`` for networks on
            spectra (several channels, e.g. absorbance and its derivative, are allowed),
            ``(channels, frequencies, frames)`` for networks on spectrograms (see
            :func:`input_shape_for`). Lists are accepted.
        **kwargs: The model's options (see :func:`describe_model`); lists are turned into
            tuples, so JSON configs work.

    Returns:
        The model, in train mode, on the CPU.

    Raises:
        SpecsoilError: For an unknown name (the message lists the models), unknown options
            (it lists the accepted ones), an invalid option or shape, or blocks that do not
            fit the input (it names the block and suggests a fix).
    """
    entry = _entry(name)
    unknown = sorted(set(kwargs) - set(entry.defaults))
    if unknown:
        raise SpecsoilError(
            f"model {name!r} has no option(s) {unknown}; it accepts {sorted(entry.defaults)}"
        )
    try:
        shape = check_input_shape(input_shape, dims=_DIMS[entry.input_kind])
        n_outputs = check_int(n_outputs, "n_outputs", minimum=1)
        options = {**entry.defaults, **{key: _tuples(value) for key, value in kwargs.items()}}
        model = entry.factory(n_outputs=n_outputs, input_shape=shape, **options)
    except SpecsoilError as exc:
        raise SpecsoilError(f"model {name!r}: {exc}") from None
    model._set_config(name, options)
    return model


def input_shape_for(
    name: str,
    n_bands: int,
    *,
    in_channels: int = 1,
    nperseg: int = 32,
    noverlap: int | None = None,
) -> Shape:
    """Return the ``input_shape`` that model ``name`` needs for spectra of ``n_bands`` bands.

    Networks on spectra get ``(in_channels, n_bands)``; networks on spectrograms get
    ``(in_channels, F, T)`` for :class:`specsoil.preprocess.Spectrogram` with the given
    ``nperseg`` and ``noverlap``.

    Raises:
        SpecsoilError: For an unknown model or invalid sizes.
    """
    entry = _entry(name)
    n_bands = check_int(n_bands, "n_bands", minimum=1)
    in_channels = check_int(in_channels, "in_channels", minimum=1)
    if entry.input_kind != "spectrogram":
        return (in_channels, n_bands)
    nperseg = check_int(nperseg, "nperseg", minimum=2)
    if nperseg > n_bands:
        raise SpecsoilError(f"nperseg={nperseg} must be <= the number of bands ({n_bands})")
    try:
        return (in_channels, *spectrogram_shape(n_bands, nperseg, noverlap))
    except ValueError as exc:
        raise SpecsoilError(str(exc)) from None
