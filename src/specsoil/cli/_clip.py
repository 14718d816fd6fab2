"""``--clip TARGET=LOW:HIGH``: bounds for properties that cannot be negative or above 100 %."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from specsoil._errors import SpecsoilError

CLIP_METAVAR = "TARGET=LOW:HIGH"


def add_clip_flag(parser: argparse.ArgumentParser, *, at_predict: bool = False) -> None:
    """Add the repeatable ``--clip`` option (train stores it; predict overrides it)."""
    what = (
        "replace the model's bounds for TARGET at prediction time (TARGET=: removes them)"
        if at_predict
        else "bound TARGET's predictions and interval ends to [LOW, HIGH]; stored with the model"
    )
    parser.add_argument(
        "--clip",
        action="append",
        metavar=CLIP_METAVAR,
        help=f"{what}; either side may be left out, e.g. --clip clay_pct=0:100 --clip oc=0: "
        "(repeatable)",
    )


def parse_clip(
    texts: Sequence[str] | None, *, allow_open: bool = False
) -> dict[str, tuple[float | None, float | None]]:
    """Parse ``--clip`` values into ``{target: (low, high)}``.

    The operation checks the targets and the order of the bounds once it knows the model's
    targets (:func:`specsoil.models.check_clip`).

    Args:
        texts: The option's values, e.g. ``["clay_pct=0:100", "oc=0:"]``.
        allow_open: Accept ``TARGET=:`` (no bound: removes a stored one at predict).

    Raises:
        SpecsoilError: For bad syntax, a number that does not parse, or a target given twice.
    """
    parsed: dict[str, tuple[float | None, float | None]] = {}
    for text in texts or []:
        target, equals, bounds = text.partition("=")
        low_text, colon, high_text = bounds.partition(":")
        if not equals or not colon or not target.strip():
            raise SpecsoilError(
                f"--clip {text!r}: expected {CLIP_METAVAR}, e.g. clay_pct=0:100 or oc=0:"
            )
        target = target.strip()
        if target in parsed:
            raise SpecsoilError(f"--clip {text!r}: {target!r} is given twice")
        low, high = _number(low_text, text), _number(high_text, text)
        if low is None and high is None and not allow_open:
            raise SpecsoilError(f"--clip {text!r}: give LOW, HIGH or both")
        parsed[target] = (low, high)
    return parsed


def _number(text: str, option: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise SpecsoilError(f"--clip {option!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SpecsoilError(f"--clip {option!r}: bounds must be finite numbers; got {text!r}")
    return value
