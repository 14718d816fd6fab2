"""Savitzky-Golay smoothing and derivatives along the wavelength axis."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import savgol_filter
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil.preprocess._validation import check_choice, check_int

_MODES = ("interp", "mirror", "nearest", "constant", "wrap")


class SavitzkyGolay(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Smooth or differentiate each spectrum with a Savitzky-Golay filter.

    Fits a polynomial of degree ``polyorder`` by least squares in a moving window of
    ``window_length`` bands and returns its value or derivative at the window centre
    (Savitzky & Golay, 1964, Anal. Chem. 36:1627). Wraps :func:`scipy.signal.savgol_filter`
    along axis 1. The window is counted in bands, not nm, and derivatives are per band:
    resample first when the band step matters.

    Args:
        window_length: Odd number of bands in the window, > ``polyorder`` and <= the number
            of wavelengths.
        polyorder: Degree of the local polynomial (>= 0).
        deriv: Order of the derivative (0 = smoothing), <= ``polyorder``.
        mode: Edge handling, as in scipy: ``"interp"`` (fit the polynomial to the edge
            window), ``"mirror"``, ``"nearest"``, ``"constant"`` or ``"wrap"``.
    """

    def __init__(
        self,
        window_length: int = 11,
        polyorder: int = 2,
        *,
        deriv: int = 0,
        mode: str = "interp",
    ) -> None:
        self.window_length = window_length
        self.polyorder = polyorder
        self.deriv = deriv
        self.mode = mode

    def _check_params(self, n_features: int | None = None) -> None:
        """Raise ValueError for parameters that can never work (and too few wavelengths)."""
        polyorder = check_int(self.polyorder, "polyorder", minimum=0)
        window = self.window_length
        if (
            isinstance(window, bool)
            or not isinstance(window, int | np.integer)
            or window % 2 == 0
            or window <= polyorder
        ):
            raise ValueError(f"window_length must be odd and > polyorder={polyorder}; got {window}")
        deriv = check_int(self.deriv, "deriv", minimum=0)
        if deriv > polyorder:
            raise ValueError(f"deriv must be <= polyorder={polyorder}; got {deriv}")
        check_choice(self.mode, "mode", _MODES)
        if n_features is not None and window > n_features:
            # Worded so sklearn's "1 feature(s)" convention still matches for width-1 input.
            raise ValueError(
                f"window_length={window} must be <= the number of wavelengths; "
                f"X has {n_features} feature(s)"
            )

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Check the parameters against X and record its width.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths).
            y: Ignored.

        Returns:
            The transformer.

        Raises:
            ValueError: If a parameter is invalid or the window is wider than X.
        """
        self._check_params()
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=True)
        self._check_params(spectra.shape[1])
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the filtered spectra.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths).

        Returns:
            Smoothed spectra or their derivative (per band), float64, same shape as X.
        """
        check_is_fitted(self)
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=False)
        out: NDArray[np.float64] = savgol_filter(
            spectra,
            int(self.window_length),
            int(self.polyorder),
            deriv=int(self.deriv),
            mode=self.mode,
            axis=1,
        )
        return out
