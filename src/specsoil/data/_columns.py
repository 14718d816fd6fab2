"""Tell spectral columns (one per wavelength) from metadata columns by their names."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError

logger = logging.getLogger(__name__)

# Wavelengths outside this range (nm) are not taken as bands: it spans UV-vis to mid-infrared
# and keeps small numbers in names such as `B2`, `CaCO3` or `Layer_5` out of the spectra.
MIN_WAVELENGTH_NM = 100.0
MAX_WAVELENGTH_NM = 30000.0
# Fewer numbered columns than this are more likely metadata (`depth_10`, `depth_30`) than spectra.
MIN_SPECTRAL_COLUMNS = 3
# A second block at least this fraction of the largest one's size makes the choice ambiguous.
AMBIGUOUS_SIZE_RATIO = 0.5
# Names numbered in µm (0.35 ... 2.5): plausible range, and the coarsest median step (µm) of a
# real grid, which keeps integer-numbered metadata such as `X1, X2, X3` out.
_MICROMETRE_RANGE = (MIN_WAVELENGTH_NM / 1000, MAX_WAVELENGTH_NM / 1000)
_MAX_MICROMETRE_STEP = 0.05
# An out-of-range number this close (in median steps) to a block continues the block: the
# names are a counter (`c0 ... c9999`), not wavelengths.
_COUNTER_GAP_STEPS = 4.0

NAMING_PATTERNS = "400, 400.5, 400nm, X400, X400.5, spc.400.5, nm_400, wl_400, wl400, 0.4um"

# An optional prefix of letters (words joined by `.`, `_` or `-`), an optional separator, a
# wavelength with an optional decimal part, and an optional unit.
_SPECTRAL_NAME = re.compile(
    r"""^\s*
    (?P<prefix>[A-Za-z]+(?:[._-][A-Za-z]+)*)?
    (?P<separator>[._-])?
    (?P<value>\d+(?:\.\d+)?)
    \s*(?P<unit>nm|um|µm|μm)?\s*$""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class _Block:
    """Columns named with one pattern: their names, numbers (as written) and the unit."""

    pattern: str
    names: list[str]
    numbers: NDArray[np.float64]
    micrometres: bool = False

    @property
    def wavelengths(self) -> NDArray[np.float64]:
        # Rounded so that 2.01 µm is 2010 nm, not 2009.9999999999998.
        return np.round(self.numbers * 1000.0, 6) if self.micrometres else self.numbers

    def describe(self) -> str:
        order = np.argsort(self.numbers, kind="stable")
        first, last = self.names[order[0]], self.names[order[-1]]
        unit = " (µm, as nm)" if self.micrometres else ""
        low, high = self.wavelengths[order[[0, -1]]]
        return (
            f"{first!r} … {last!r} ({len(self.names)} columns, {low:g}-{high:g} nm{unit}, "
            f"pattern {self.pattern})"
        )


def _pattern_key(match: re.Match[str]) -> str:
    """One naming scheme, one key: ``spc.<n>``, ``<n>``, ``<n>nm``.

    R's ``make.names`` turns a header ``400`` into ``X400``, so ``X`` counts as no prefix.
    """
    prefix = (match["prefix"] or "").lower()
    separator = match["separator"] or ""
    if prefix == "x" and not separator:
        prefix = ""
    unit = (match["unit"] or "").lower().replace("μ", "u").replace("µ", "u")
    return f"{prefix}{separator}<n>{unit}"


def _median_step(sorted_values: NDArray[np.float64]) -> float:
    steps = np.diff(sorted_values)
    return float(np.median(steps)) if steps.size else 0.0


