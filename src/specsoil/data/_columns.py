"""Tell spectral columns (one per wavelength) from metadata columns by their names."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError

# Wavelengths outside this range (nm) are not taken as bands: it spans UV-vis to mid-infrared
# and keeps small numbers in names such as `B2`, `CaCO3` or `Layer_5` out of the spectra.
MIN_WAVELENGTH_NM = 100.0
MAX_WAVELENGTH_NM = 30000.0
# Fewer numbered columns than this are more likely metadata (`depth_10`, `depth_30`) than spectra.
MIN_SPECTRAL_COLUMNS = 3

NAMING_PATTERNS = "400, 400.5, 400nm, X400, X400.5, spc.400.5, nm_400, wl_400, wl400"

# An optional prefix of letters (words joined by `.`, `_` or `-`), an optional separator, a
# wavelength with an optional decimal part, and an optional `nm` unit.
_SPECTRAL_NAME = re.compile(
    r"""^\s*
    (?P<prefix>[A-Za-z]+(?:[._-][A-Za-z]+)*)?
    [._-]?
    (?P<value>\d+(?:\.\d+)?)
    \s*(?:nm)?\s*$""",
    re.VERBOSE | re.IGNORECASE,
)


def _group_key(prefix: str | None) -> str:
    """Normalise a prefix so that one naming scheme lands in one group.

    R's ``make.names`` turns a header ``400`` into ``X400``, so ``X`` counts as no prefix.
    """
    key = (prefix or "").lower()
    return "" if key == "x" else key


def find_spectral_columns(columns: Sequence[str]) -> tuple[list[str], NDArray[np.float64]]:
    """Find the columns that hold spectra and the wavelength each one stands for.

    A spectral column's name is a wavelength in nm, optionally after a prefix of letters and a
    separator (``.``, ``_`` or ``-``) and optionally followed by ``nm``: ``400``, ``400.5``,
    ``X400`` (R's ``make.names``), ``spc.400.5`` (LUCAS), ``nm_400``, ``wl400``, ``400nm``.
    Candidates are grouped by prefix (``X`` counting as none) and the largest group, with at
    least three columns, is taken as the spectra; every other column is metadata. This keeps
    names such as ``Layer_2020``, ``pH.in.H2O`` or an ``X`` coordinate out of the spectra.

    Args:
        columns: Column names in file order.

    Returns:
        The spectral column names in file order and their wavelengths in nm (same order,
        not sorted).

    Raises:
        SpecsoilError: If no group of spectral columns is found, if two groups are equally
            large, or if two spectral columns stand for the same wavelength.
    """
    groups: dict[str, list[tuple[str, float]]] = {}
    for name in columns:
        match = _SPECTRAL_NAME.match(str(name))
        if match is None:
            continue
        wavelength = float(match["value"])
        if MIN_WAVELENGTH_NM <= wavelength <= MAX_WAVELENGTH_NM:
            groups.setdefault(_group_key(match["prefix"]), []).append((str(name), wavelength))

    candidates = sorted(
        (g for g in groups.values() if len(g) >= MIN_SPECTRAL_COLUMNS), key=len, reverse=True
    )
    if not candidates:
        shown = ", ".join(repr(str(c)) for c in list(columns)[:8])
        more = f" and {len(columns) - 8} more" if len(columns) > 8 else ""
        raise SpecsoilError(
            f"no spectral columns found among {len(columns)} columns ({shown}{more}); "
            f"expected at least {MIN_SPECTRAL_COLUMNS} columns named by wavelength in nm, "
            f"e.g. {NAMING_PATTERNS}"
        )
    if len(candidates) > 1 and len(candidates[1]) == len(candidates[0]):
        first, second = candidates[0][0][0], candidates[1][0][0]
        raise SpecsoilError(
            f"two equally large groups of spectral columns ({len(candidates[0])} columns each, "
            f"starting at {first!r} and {second!r}); keep only one set of spectra in the file"
        )

    chosen = candidates[0]
    seen: dict[float, str] = {}
    for name, wavelength in chosen:
        if wavelength in seen:
            raise SpecsoilError(
                f"columns {seen[wavelength]!r} and {name!r} both hold {wavelength:g} nm; "
                "each wavelength must appear once"
            )
        seen[wavelength] = name
    names = [name for name, _ in chosen]
    wavelengths = np.array([w for _, w in chosen], dtype=np.float64)
    return names, wavelengths
