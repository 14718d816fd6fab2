"""Continuum removal: normalise each spectrum by its convex hull."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil._errors import SpecsoilError
from specsoil.preprocess._validation import check_axis, check_choice, resolve_axis

_KINDS = ("reflectance", "absorbance")


def upper_hull_indices(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.intp]:
    """Return the indices of the vertices of the upper convex hull of points (x, y).

    Andrew's monotone chain, upper half only: ``x`` is already sorted, so one O(p) scan
    suffices (each point is pushed and popped at most once). Collinear points are dropped.

    Args:
        x: Strictly ascending abscissae, shape (p,).
        y: Ordinates, shape (p,).

    Returns:
        Ascending vertex indices; always include 0 and p - 1.
    """
    xs = x.tolist()  # Python floats: the scan is scalar work, far faster than numpy indexing
    ys = y.tolist()
    hull: list[int] = []
    for k in range(len(xs)):
        xk, yk = xs[k], ys[k]
        while len(hull) >= 2:
            i, j = hull[-2], hull[-1]
            # j is on or below the chord i-k (a non-right turn): it is not an upper vertex.
            if (xs[j] - xs[i]) * (yk - ys[i]) - (ys[j] - ys[i]) * (xk - xs[i]) >= 0:
                hull.pop()
            else:
                break
        hull.append(k)
    return np.asarray(hull, dtype=np.intp)


class ContinuumRemoval(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Divide each spectrum by its upper convex hull (or subtract the lower hull).

    The continuum is the convex hull fitted over the spectrum, linear between hull vertices
    (Clark & Roush, 1984, J. Geophys. Res. 89:6329). For reflectance the result is
    ``x / upper_hull`` (1.0 on the hull, < 1 in absorption features); absorption features are
    peaks in absorbance, so for absorbance it is ``x - lower_hull`` (0.0 on the hull, > 0 in
    features). There is no vectorised convex hull, so the hull is found spectrum by spectrum
    with an O(p) monotone-chain scan; interpolation and normalisation are vectorised.

    Args:
        wavelengths: Band centres in nm, shape (n_wavelengths,); None uses band positions.
            The hull depends on the spacing, so pass them for irregular grids.
        kind: ``"reflectance"`` (values must be > 0) or ``"absorbance"``.
    """

    def __init__(self, wavelengths: ArrayLike | None = None, *, kind: str = "reflectance") -> None:
        self.wavelengths = wavelengths
        self.kind = kind

    def _check_params(self, n_features: int | None = None) -> None:
        """Raise ValueError for an unknown kind or an invalid wavelength axis."""
        check_choice(self.kind, "kind", _KINDS)
        if n_features is not None:
            resolve_axis(self.wavelengths, n_features, type(self).__name__)
        elif self.wavelengths is not None:
            check_axis(self.wavelengths, "wavelengths")

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Check the parameters against X and record its width.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths).
            y: Ignored.

        Returns:
            The transformer.
        """
        self._check_params()
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=True)
        self._check_params(spectra.shape[1])
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the continuum-removed spectra.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths).

        Returns:
            ``x / upper_hull`` (reflectance) or ``x - lower_hull`` (absorbance), float64.

        Raises:
            SpecsoilError: If ``kind="reflectance"`` and a value is not > 0.
        """
        check_is_fitted(self)
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=False)
        axis = resolve_axis(self.wavelengths, spectra.shape[1], type(self).__name__)
        reflectance = self.kind == "reflectance"
        if reflectance and np.any(spectra <= 0):
            row, col = np.argwhere(spectra <= 0)[0]
            raise SpecsoilError(
                f"ContinuumRemoval: reflectance at row {row}, column {col} "
                f"({axis[col]:g}) is {spectra[row, col]:g}; expected values > 0 "
                "(use kind='absorbance' for absorbance spectra)"
            )
        # The lower hull of x is minus the upper hull of -x.
        signed = spectra if reflectance else -spectra
        hull = np.empty_like(spectra)
        for row, spectrum in enumerate(signed):
            vertices = upper_hull_indices(axis, spectrum)
            hull[row] = np.interp(axis, axis[vertices], spectrum[vertices])
        if reflectance:
            out: NDArray[np.float64] = spectra / hull
            return out
        return spectra + hull
