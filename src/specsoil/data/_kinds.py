"""What the spectral values are (reflectance, % reflectance or absorbance) and conversion."""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._table import SPECTRA_KINDS, SpectraKind

# Value ranges used by detect_spectra_kind on the median spectrum. Absorbance log10(1/R) of
# soils stays below ~3 and rarely below 0 (only where R > 1, e.g. a drifting white reference),
# so a median above 5 can only be % reflectance. Fractional reflectance cannot be negative or
# much above 1.
PERCENT_MIN_MAX = 5.0
ABSORBANCE_BELOW = -0.05
REFLECTANCE_MAX = 1.2
# Values each kind can hold: (exclusive lower, inclusive upper). Reflectance is a positive
# fraction of the white reference (its log must exist); absorbance outside [-2, 10] would mean
# a reflectance above 100 (10,000 %) or below 1e-10, which no instrument measures.
VALUE_LIMITS: dict[SpectraKind, tuple[float, float]] = {
    "reflectance": (0.0, 1.0),
    "reflectance-percent": (0.0, 100.0),
    "absorbance": (-2.0, 10.0),
}
# The median spectrum is taken over at most this many rows, spread evenly over the table: the
# median of a sample is as robust as the whole table's and costs ~0.06 s instead of ~1 s on a
# 20,000-row LUCAS table. Odd, so the median is one order statistic (one partition).
_MEDIAN_ROWS = 1001
# Below this relative depth (|centre - baseline| / |baseline|) the water band is called unclear.
MIN_BAND_CONTRAST = 0.005

# Water (O-H) absorption bands present in every soil spectrum, even air-dried: (name, centre
# window, left shoulder window, right shoulder window), all in nm. The 1900 nm band is the
# strongest; the 1400 nm one is the fallback for instruments that stop near 1700 nm.
_WATER_BANDS: tuple[
    tuple[str, tuple[float, float], tuple[float, float], tuple[float, float]], ...
] = (
    ("1900-1930 nm", (1900.0, 1930.0), (1840.0, 1860.0), (2040.0, 2060.0)),
    ("1400-1420 nm", (1400.0, 1420.0), (1340.0, 1360.0), (1490.0, 1510.0)),
)
# A window counts as covered when a band lies within this distance (nm) of it.
_COVER_TOLERANCE_NM = 15.0
_POINTS_PER_WINDOW = 5


def _check_kind(kind: str) -> SpectraKind:
    if kind not in SPECTRA_KINDS:
        raise SpecsoilError(f"spectra_kind must be one of {list(SPECTRA_KINDS)}; got {kind!r}")
    return kind