def _plausible(block: _Block, rejected: list[str]) -> _Block | None:
    """The part of a name-pattern group that can be a wavelength axis, or None.

    Numbers outside the plausible range are left as metadata when they are far from the rest
    (``1, 2`` beside ``350 ... 2500``); when they continue its spacing the whole group is a
    counter (``c0 ... c9999``) and is rejected. Without a unit, a group that fits only µm
    (``0.35 ... 2.5``, with decimals and a fine step) is read as µm.
    """
    numbers = block.numbers
    unit = block.pattern.rsplit(">", 1)[1]
    if unit == "um" or (
        not unit
        and numbers.size >= MIN_SPECTRAL_COLUMNS
        and bool(np.all((numbers >= _MICROMETRE_RANGE[0]) & (numbers <= _MICROMETRE_RANGE[1])))
        and bool(np.any(numbers != np.round(numbers)))
        and _median_step(np.sort(numbers)) <= _MAX_MICROMETRE_STEP
    ):
        micro = _Block(block.pattern, block.names, numbers, micrometres=True)
        inside = (numbers >= _MICROMETRE_RANGE[0]) & (numbers <= _MICROMETRE_RANGE[1])
        if not inside.all():
            rejected.append(f"{micro.describe()}: outside {_MICROMETRE_RANGE[0]}-30 µm")
            return None
        return micro
    inside = (numbers >= MIN_WAVELENGTH_NM) & (numbers <= MAX_WAVELENGTH_NM)
    if not inside.any():
        return None
    kept = np.sort(numbers[inside])
    outside = numbers[~inside]
    reach = _COUNTER_GAP_STEPS * _median_step(kept)
    below, above = outside[outside < kept[0]], outside[outside > kept[-1]]
    if (below.size and kept[0] - below.max() <= reach) or (
        above.size and above.min() - kept[-1] <= reach
    ):
        rejected.append(
            f"{block.describe()}: numbered like a counter ({numbers.min():g}-{numbers.max():g}), "
            f"not wavelengths between {MIN_WAVELENGTH_NM:g} and {MAX_WAVELENGTH_NM:g} nm"
        )
        return None
    names = [name for name, ok in zip(block.names, inside, strict=True) if ok]
    return _Block(block.pattern, names, numbers[inside])


def _blocks(columns: Sequence[str]) -> tuple[list[_Block], list[str]]:
    """Candidate blocks (largest first) and one line per group rejected as not wavelengths."""
    groups: dict[str, list[tuple[str, float]]] = {}
    for name in columns:
        match = _SPECTRAL_NAME.match(str(name))
        if match is not None:
            groups.setdefault(_pattern_key(match), []).append((str(name), float(match["value"])))
    rejected: list[str] = []
    blocks = []
    for pattern, members in groups.items():
        group = _Block(pattern, [n for n, _ in members], np.array([v for _, v in members]))
        block = _plausible(group, rejected)
        if block is not None and len(block.names) >= MIN_SPECTRAL_COLUMNS:
            blocks.append(block)
    blocks.sort(key=lambda b: len(b.names), reverse=True)
    return blocks, rejected


def _shown(columns: Sequence[str]) -> str:
    shown = ", ".join(repr(str(c)) for c in list(columns)[:8])
    more = f" and {len(columns) - 8} more" if len(columns) > 8 else ""
    return f"{shown}{more}"


def _matching(columns: Sequence[str], pattern: str) -> _Block:
    """The columns whose names match ``pattern``, with the wavelength in each name."""
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise SpecsoilError(
            f"spectral_columns {pattern!r} is not a valid regular expression: {error}"
        ) from None
    names: list[str] = []
    numbers: list[float] = []
    for name in map(str, columns):
        found = regex.search(name)
        if found is None:
            continue
        text = next((g for g in found.groups() if g is not None), None)
        match = _SPECTRAL_NAME.match(text if text is not None else name)
        if match is None:
            raise SpecsoilError(
                f"column {name!r} matches spectral_columns {pattern!r} but its name holds no "
                f"wavelength (expected names such as {NAMING_PATTERNS}, or a regex group "
                "around the number)"
            )
        names.append(name)
        numbers.append(float(match["value"]))
    if not names:
        raise SpecsoilError(
            f"no column matches spectral_columns {pattern!r} among {len(columns)} columns "
            f"({_shown(columns)})"
        )
    block = _Block(f"/{pattern}/", names, np.array(numbers))
    inside = (block.numbers >= MIN_WAVELENGTH_NM) & (block.numbers <= MAX_WAVELENGTH_NM)
    if inside.all():
        return block
    micro = (block.numbers >= _MICROMETRE_RANGE[0]) & (block.numbers <= _MICROMETRE_RANGE[1])
    if micro.all() and np.any(block.numbers != np.round(block.numbers)):
        return _Block(block.pattern, names, block.numbers, micrometres=True)
    bad = int(np.flatnonzero(~inside)[0])
    raise SpecsoilError(
        f"column {names[bad]!r} matches spectral_columns {pattern!r} but {numbers[bad]:g} is "
        f"not a wavelength ({MIN_WAVELENGTH_NM:g}-{MAX_WAVELENGTH_NM:g} nm, or "
        f"{_MICROMETRE_RANGE[0]:g}-{_MICROMETRE_RANGE[1]:g} µm)"
    )


