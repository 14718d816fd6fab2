"""Multiplicative scatter correction against a reference spectrum learnt from training data."""

from __future__ import annotations

import warnings
from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

_REFERENCES = ("mean", "median")


class MultiplicativeScatterCorrection(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Remove additive and multiplicative scatter by regressing each spectrum on a reference.

    Each spectrum ``x`` is fitted as ``x ≈ a + b * reference_`` by ordinary least squares
    and replaced by ``(x - a) / b`` (Geladi, MacDougall & Martens, 1985, Appl. Spectrosc.
    39:491). The reference is learnt in ``fit`` from the training spectra only, so it never
    sees validation data.

    Args:
        reference: ``"mean"`` or ``"median"`` of the training spectra, or a fixed
            reference spectrum of shape (n_wavelengths,).

    Attributes:
        reference_: The reference spectrum, shape (n_wavelengths,).
    """

    def __init__(self, *, reference: str | ArrayLike = "mean") -> None:
        self.reference = reference

    def _check_params(self, n_features: int | None = None) -> None:
        """Raise ValueError for a reference that is neither a known name nor a spectrum."""
        if isinstance(self.reference, str):
            if self.reference not in _REFERENCES:
                raise ValueError(
                    f"reference must be one of {list(_REFERENCES)} or a spectrum; "
                    f"got {self.reference!r}"
                )
            return
        reference = np.asarray(self.reference, dtype=np.float64)
        if reference.ndim != 1 or not np.all(np.isfinite(reference)):
            raise ValueError(
                f"reference must be a finite 1-D spectrum; got shape {reference.shape}"
            )
        if n_features is not None and reference.size != n_features:
            raise ValueError(
                f"reference has {reference.size} values but X has {n_features} columns"
            )

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Learn the reference spectrum from the training spectra.

        Args:
            X: Training spectra, shape (n_samples, n_wavelengths), at least 2 wavelengths.
            y: Ignored.

        Returns:
            The fitted transformer.

        Raises:
            ValueError: If the reference is invalid or constant across wavelengths.
        """
        self._check_params()
        spectra: NDArray[np.float64] = validate_data(
            self, X, dtype=np.float64, ensure_min_features=2, reset=True
        )
        self._check_params(spectra.shape[1])
        if isinstance(self.reference, str):
            reduce = np.mean if self.reference == "mean" else np.median
            reference = reduce(spectra, axis=0)
        else:
            reference = np.array(self.reference, dtype=np.float64)
        if np.ptp(reference) == 0:
            raise ValueError(
                "MultiplicativeScatterCorrection: the reference spectrum is constant; "
                "expected a reference that varies across wavelengths"
            )
        self.reference_ = reference
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the scatter-corrected spectra ``(x - a) / b``.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths).

        Returns:
            Corrected spectra, float64, same shape as X. A spectrum with slope 0 on the
            reference (e.g. a constant one) only has its offset removed, with a warning.
        """
        check_is_fitted(self)
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=False)
        reference = self.reference_
        centred_reference = reference - reference.mean()
        row_means = spectra.mean(axis=1)
        # Closed-form simple regression of every spectrum on the reference at once.
        slope = (
            (spectra - row_means[:, None])
            @ centred_reference
            / (centred_reference @ centred_reference)
        )
        offset = row_means - slope * reference.mean()
        # A slope at round-off level (e.g. a constant spectrum) carries no scale to undo.
        explained = np.abs(slope) * np.abs(centred_reference).max()
        flat = np.flatnonzero(explained <= 1e-12 * np.abs(spectra).max(axis=1))
        if flat.size:
            # No scale can be recovered (e.g. a constant spectrum): only the offset is removed.
            warnings.warn(
                f"MultiplicativeScatterCorrection: {flat.size} spectrum(s) (first at row "
                f"{flat[0]}) have slope 0 on the reference; only their offset is removed",
                UserWarning,
                stacklevel=2,
            )
            slope[flat] = 1.0
        out: NDArray[np.float64] = (spectra - offset[:, None]) / slope[:, None]
        return out
