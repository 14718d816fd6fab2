"""Spectrograms of spectra: a short-time Fourier transform along the band axis."""

from __future__ import annotations

import numbers
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import get_window, stft
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil.preprocess._validation import check_int


def resolve_noverlap(nperseg: int, noverlap: int | None) -> int:
    """Return the overlap in bands: ``noverlap``, or half a segment when it is None.

    Args:
        nperseg: Segment length in bands (>= 1).
        noverlap: Overlap between segments in bands, or None for ``nperseg // 2``.

    Returns:
        The overlap, in ``[0, nperseg)``.

    Raises:
        ValueError: If ``noverlap`` is not an integer in ``[0, nperseg)``.
    """
    if noverlap is None:
        return nperseg // 2
    overlap = check_int(noverlap, "noverlap", minimum=0)
    if overlap >= nperseg:
        raise ValueError(f"noverlap must be < nperseg={nperseg}; got {overlap}")
    return overlap


def spectrogram_shape(n_bands: int, nperseg: int, noverlap: int | None = None) -> tuple[int, int]:
    """Return (F, T), the spectrogram size that :class:`Spectrogram` gives for ``n_bands``.

    The spectrum is zero-extended by ``nperseg // 2`` bands at both ends (so the first and
    last frames are centred on the first and last bands) and then zero-padded to a whole
    number of hops, as ``scipy.signal.stft(boundary="zeros", padded=True)`` does.

    Args:
        n_bands: Number of bands of each spectrum.
        nperseg: Segment (window) length in bands.
        noverlap: Overlap in bands, or None for ``nperseg // 2``.

    Returns:
        ``(nperseg // 2 + 1, n_frames)``: one-sided frequency bins and time frames.
    """
    overlap = resolve_noverlap(nperseg, noverlap)
    hop = nperseg - overlap
    extended = n_bands + 2 * (nperseg // 2)
    n_frames = -(-max(extended - nperseg, 0) // hop) + 1  # ceil: the last partial hop is padded
    return nperseg // 2 + 1, n_frames


class Spectrogram(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Log-magnitude short-time Fourier transform of each spectrum, for 2D CNNs.

    Each spectrum is cut into overlapping windowed segments along the band axis and each
    segment is Fourier transformed, giving an image of frequency (cycles per band) against
    position (frame), as used by Padarian, Minasny & McBratney (2019, Geoderma Regional 16:
    e00198) to feed LUCAS spectra to 2D CNNs. Wraps :func:`scipy.signal.stft` on all spectra
    at once (``boundary="zeros"``, ``padded=True``, ``scaling="spectrum"``: magnitudes are
    divided by the window sum). Segments are counted in bands: resample first when the band
    step matters.

    The output is 4-D, (n_samples, 1, F, T), so this transformer is the last step of a
    preprocessing pipeline.

    Args:
        window: A window name or ``(name, parameter)`` tuple accepted by
            :func:`scipy.signal.get_window`, e.g. ``"hann"`` or ``("tukey", 0.25)``.
        nperseg: Segment length in bands, <= the number of bands.
        noverlap: Overlap between segments in bands, < ``nperseg``; None for half a segment.
        log: Return ``log(|Z| + eps)`` (natural log) instead of ``|Z|``.
        eps: Added before the log so that zero magnitudes stay finite (> 0).

    Attributes:
        frequencies_: Frequency of each row of the image in cycles per band, shape (F,).
        frame_positions_: Band index (0-based, may be fractional) at the centre of each
            frame, shape (T,).
        n_features_in_: Number of bands seen in ``fit``.
    """

    def __init__(
        self,
        *,
        window: str | tuple[Any, ...] = "hann",
        nperseg: int = 32,
        noverlap: int | None = None,
        log: bool = True,
        eps: float = 1e-6,
    ) -> None:
        self.window = window
        self.nperseg = nperseg
        self.noverlap = noverlap
        self.log = log
        self.eps = eps

    def _check_params(self, n_features: int | None = None) -> tuple[int, int]:
        """Validate the parameters (and the width of X); return (nperseg, noverlap)."""
        nperseg = check_int(self.nperseg, "nperseg", minimum=2)
        noverlap = resolve_noverlap(nperseg, self.noverlap)
        if not isinstance(self.window, str | tuple):
            raise ValueError(
                f"window must be a window name or a (name, parameter) tuple for "
                f"scipy.signal.get_window; got {self.window!r}"
            )
        try:
            get_window(self.window, nperseg)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"window {self.window!r} is not usable: {exc}") from None
        if not isinstance(self.log, bool | np.bool_):
            raise ValueError(f"log must be True or False; got {self.log!r}")
        if (
            isinstance(self.eps, bool)
            or not isinstance(self.eps, numbers.Real)
            or not np.isfinite(self.eps)
            or self.eps <= 0
        ):
            raise ValueError(f"eps must be a finite number > 0; got {self.eps!r}")
        if n_features is not None and nperseg > n_features:
            raise ValueError(
                f"nperseg={nperseg} must be <= the number of bands; X has {n_features} feature(s)"
            )
        return nperseg, noverlap

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Check the parameters against X and record the frequency and frame axes.

        Args:
            X: Spectra, shape (n_samples, n_bands).
            y: Ignored.

        Returns:
            The transformer.

        Raises:
            ValueError: If a parameter is invalid or ``nperseg`` exceeds the number of bands.
        """
        self._check_params()
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=True)
        nperseg, noverlap = self._check_params(spectra.shape[1])
        n_freq, n_frames = spectrogram_shape(spectra.shape[1], nperseg, noverlap)
        self.frequencies_ = np.arange(n_freq, dtype=np.float64) / nperseg
        self.frame_positions_ = np.arange(n_frames, dtype=np.float64) * (nperseg - noverlap)
        return self

    def stft(self, spectra: NDArray[np.float64]) -> NDArray[np.complex128]:
        """The complex short-time Fourier transform behind :meth:`transform`.

        Args:
            spectra: Spectra, shape (n_samples, n_bands).

        Returns:
            Coefficients, shape (n_samples, F, T). The ONNX export applies it to the
            identity matrix to capture the transform as fixed matrices.
        """
        nperseg, noverlap = self._check_params(spectra.shape[1])
        _, _, coefficients = stft(
            spectra,
            window=self.window,
            nperseg=nperseg,
            noverlap=noverlap,
            boundary="zeros",
            padded=True,
            detrend=False,
            scaling="spectrum",
            axis=-1,
        )
        return np.asarray(coefficients, dtype=np.complex128)

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the (log-)magnitude spectrogram of every spectrum.

        Args:
            X: Spectra, shape (n_samples, n_bands).

        Returns:
            Spectrograms, float64, shape (n_samples, 1, F, T) with ``F = nperseg // 2 + 1``
            frequency bins and T frames (see :func:`spectrogram_shape`).
        """
        check_is_fitted(self)
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=False)
        magnitude: NDArray[np.float64] = np.abs(self.stft(spectra))
        if self.log:
            magnitude = np.log(magnitude + float(self.eps))
        return magnitude[:, np.newaxis, :, :]  # (N, 1, F, T)
