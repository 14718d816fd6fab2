"""Splice correction: remove the steps where a spectrometer's detectors join."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil.preprocess._validation import check_axis, check_int, resolve_axis


def _extrapolate_line(
    x: NDArray[np.float64], Y: NDArray[np.float64], at: float
) -> NDArray[np.float64]:
    """Each row's least-squares line through (x, Y[i]) evaluated at ``at``, shape (n,)."""
    centred = x - x.mean()
    slope = (Y - Y.mean(axis=1, keepdims=True)) @ centred / (centred @ centred)
    out: NDArray[np.float64] = Y.mean(axis=1) + slope * (at - x.mean())
    return out


class SpliceCorrection(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Shift the outer detectors' segments onto the middle one at the splice wavelengths.

    An ASD FieldSpec joins three detectors (VNIR up to ~1000 nm, SWIR1 up to ~1800-1830 nm,
    SWIR2 beyond), and a spectrum often steps at the joins. As prospectr's
    ``spliceCorrection`` does, the middle (SWIR1) segment is the reference: a straight line
    is fitted to its first ``interpolation_bands`` bands and extrapolated to the first
    splice, and the VNIR segment is shifted by the difference at its last band; likewise a
    line through SWIR1's last bands, extrapolated to SWIR2's first band, sets the shift of
    the SWIR2 segment. (prospectr evaluates that second line at the splice itself, one band
    short, which shifts even a straight spectrum by one band's slope; here a straight
    spectrum with steps comes back straight.) With one splice only the first segment is
    shifted. Shifts are additive, so the step works on reflectance and absorbance alike.

    Args:
        wavelengths: Band centres in nm, shape (n_wavelengths,), ascending; each splice must
            be one of them (the last band of the segment before the join).
        splice: One or two splice wavelengths in nm; the default is prospectr's and the
            FieldSpec Pro's (1000, 1830). An ASD file's header gives its instrument's
            (``splice1_nm``/``splice2_nm`` in the metadata; 1800 on newer units).
        interpolation_bands: Number of SWIR1 bands each line is fitted to (at least 2).
    """

    def __init__(
        self,
        wavelengths: ArrayLike | None = None,
        *,
        splice: Sequence[float] = (1000.0, 1830.0),
        interpolation_bands: int = 10,
    ) -> None:
        self.wavelengths = wavelengths
        self.splice = splice
        self.interpolation_bands = interpolation_bands

    def _check_params(self, n_features: int | None = None) -> tuple[int, ...]:
        """Validate the parameters; with ``n_features``, return the splice band indices."""
        bands = check_int(self.interpolation_bands, "interpolation_bands", minimum=2)
        try:
            splice = [float(value) for value in self.splice]
        except (TypeError, ValueError):
            raise ValueError(
                f"splice must be one or two wavelengths in nm; got {self.splice!r}"
            ) from None
        if not 1 <= len(splice) <= 2 or (len(splice) == 2 and splice[0] >= splice[1]):
            raise ValueError(
                f"splice must be one or two ascending wavelengths in nm; got {self.splice!r}"
            )
        if self.wavelengths is None:
            raise ValueError("SpliceCorrection needs wavelengths to place the splices")
        if n_features is None:
            check_axis(self.wavelengths, "wavelengths")
            return ()
        axis = resolve_axis(self.wavelengths, n_features, type(self).__name__)
        indices = []
        for wavelength in splice:
            matches = np.flatnonzero(np.isclose(axis, wavelength, rtol=0.0, atol=1e-6))
            if matches.size == 0:
                raise ValueError(
                    f"splice {wavelength:g} nm is not on the wavelength grid "
                    f"({axis[0]:g}-{axis[-1]:g} nm); expected one of the band centres"
                )
            indices.append(int(matches[0]))
        middle_end = indices[1] if len(indices) == 2 else n_features - 1
        if middle_end - indices[0] < bands or indices[-1] >= n_features - 1:
            raise ValueError(
                f"splices {splice} leave fewer than interpolation_bands={bands} bands between "
                "them, or no band after the last one"
            )
        return tuple(indices)

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
        """Return the spectra with the outer segments shifted onto the middle one.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths).

        Returns:
            Corrected spectra, float64, same shape as X.
        """
        check_is_fitted(self)
        out: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=False, copy=True)
        indices = self._check_params(out.shape[1])
        axis = resolve_axis(self.wavelengths, out.shape[1], type(self).__name__)
        bands = int(self.interpolation_bands)
        first = indices[0]
        head = slice(first + 1, first + 1 + bands)  # first bands of the middle segment
        predicted = _extrapolate_line(axis[head], out[:, head], float(axis[first]))
        out[:, : first + 1] -= (out[:, first] - predicted)[:, None]
        if len(indices) == 2:
            second = indices[1]
            tail = slice(second - bands + 1, second + 1)  # last bands of the middle segment
            predicted = _extrapolate_line(axis[tail], out[:, tail], float(axis[second + 1]))
            out[:, second + 1 :] -= (out[:, second + 1] - predicted)[:, None]
        return out
