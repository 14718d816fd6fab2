"""Parameter and wavelength-axis checks shared by the preprocessing transformers."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def check_int(value: Any, name: str, *, minimum: int) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum``.

    Args:
        value: The parameter value as given (YAML gives int; bool is refused).
        name: Parameter name, used in the message.
        minimum: Smallest accepted value.

    Returns:
        The value as a Python int.

    Raises:
        ValueError: If ``value`` is not an integer or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming them.

    Raises:
        ValueError: If ``value`` is not one of ``choices``.
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")
    return value


def check_axis(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Validate a wavelength axis: 1-D, finite, strictly ascending, at least one value.

    Args:
        values: Wavelengths in nm (or any ascending spectral coordinate).
        name: Parameter name, used in the message.

    Returns:
        A float64 copy of the axis.

    Raises:
        ValueError: If the axis is empty, not 1-D, not finite or not strictly ascending.
    """
    try:
        axis = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D sequence of numbers; got {values!r}") from None
    if axis.ndim != 1 or axis.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence; got shape {axis.shape}")
    if not np.all(np.isfinite(axis)):
        bad = int(np.flatnonzero(~np.isfinite(axis))[0])
        raise ValueError(f"{name} must be finite; value {bad} is {axis[bad]}")
    steps = np.diff(axis)
    if np.any(steps <= 0):
        bad = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(
            f"{name} must be strictly ascending; value {bad + 1} ({axis[bad + 1]:g}) "
            f"follows {axis[bad]:g}"
        )
    return axis


def resolve_axis(wavelengths: ArrayLike | None, n_features: int, owner: str) -> NDArray[np.float64]:
    """Return the spectral axis for ``n_features`` columns: the given one, or band positions.

    Args:
        wavelengths: Band centres in nm, shape (n_features,), or None for 0..n_features-1.
        n_features: Number of columns of X.
        owner: The transformer's class name, used in the message.

    Returns:
        The axis as float64, shape (n_features,).

    Raises:
        ValueError: If the axis is invalid or its length differs from ``n_features``.
    """
    if wavelengths is None:
        return np.arange(n_features, dtype=np.float64)
    axis = check_axis(wavelengths, "wavelengths")
    if axis.size != n_features:
        raise ValueError(
            f"{owner}: wavelengths has {axis.size} values but X has {n_features} columns; "
            "expected one wavelength per column"
        )
    return axis
