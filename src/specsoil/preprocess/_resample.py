"""Resampling spectra from one wavelength grid onto another."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import CubicSpline
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil.preprocess._validation import check_axis, check_choice, resolve_axis

_METHODS = ("linear", "mean", "cubic")
# A typo such as step=0.0001 must fail clearly, not try to allocate gigabytes.
_MAX_BANDS = 1_000_000
# Rows resampled at once: the window means need a few float64 temporaries of the block's
# size, which at 2,048 rows x 4,200 bands stay under 100 MB each.
_ROWS_PER_BLOCK = 2048


def _tolerance(axis: NDArray[np.float64]) -> float:
    """Slack for float round-off when comparing grids (1e-9 of the largest wavelength)."""
    return 1e-9 * max(1.0, float(np.abs(axis).max()))


def resample_grid(
    wavelengths: ArrayLike,
    *,
    start: float | None = None,
    stop: float | None = None,
    step: float | None = None,
    target_wavelengths: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Return the target grid of a resampling, checked against the source range.

    Args:
        wavelengths: Source grid in nm, ascending, shape (p,).
        start: First target wavelength; default the first source wavelength.
        stop: Last target wavelength (included when it falls on the grid); default the last
            source wavelength.
        step: Target spacing in nm; default the median source spacing.
        target_wavelengths: An explicit ascending target grid, instead of start/stop/step.

    Returns:
        The target grid, float64, ascending, inside the source range.

    Raises:
        ValueError: If the options conflict or the grid leaves the source range.
    """
    source = check_axis(wavelengths, "wavelengths")
    tol = _tolerance(source)
    if target_wavelengths is not None:
        if start is not None or stop is not None or step is not None:
            raise ValueError("give either target_wavelengths or start/stop/step, not both")
        grid = check_axis(target_wavelengths, "target_wavelengths")
    else:
        for name, value in (("start", start), ("stop", stop), ("step", step)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float | np.number)
            ):
                raise ValueError(f"{name} must be a number; got {value!r}")
        lo = float(source[0]) if start is None else float(start)
        hi = float(source[-1]) if stop is None else float(stop)
        if step is None:
            spacing = float(np.median(np.diff(source))) if source.size > 1 else 1.0
        else:
            spacing = float(step)
        if not spacing > 0 or not np.isfinite(spacing):
            raise ValueError(f"step must be a number > 0; got {step!r}")
        if not hi >= lo:
            raise ValueError(f"stop must be >= start; got start={lo:g}, stop={hi:g}")
        # The small slack keeps ``stop`` when (stop - start) / step is an integer up to round-off.
        count = int(np.floor((hi - lo) / spacing + 1e-9)) + 1
        if count > _MAX_BANDS:
            raise ValueError(
                f"step={spacing:g} over {lo:g}-{hi:g} nm gives {count} wavelengths; "
                f"expected at most {_MAX_BANDS}"
            )
        grid = lo + spacing * np.arange(count, dtype=np.float64)
    if grid[0] < source[0] - tol or grid[-1] > source[-1] + tol:
        raise ValueError(
            f"target grid {grid[0]:g}-{grid[-1]:g} nm is outside the source range "
            f"{source[0]:g}-{source[-1]:g} nm; resampling cannot extrapolate"
        )
    return np.clip(grid, source[0], source[-1])


