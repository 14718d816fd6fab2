"""What the spectral values are (reflectance, % reflectance or absorbance) and conversion."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._table import SPECTRA_KINDS, SpectraKind

# Value ranges used by detect_spectra_kind. Absorbance log10(1/R) of soils stays below ~3 and
# rarely below 0 (only where R > 1, e.g. a drifting white reference), so a maximum above 5 can
# only be % reflectance. Fractional reflectance cannot be negative or much above 1.
PERCENT_MIN_MAX = 5.0
ABSORBANCE_BELOW = -0.05
REFLECTANCE_MAX = 1.2
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


def _nearest_columns(
    wavelengths: NDArray[np.float64], points: NDArray[np.float64]
) -> NDArray[np.intp]:
    """Indices of the bands that bracket each point (what np.interp needs)."""
    right = np.clip(np.searchsorted(wavelengths, points), 0, wavelengths.size - 1)
    left = np.clip(right - 1, 0, wavelengths.size - 1)
    return np.unique(np.concatenate([left, right]))


def _covered(wavelengths: NDArray[np.float64], window: tuple[float, float]) -> bool:
    lo, hi = window
    inside = (wavelengths >= lo - _COVER_TOLERANCE_NM) & (wavelengths <= hi + _COVER_TOLERANCE_NM)
    return bool(inside.any())


def detect_spectra_kind(X: ArrayLike, wavelengths: ArrayLike) -> tuple[SpectraKind, str]:
    """Guess whether spectra are reflectance (0-1), % reflectance or absorbance.

    The heuristic, in order:

    1. maximum > 5: % reflectance (absorbance of soil stays well below 5);
    2. minimum < -0.05, or maximum in (1.2, 5]: absorbance (reflectance is never negative
       and a fraction cannot be much above 1);
    3. otherwise values in [-0.05, 1.2] fit both reflectance and absorbance, so the shape of
       the mean spectrum at the water band decides: around 1900-1930 nm (or 1400-1420 nm when
       the 1900 nm band is not covered) reflectance dips below its shoulders (~1850 and
       ~2050 nm, or ~1350 and ~1500 nm) while absorbance peaks above them. When no water band
       is covered, or it is too shallow to tell, reflectance is assumed and the reason says so.

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
    # `initial` keeps all-NaN input from warning; an infinite result means no usable value.
    low = float(np.nanmin(values, initial=np.inf))
    high = float(np.nanmax(values, initial=-np.inf))
    if not (np.isfinite(low) and np.isfinite(high)):
        raise SpecsoilError("cannot tell the kind of spectra: no values, or infinite values")
    if high > PERCENT_MIN_MAX:
        return "reflectance-percent", f"values reach {high:.4g} (> {PERCENT_MIN_MAX:g})"
    if low < ABSORBANCE_BELOW:
        return "absorbance", f"values go down to {low:.4g} (< 0, impossible for reflectance)"
    if high > REFLECTANCE_MAX:
        return "absorbance", f"values reach {high:.4g} (> {REFLECTANCE_MAX:g}, above reflectance)"

    for name, centre, left, right in _WATER_BANDS:
        if not all(_covered(grid, window) for window in (centre, left, right)):
            continue
        points = {
            key: np.linspace(*window, _POINTS_PER_WINDOW)
            for key, window in (("centre", centre), ("left", left), ("right", right))
        }
        columns = _nearest_columns(grid, np.concatenate(list(points.values())))
        mean = np.nanmean(values[:, columns], axis=0, dtype=np.float64)
        level = {k: float(np.interp(p, grid[columns], mean).mean()) for k, p in points.items()}
        baseline = (level["left"] + level["right"]) / 2
        contrast = (level["centre"] - baseline) / max(abs(baseline), 1e-6)
        if abs(contrast) < MIN_BAND_CONTRAST:
            return "reflectance", (
                f"values in [{low:.3g}, {high:.3g}] and no clear water band at {name}; "
                "assuming reflectance"
            )
        if contrast < 0:
            return "reflectance", (
                f"values in [{low:.3g}, {high:.3g}] and the mean spectrum dips at the "
                f"{name} water band"
            )
        return "absorbance", (
            f"values in [{low:.3g}, {high:.3g}] and the mean spectrum peaks at the "
            f"{name} water band"
        )
    return "reflectance", (
        f"values in [{low:.3g}, {high:.3g}] and no water band (1400 or 1900 nm) covered; "
        "assuming reflectance"
    )
