"""Standard normal variate: each spectrum centred and scaled by its own mean and std."""

from __future__ import annotations

import warnings
from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data


class StandardNormalVariate(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Centre and scale each spectrum by its own mean and standard deviation.

    Removes multiplicative scatter and baseline offsets spectrum by spectrum (Barnes, Dhanoa
    & Lister, 1989, Appl. Spectrosc. 43:772). The standard deviation uses ``p - 1`` in the
    denominator, as in Barnes et al. (eq. 1) and R ``prospectr::standardNormalVariate``.
    Stateless: ``fit`` only records the number of wavelengths.
    """

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Check X and record its width.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths), at least 2 wavelengths.
            y: Ignored.

        Returns:
            The transformer.
        """
        validate_data(self, X, dtype=np.float64, ensure_min_features=2, reset=True)
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return each spectrum minus its mean, divided by its standard deviation.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths).

        Returns:
            SNV-corrected spectra, float64, same shape as X. A constant spectrum has no
            shape to keep: it comes back as zeros, with a warning.
        """
        check_is_fitted(self)
        # fit enforced >= 2 columns; here the width check against n_features_in_ suffices.
        out: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=False, copy=True)
        magnitude = np.abs(out).max(axis=1)
        out -= out.mean(axis=1, keepdims=True)  # row-wise: each spectrum on its own
        std = out.std(axis=1, ddof=1, keepdims=True)
        # Spread at round-off level (e.g. the mean of a constant row is off by an ulp) means
        # the spectrum is constant; dividing would blow the round-off up to unit scale.
        flat = np.flatnonzero(std[:, 0] <= 16 * np.finfo(np.float64).eps * magnitude)
        if flat.size:
            # One dead spectrum should not stop a batch prediction: it maps to zeros instead.
            warnings.warn(
                f"StandardNormalVariate: {flat.size} constant spectrum(s) (first at row "
                f"{flat[0]}) have std 0 and are returned as zeros",
                UserWarning,
                stacklevel=2,
            )
            out[flat] = 0.0
            std[flat] = 1.0
        out /= std
        return out