def find_spectral_columns(
    columns: Sequence[str], *, pattern: str | None = None
) -> tuple[list[str], NDArray[np.float64]]:
    """Find the columns that hold spectra and the wavelength each one stands for.

    A spectral column's name is a wavelength, optionally after a prefix of letters and a
    separator (``.``, ``_`` or ``-``) and optionally followed by ``nm`` or ``um``: ``400``,
    ``400.5``, ``X400`` (R's ``make.names``), ``spc.400.5`` (LUCAS), ``nm_400``, ``wl400``,
    ``400nm``, ``0.4um``. Names are grouped by pattern (prefix, separator and unit; ``X``
    counting as no prefix), and each group is checked as a wavelength axis: numbers in
    100-30,000 nm, or with decimals in 0.1-30 µm at a fine step (converted to nm, with a log
    message). A group whose numbers run on past that range with the same spacing
    (``c0 ... c9999``) is a counter, not wavelengths; stray small numbers far from the rest
    (``1, 2`` beside ``350 ... 2500``) stay metadata. The largest remaining block of at least
    three columns is the spectra, unless another block has at least half its size.

    Args:
        columns: Column names in file order.
        pattern: A regular expression (``re.search``) that settles which columns hold
            spectra; the wavelength is the number in each name (or in the regex's first
            group).

    Returns:
        The spectral column names in file order and their wavelengths in nm (same order,
        not sorted).

    Raises:
        SpecsoilError: If no block of spectral columns is found, if two blocks are
            comparable in size (listing them), or if two spectral columns stand for the
            same wavelength.
    """
    if pattern is not None:
        chosen = _matching(columns, pattern)
    else:
        blocks, rejected = _blocks(columns)
        if not blocks:
            why = "".join(f"; {line}" for line in rejected)
            raise SpecsoilError(
                f"no spectral columns found among {len(columns)} columns ({_shown(columns)})"
                f"{why}; expected at least {MIN_SPECTRAL_COLUMNS} columns named by wavelength "
                f"in nm or µm, e.g. {NAMING_PATTERNS}, or name them with --spectral-columns "
                "REGEX (spectral_columns=...)"
            )
        if len(blocks) > 1 and len(blocks[1].names) >= AMBIGUOUS_SIZE_RATIO * len(blocks[0].names):
            listed = "; ".join(b.describe() for b in blocks[:5])
            raise SpecsoilError(
                f"ambiguous spectral columns: {len(blocks)} candidate blocks ({listed}); "
                "say which with --spectral-columns REGEX (spectral_columns=...), e.g. "
                f"'{_example_regex(blocks[0])}', or keep one set of spectra in the file"
            )
        chosen = blocks[0]
    if chosen.micrometres:
        logger.info(
            "spectral columns %s are in µm; converted to nm", chosen.describe().split(" (")[0]
        )
    seen: dict[float, str] = {}
    wavelengths = chosen.wavelengths
    for name, wavelength in zip(chosen.names, wavelengths, strict=True):
        if wavelength in seen:
            raise SpecsoilError(
                f"columns {seen[wavelength]!r} and {name!r} both hold {wavelength:g} nm; "
                "each wavelength must appear once"
            )
        seen[wavelength] = name
    return list(chosen.names), np.asarray(wavelengths, dtype=np.float64)


def _example_regex(block: _Block) -> str:
    """A regex naming the block's columns, for the ambiguity message."""
    match = _SPECTRAL_NAME.match(block.names[0])
    prefix = (match["prefix"] or "") + (match["separator"] or "") if match else ""
    return f"^{re.escape(prefix)}\\d" if prefix else r"^\d"