def _linear_weights(
    source: NDArray[np.float64], grid: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Left neighbour index and weight of the right neighbour for each target point."""
    if source.size == 1:
        return np.zeros(grid.size, dtype=np.intp), np.zeros(grid.size, dtype=np.float64)
    left = np.clip(np.searchsorted(source, grid, side="right") - 1, 0, source.size - 2)
    frac = (grid - source[left]) / (source[left + 1] - source[left])
    return left.astype(np.intp), frac


def _window_edges(
    source: NDArray[np.float64], grid: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lower and upper edge of the averaging window of each target wavelength.

    Windows are centred on their target so that averaging adds no wavelength shift: the
    half-width is half the distance to the nearer neighbouring target (half a source step
    for a single target), shrunk at the ends of the source range to stay inside it.
    """
    if grid.size > 1:
        gaps = np.diff(grid)
        half = 0.5 * np.minimum(
            np.concatenate([[gaps[0]], gaps]), np.concatenate([gaps, [gaps[-1]]])
        )
    else:
        half = np.full(1, 0.5 * float(np.median(np.diff(source))) if source.size > 1 else 0.0)
    half = np.minimum(half, np.minimum(grid - source[0], source[-1] - grid))
    return grid - half, grid + half


class Resample(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Map spectra measured at ``wavelengths`` onto a new wavelength grid.

    The target grid is ``start, start + step, ...`` up to ``stop`` inclusive, or an explicit
    ``target_wavelengths``; omitted bounds default to the source range and the step to the
    median source spacing. The source grid may be irregular.

    The ``method`` option:

    - ``"linear"``: linear interpolation between the two neighbouring bands.
    - ``"mean"``: band averaging. Each target value is the mean of the spectrum (linear
      between bands) over a window centred on the target and one target step wide, i.e. a
      box filter: going from 1 nm to 10 nm it averages ~10 bands, so the noise goes down
      by ~sqrt(10) and nothing aliases. Where bands fall on a window edge they count half
      in each neighbouring window (the trapezoidal mean), and the window is centred so no
      wavelength shift is added: it narrows at the ends of the source range (the first
      and last target values of a full-range grid are then the end bands themselves).
      Exact for spectra linear in wavelength, and for upsampling.
    - ``"cubic"``: not-a-knot cubic spline (:class:`scipy.interpolate.CubicSpline`).

    Args:
        wavelengths: Source band centres in nm, strictly ascending, one per column of X;
            None uses band positions 0..p-1.
        start: First target wavelength in nm.
        stop: Last target wavelength in nm.
        step: Target spacing in nm.
        target_wavelengths: Explicit target grid in nm, instead of start/stop/step.
        method: ``"linear"``, ``"mean"`` or ``"cubic"``.

    Attributes:
        wavelengths_in_: The source grid used (band positions when ``wavelengths`` is None).
        wavelengths_out_: The target grid, shape (n_wavelengths_out,).
    """

    def __init__(
        self,
        wavelengths: ArrayLike | None,
        *,
        start: float | None = None,
        stop: float | None = None,
        step: float | None = None,
        target_wavelengths: ArrayLike | None = None,
        method: str = "linear",
    ) -> None:
        self.wavelengths = wavelengths
        self.start = start
        self.stop = stop
        self.step = step
        self.target_wavelengths = target_wavelengths
        self.method = method

    def _grid(self, n_features: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The source axis for ``n_features`` columns and the target grid."""
        check_choice(self.method, "method", _METHODS)
        source = resolve_axis(self.wavelengths, n_features, type(self).__name__)
        grid = resample_grid(
            source,
            start=self.start,
            stop=self.stop,
            step=self.step,
            target_wavelengths=self.target_wavelengths,
        )
        return source, grid

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Check X against the source grid and work out the target grid.

        Args:
            X: Spectra, shape (n_samples, len(wavelengths)).
            y: Ignored.

        Returns:
            The fitted transformer.

        Raises:
            ValueError: If X's width differs from ``len(wavelengths)``, an option is invalid or
                the target grid leaves the source range.
        """
        # Only the width is needed; keeping float32 avoids a full float64 copy of the table.
        spectra = validate_data(self, X, dtype=(np.float64, np.float32), reset=True)
        source, grid = self._grid(spectra.shape[1])
        self.wavelengths_in_ = source
        self.wavelengths_out_ = grid
        self._left, self._frac = _linear_weights(source, grid)
        if self.method == "mean":
            lower, upper = _window_edges(source, grid)
            self._lower_left, self._lower_frac = _linear_weights(source, lower)
            self._upper_left, self._upper_frac = _linear_weights(source, upper)
            self._width = upper - lower
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the spectra on the target grid.

        Args:
            X: Spectra, shape (n_samples, len(wavelengths)).

        Returns:
            Resampled spectra, float64, shape (n_samples, len(wavelengths_out_)).
        """
        check_is_fitted(self)
        # float32 input stays float32 here and is widened one block of rows at a time, so a
        # LUCAS-sized table (20,000 x 4,200) never has full-size float64 temporaries.
        spectra = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        out = np.empty((spectra.shape[0], self.wavelengths_out_.size), dtype=np.float64)
        for start in range(0, spectra.shape[0], _ROWS_PER_BLOCK):
            block = np.asarray(spectra[start : start + _ROWS_PER_BLOCK], dtype=np.float64)
            out[start : start + block.shape[0]] = self._transform_rows(block)
        return out

    def _transform_rows(self, spectra: NDArray[np.float64]) -> NDArray[np.float64]:
        """Resample a block of spectra (every row independently)."""
        if self.method == "cubic" and spectra.shape[1] > 1:
            cubic: NDArray[np.float64] = CubicSpline(self.wavelengths_in_, spectra, axis=1)(
                self.wavelengths_out_
            )
            return cubic
        left, frac = self._left, self._frac
        right = np.minimum(left + 1, spectra.shape[1] - 1)
        out: NDArray[np.float64] = spectra[:, left] * (1.0 - frac) + spectra[:, right] * frac
        if self.method == "mean" and spectra.shape[1] > 1:
            out = self._window_means(spectra, out)
        return out

    def _window_means(
        self, spectra: NDArray[np.float64], point_values: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Mean of each spectrum over every target window; zero-width windows keep the point."""
        source = self.wavelengths_in_
        steps = np.diff(source)
        # Integral of the piecewise-linear spectrum from the first band to each band: (n, p).
        integral = np.zeros_like(spectra)
        np.cumsum(0.5 * (spectra[:, 1:] + spectra[:, :-1]) * steps, axis=1, out=integral[:, 1:])

        def integral_at(left: NDArray[np.intp], frac: NDArray[np.float64]) -> NDArray[np.float64]:
            # Integral up to band ``left`` plus the partial trapezoid to the edge inside the
            # next segment: h * (frac * x_left + frac**2 / 2 * (x_right - x_left)).
            lo, hi = spectra[:, left], spectra[:, left + 1]
            partial = steps[left] * (frac * lo + 0.5 * frac**2 * (hi - lo))
            result: NDArray[np.float64] = integral[:, left] + partial
            return result

        wide = self._width > 0
        upper = integral_at(self._upper_left[wide], self._upper_frac[wide])
        lower = integral_at(self._lower_left[wide], self._lower_frac[wide])
        point_values[:, wide] = (upper - lower) / self._width[wide]
        return point_values

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> NDArray[np.object_]:
        """Return the target wavelengths as strings, e.g. ``"1100"`` or ``"1100.5"``.

        Args:
            input_features: Ignored apart from a length check (the names come from the grid).

        Returns:
            Object array of shape (n_wavelengths_out,).
        """
        check_is_fitted(self)
        if input_features is not None and len(np.asarray(input_features)) != self.n_features_in_:
            raise ValueError(
                f"input_features has {len(np.asarray(input_features))} names but the "
                f"transformer was fitted on {self.n_features_in_} features"
            )
        names = [np.format_float_positional(w, trim="-") for w in self.wavelengths_out_]
        return np.asarray(names, dtype=object)
