"""Conversion of reflectance spectra to absorbance as a pipeline step."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil._errors import SpecsoilError
from specsoil.data._kinds import to_absorbance
from specsoil.data._table import SPECTRA_KINDS
from specsoil.preprocess._validation import check_choice


class AbsorbanceTransform(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Convert reflectance to absorbance log10(1/R); absorbance passes through.

    The conversion itself is :func:`specsoil.data._kinds.to_absorbance`, the one the readers
    use, so a pipeline step and a reader never disagree. Its float32 result is returned as
    float64.

    Args:
        kind: What the input values are: ``"reflectance"`` (0-1), ``"reflectance-percent"``
            (0-100, divided by 100 first) or ``"absorbance"`` (returned unchanged).
    """

    def __init__(self, kind: str = "reflectance") -> None:
        self.kind = kind

    def _check_params(self, n_features: int | None = None) -> None:
        """Raise ValueError for an unknown kind."""
        check_choice(self.kind, "kind", SPECTRA_KINDS)

    def __sklearn_tags__(self) -> Tags:
        """Declare that reflectance input must be strictly positive."""
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self.kind != "absorbance"
        return tags

    def _check_positive(self, spectra: NDArray[np.float64]) -> None:
        """Raise if reflectance input holds a value <= 0, naming its row and column."""
        if self.kind == "absorbance" or not spectra.size or spectra.min() > 0:
            return
        row, col = np.argwhere(spectra <= 0)[0]
        names = getattr(self, "feature_names_in_", None)
        where = f"column {col}" + (f" ({names[col]})" if names is not None else "")
        raise SpecsoilError(
            f"AbsorbanceTransform: {where}, row {row} holds {spectra[row, col]:g}; "
            f"{self.kind} values must be > 0 to take log10(1/R)"
        )

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Check the kind and X, and record its width.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths), in the units given by ``kind``.
            y: Ignored.

        Returns:
            The transformer.

        Raises:
            SpecsoilError: If a reflectance value is not > 0, naming its row and column.
        """
        self._check_params()
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=True)
        self._check_positive(spectra)
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return absorbance log10(1/R).

        Args:
            X: Spectra, shape (n_samples, n_wavelengths), in the units given by ``kind``.

        Returns:
            Absorbance, float64, same shape as X.

        Raises:
            SpecsoilError: If a reflectance value is not > 0, naming its row and column.
        """
        check_is_fitted(self)
        spectra: NDArray[np.float64] = validate_data(self, X, dtype=np.float64, reset=False)
        self._check_positive(spectra)
        return to_absorbance(spectra, self.kind).astype(np.float64)  # type: ignore[arg-type]