def to_absorbance(
    X: ArrayLike, kind: SpectraKind, *, out: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """Convert spectra to absorbance log10(1/R) in float32.

    Reflectance R (0-1) gives -log10(R); % reflectance P (0-100) gives 2 - log10(P), which is
    log10(100/P); absorbance is copied unchanged. Pass ``out=X`` (a float32 array) to convert
    in place without a second copy of the spectra.

    Args:
        X: Spectra, shape (n_samples, n_wavelengths), in the units given by ``kind``.
        kind: ``"reflectance"``, ``"reflectance-percent"`` or ``"absorbance"``.
        out: Float32 array of the same shape to write into; may be ``X`` itself.

    Returns:
        Absorbance, float32, shape (n_samples, n_wavelengths): ``out`` when given.

    Raises:
        SpecsoilError: If ``kind`` is unknown, a value is not finite, or a reflectance value
            is not positive (its logarithm does not exist).
    """
    kind = _check_kind(kind)
    source = np.asarray(X)
    if not np.issubdtype(source.dtype, np.number) or np.issubdtype(
        source.dtype, np.complexfloating
    ):
        raise SpecsoilError(f"spectra must be real numbers; got dtype {source.dtype}")
    if out is None:
        out = np.empty(source.shape, dtype=np.float32)
    elif out.dtype != np.float32 or out.shape != source.shape:
        raise ValueError(
            f"out must be float32 with shape {source.shape}; got {out.dtype} {out.shape}"
        )
    if source.size:
        # Reductions, not masks: no temporary the size of the spectra.
        low, high = float(np.min(source)), float(np.max(source))
        if not (np.isfinite(low) and np.isfinite(high)):
            raise SpecsoilError("spectra contain missing or infinite values")
        if kind != "absorbance" and low <= 0:
            raise SpecsoilError(
                f"{kind} values must be > 0 to convert to absorbance log10(1/R); found {low:g}"
            )
    if kind == "absorbance":
        if out is not source:
            np.copyto(out, source, casting="same_kind")
    elif kind == "reflectance":
        np.log10(source, out=out)
        np.negative(out, out=out)
    else:
        np.log10(source, out=out)
        np.subtract(np.float32(2.0), out, out=out)
    return out


def _covered(wavelengths: NDArray[np.float64], window: tuple[float, float]) -> bool:
    lo, hi = window
    inside = (wavelengths >= lo - _COVER_TOLERANCE_NM) & (wavelengths <= hi + _COVER_TOLERANCE_NM)
    return bool(inside.any())


def impossible_values(X: NDArray[np.floating], kind: SpectraKind) -> NDArray[np.bool_]:
    """Mask of the rows of ``X`` that hold a value ``kind`` cannot take (or a non-finite one).

    Reductions per row, not a mask of every cell: no temporary the size of ``X``.
    """
    low, high = VALUE_LIMITS[kind]
    if X.shape[1] == 0:
        return np.zeros(X.shape[0], dtype=bool)
    row_min, row_max = X.min(axis=1), X.max(axis=1)
    # NaN fails both comparisons, so it is caught by `~(... <= high)`.
    inside: NDArray[np.bool_] = (row_min > low) & (row_max <= high)
    return ~inside


def describe_impossible(value: float, kind: SpectraKind) -> str:
    """Say why one spectral value cannot be of ``kind``."""
    low, high = VALUE_LIMITS[kind]
    if np.isnan(value):
        return "missing value (empty, NA or NaN)"
    if not np.isfinite(value):
        return f"value {value} is not finite"
    if kind == "absorbance":
        return (
            f"absorbance value {value:g} is outside [{low:g}, {high:g}], where measured "
            "absorbance log10(1/R) lies"
        )
    if value <= low:
        return f"{kind} value {value:g} is not > 0, so log10(1/R) is undefined"
    what = "a fraction" if kind == "reflectance" else "a percentage"
    return f"{kind} value {value:g} is above {high:g} ({kind} is {what} of the white reference)"


def median_spectrum(X: ArrayLike) -> NDArray[np.float64]:
    """Per-band median over the rows (at most 1,001, spread evenly), ignoring NaN.

    One cell, however extreme, moves a band's median only to a neighbouring value of the same
    band when there are three rows or more.
    """
    values = np.asarray(X)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    n = values.shape[0]
    if n == 0:
        return np.full(values.shape[1], np.nan)
    rows = np.unique(np.linspace(0, max(n - 1, 0), min(n, _MEDIAN_ROWS)).astype(np.intp))
    # Bands as rows: the median partitions contiguous memory (3x faster on LUCAS); float32
    # stays float32, which halves the copy.
    sample = np.ascontiguousarray(values[rows].T)
    if np.isnan(sample).any():
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bands stay NaN
            return np.asarray(np.nanmedian(sample, axis=1), dtype=np.float64)
    middle = sample.shape[1] // 2
    if sample.shape[1] % 2:
        # np.median would also scan for NaN (done above) and average; this is 3x faster.
        return np.partition(sample, middle, axis=1)[:, middle].astype(np.float64)
    return np.asarray(np.median(sample, axis=1), dtype=np.float64)


def detect_spectra_kind(X: ArrayLike, wavelengths: ArrayLike) -> tuple[SpectraKind, str]:
    """Guess whether spectra are reflectance (0-1), % reflectance or absorbance.

    The decision uses the median spectrum (per-band median over the rows, see
    :func:`median_spectrum`), never single values, so one bad cell or a stray row cannot change
    it. The heuristic, in order:

    1. median spectrum above 5 somewhere: % reflectance (absorbance of soil stays well
       below 5);
    2. median spectrum below -0.05 somewhere, or above 1.2: absorbance (reflectance is never
       negative and a fraction cannot be much above 1);
    3. otherwise values fit both reflectance and absorbance, so the shape of the median
       spectrum at the water band decides: around 1900-1930 nm (or 1400-1420 nm when the
       1900 nm band is not covered) reflectance dips below its shoulders (~1850 and ~2050 nm,
       or ~1350 and ~1500 nm) while absorbance peaks above them. When no water band is
       covered, or it is too shallow to tell, reflectance is assumed and the reason says so.

    Values the chosen kind cannot hold (see ``VALUE_LIMITS``) are left for the caller to
    report; ``read_spectra`` names their rows.

    Args:
        X: Spectra, shape (n_samples, n_wavelengths). NaN values are ignored.
        wavelengths: Band centres in nm, shape (n_wavelengths,), ascending.

    Returns:
        The kind and a one-line reason for it.

    Raises:
        SpecsoilError: If there are no finite values or the shapes do not match.
    """
    values = np.asarray(X)
    grid = np.asarray(wavelengths, dtype=np.float64)
    if values.ndim != 2 or grid.shape != (values.shape[1],):
        raise SpecsoilError(
            f"spectra must be (n_samples, {grid.size}) to match the wavelengths; "
            f"got shape {values.shape}"
        )
    typical = median_spectrum(values)
    finite = np.isfinite(typical)
    if not finite.any():
        raise SpecsoilError("cannot tell the kind of spectra: no values, or infinite values")
    grid, typical = grid[finite], typical[finite]
    low, high = float(typical.min()), float(typical.max())
    span = f"median spectrum in [{low:.3g}, {high:.3g}]"
    if high > PERCENT_MIN_MAX:
        return "reflectance-percent", f"median spectrum reaches {high:.4g} (> {PERCENT_MIN_MAX:g})"
    if low < ABSORBANCE_BELOW:
        return "absorbance", (
            f"median spectrum goes down to {low:.4g} (< 0, impossible for reflectance)"
        )
    if high > REFLECTANCE_MAX:
        return "absorbance", (
            f"median spectrum reaches {high:.4g} (> {REFLECTANCE_MAX:g}, above reflectance)"
        )

    for name, centre, left, right in _WATER_BANDS:
        if not all(_covered(grid, window) for window in (centre, left, right)):
            continue
        points = {
            key: np.linspace(*window, _POINTS_PER_WINDOW)
            for key, window in (("centre", centre), ("left", left), ("right", right))
        }
        level = {k: float(np.interp(p, grid, typical).mean()) for k, p in points.items()}
        baseline = (level["left"] + level["right"]) / 2
        contrast = (level["centre"] - baseline) / max(abs(baseline), 1e-6)
        if abs(contrast) < MIN_BAND_CONTRAST:
            return "reflectance", f"{span} and no clear water band at {name}; assuming reflectance"
        if contrast < 0:
            return "reflectance", f"{span} dips at the {name} water band"
        return "absorbance", f"{span} peaks at the {name} water band"
    return "reflectance", (
        f"{span} and no water band (1400 or 1900 nm) covered; assuming reflectance"
    )
