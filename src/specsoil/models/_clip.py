"""Bounds on predicted properties that cannot leave a range (clay 0-100 %, carbon >= 0).

A regression model extrapolates linearly, so a soil outside the training range can get a
negative clay or carbon content. Bounds set at training are stored with the model and
applied to every prediction and to both ends of every conformal interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError

# target -> (lowest, highest) allowed value; None leaves that side open.
ClipBounds = dict[str, tuple[float | None, float | None]]


def check_clip(
    bounds: Mapping[str, Any] | None, targets: Sequence[str], *, source: str = "clip"
) -> ClipBounds:
    """Check clip bounds against the model's targets and return them normalised.

    Args:
        bounds: ``{target: (low, high)}``, either side None (open); a list of two works too
            (as stored in the manifest).
        targets: The model's targets.
        source: What the bounds come from, for messages (an option, a file's field).

    Returns:
        The bounds as ``{target: (float | None, float | None)}``, in target order.

    Raises:
        SpecsoilError: For an unknown target, a pair that is not two numbers or None, a
            non-finite bound, or a low bound above the high one.
    """
    checked: ClipBounds = {}
    for target, pair in (bounds or {}).items():
        if target not in targets:
            raise SpecsoilError(
                f"{source}: unknown target {target!r}; the model predicts {list(targets)}"
            )
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise SpecsoilError(f"{source}: {target!r} needs (low, high); got {pair!r}")
        low, high = (_bound(value, target, source) for value in pair)
        if low is None and high is None:
            continue  # no bound at all: nothing to store
        if low is not None and high is not None and low > high:
            raise SpecsoilError(
                f"{source}: {target!r} low bound {low:g} is above its high bound {high:g}"
            )
        checked[target] = (low, high)
    return {t: checked[t] for t in targets if t in checked}


def _bound(value: object, target: str, source: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecsoilError(f"{source}: {target!r} bounds must be finite numbers; got {value!r}")
    return float(value)


def apply_clip(
    values: NDArray[np.float64], bounds: ClipBounds, targets: Sequence[str]
) -> NDArray[np.float64]:
    """``values`` (n_samples, n_targets) with each bounded target's column clipped."""
    if not bounds:
        return values
    clipped = np.array(values, dtype=np.float64, copy=True)
    for j, target in enumerate(targets):
        if target in bounds:
            low, high = bounds[target]
            clipped[:, j] = np.clip(
                clipped[:, j],
                -np.inf if low is None else low,
                np.inf if high is None else high,
            )
    return clipped


def clip_to_json(bounds: ClipBounds) -> dict[str, list[float | None]]:
    """The bounds as JSON-ready data (the manifest's ``clip`` field)."""
    return {target: [low, high] for target, (low, high) in bounds.items()}


def describe_clip(bounds: ClipBounds) -> str:
    """E.g. ``clay_pct 0..100, oc >= 0`` for messages."""
    parts = []
    for target, (low, high) in bounds.items():
        if low is not None and high is not None:
            parts.append(f"{target} {low:g}..{high:g}")
        elif low is not None:
            parts.append(f"{target} >= {low:g}")
        else:
            parts.append(f"{target} <= {high:g}")
    return ", ".join(parts)
