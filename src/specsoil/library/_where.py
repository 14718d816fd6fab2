"""A small filter language on metadata columns, applied with pandas (never eval, never SQL).

A condition is ``column OP value`` with OP one of ``= == != > >= < <=``, or
``column in a,b,c``. Several conditions (a list, or joined by `` and ``) must all hold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError

_COMPARISON = re.compile(
    r"^\s*(?P<column>[^=!<>]+?)\s*(?P<op>==|=|!=|>=|<=|>|<)\s*(?P<value>.*?)\s*$"
)
_MEMBERSHIP = re.compile(
    r"^\s*(?P<column>.+?)\s+(?P<op>not in|in)\s+(?P<value>.+?)\s*$", re.IGNORECASE
)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Condition:
    """One parsed condition."""

    column: str
    op: str
    values: tuple[str, ...]
    text: str


def parse_where(where: str | Sequence[str] | None) -> list[Condition]:
    """Parse conditions; the text is only split and matched, never evaluated.

    Raises:
        SpecsoilError: If a condition is not ``column OP value`` or ``column in a,b``.
    """
    if where is None:
        return []
    texts = [where] if isinstance(where, str) else list(where)
    conditions = []
    for text in texts:
        for part in _AND.split(text):
            if not part.strip():
                continue
            member = _MEMBERSHIP.match(part)
            if member is not None:
                values = tuple(v.strip() for v in member["value"].split(","))
                op = member["op"].lower()
            else:
                match = _COMPARISON.match(part)
                if match is None:
                    raise SpecsoilError(
                        f"--where {part!r}: expected COLUMN=VALUE, COLUMN!=VALUE, COLUMN>VALUE, "
                        "COLUMN>=VALUE, COLUMN<VALUE, COLUMN<=VALUE or COLUMN in A,B,C"
                    )
                member = match
                values = (match["value"],)
                op = "=" if match["op"] == "==" else match["op"]
            conditions.append(Condition(member["column"].strip(), op, values, part.strip()))
    return conditions


def where_mask(metadata: pd.DataFrame, conditions: Sequence[Condition]) -> NDArray[np.bool_]:
    """Rows of ``metadata`` that meet every condition.

    Raises:
        SpecsoilError: For an unknown column, or an order comparison on a non-numeric column
            or with a value that is not a number.
    """
    mask = np.ones(len(metadata), dtype=bool)
    for condition in conditions:
        if condition.column not in metadata.columns:
            raise SpecsoilError(
                f"--where {condition.text!r}: no column {condition.column!r}; "
                f"columns: {[str(c) for c in metadata.columns]}"
            )
        mask &= _condition_mask(metadata[condition.column], condition)
    return mask


def _condition_mask(column: pd.Series, condition: Condition) -> NDArray[np.bool_]:
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if condition.op in (">", ">=", "<", "<="):
        if not numeric:
            raise SpecsoilError(
                f"--where {condition.text!r}: {condition.op} needs a numeric column; "
                f"{condition.column!r} holds {column.dtype}"
            )
        number = _number(condition, condition.values[0])
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            result = {
                ">": values > number,
                ">=": values >= number,
                "<": values < number,
                "<=": values <= number,
            }[condition.op]
        return np.asarray(result, dtype=bool)
    if numeric:
        wanted_numbers = [_number(condition, v) for v in condition.values]
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        hit = np.isin(values, wanted_numbers)
    else:
        text = column.astype(object).where(column.notna(), None)
        hit = np.array([v is not None and str(v) in condition.values for v in text], dtype=bool)
    return ~hit if condition.op in ("!=", "not in") else hit


def _number(condition: Condition, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SpecsoilError(
            f"--where {condition.text!r}: {condition.column!r} is numeric; "
            f"{value!r} is not a number"
        ) from None
