"""Detrending: remove a low-order polynomial of wavelength from each spectrum."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil.preprocess._validation import check_axis, check_int, resolve_axis


class Detrend(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Subtract from each spectrum its least-squares polynomial in wavelength.

    Removes curvilinear baselines, typically after SNV (Barnes, Dhanoa & Lister, 1989,
    Appl. Spectrosc. 43:772). All spectra are fitted by one least-squares solve against the
    same design matrix.

    Args:
        order: Degree of the polynomial (0 removes the mean, 1 a line, 2 a parabola).
        wavelengths: Band centres in nm, shape (n_wavelengths,); None uses band positions,
            which is the same for an evenly spaced grid.
    """

    def __init__(self, *, order: int = 2, wavelengths: ArrayLike | None = None) -> None:
        self.order = order
        self.wavelengths = wavelengths

    def _check_params(self, n_features: int | None = None) -> None:
        """Raise ValueError for an invalid order or wavelength axis."""
        order = check_int(self.order, "order", minimum=0)
        if n_features is not None:
            resolve_axis(self.wavelengths, n_features, type(self).__name__)
            if n_features < order + 2:
                raise ValueError(
                    f"order={order} needs at least {order + 2} wavelengths; "
                    f"X has {n_features} feature(s)"
                )
        elif self.wavelengths is not None:
            check_axis(self.wavelengths, "wavelengths")

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Check the parameters against X and record its width.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths), more than ``order + 1`` columns.
            y: Ignored.

        Returns:
            The transformer.
        """
        self._check_params()
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=True)
        self._check_params(spectra.shape[1])
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the residuals of each spectrum from its fitted polynomial.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths).

        Returns:
            Detrended spectra, float64, same shape as X.
        """
        check_is_fitted(self)
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=False)
        axis = resolve_axis(self.wavelengths, spectra.shape[1], type(self).__name__)
        # Map the axis onto [-1, 1] so the Vandermonde matrix stays well conditioned at 2500 nm.
        half_span = 0.5 * (axis[-1] - axis[0]) or 1.0
        scaled = (axis - 0.5 * (axis[0] + axis[-1])) / half_span
        design = np.vander(scaled, int(self.order) + 1, increasing=True)  # (p, order + 1)
        coef, *_ = np.linalg.lstsq(design, spectra.T, rcond=None)  # (order + 1, n_samples)
        out: NDArray[np.float64] = spectra - (design @ coef).T
        return out
