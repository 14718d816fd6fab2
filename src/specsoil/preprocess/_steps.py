"""A registry of named preprocessing steps, so configs describe preprocessing as data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from specsoil._errors import SpecsoilError
from specsoil.data._table import SPECTRA_KINDS
from specsoil.preprocess._absorbance import AbsorbanceTransform
from specsoil.preprocess._continuum_removal import ContinuumRemoval
from specsoil.preprocess._detrend import Detrend
from specsoil.preprocess._msc import MultiplicativeScatterCorrection
from specsoil.preprocess._resample import Resample
from specsoil.preprocess._savitzky_golay import SavitzkyGolay
from specsoil.preprocess._snv import StandardNormalVariate
from specsoil.preprocess._splice import SpliceCorrection
from specsoil.preprocess._validation import check_axis

# A builder gets the step's options and the current grid; it returns the transformer and
# the grid after the step (only resampling changes it).
_Builder = Callable[
    [dict[str, Any], NDArray[np.float64]], tuple[BaseEstimator, NDArray[np.float64]]
]


@dataclass(frozen=True, slots=True)
class _Step:
    """One registered step: how to build it and which options it accepts."""

    build: _Builder
    options: tuple[str, ...]


def _absorbance(
    opts: dict[str, Any], grid: NDArray[np.float64]
) -> tuple[BaseEstimator, NDArray[np.float64]]:
    # No default: specsoil tables already hold absorbance, so the input kind must be explicit.
    if "kind" not in opts:
        raise ValueError(f"the absorbance step needs 'kind', one of {list(SPECTRA_KINDS)}")
    return AbsorbanceTransform(**opts), grid


def _resample(
    opts: dict[str, Any], grid: NDArray[np.float64]
) -> tuple[BaseEstimator, NDArray[np.float64]]:
    step = Resample(grid, **opts)
    _, new_grid = step._grid(grid.size)  # raises ValueError for bad options, before any data
    return step, new_grid


def _savgol(
    opts: dict[str, Any], grid: NDArray[np.float64]
) -> tuple[BaseEstimator, NDArray[np.float64]]:
    return SavitzkyGolay(**opts), grid


def _snv(
    opts: dict[str, Any], grid: NDArray[np.float64]
) -> tuple[BaseEstimator, NDArray[np.float64]]:
    return StandardNormalVariate(), grid


def _msc(
    opts: dict[str, Any], grid: NDArray[np.float64]
) -> tuple[BaseEstimator, NDArray[np.float64]]:
    return MultiplicativeScatterCorrection(**opts), grid


def _detrend(
    opts: dict[str, Any], grid: NDArray[np.float64]
) -> tuple[BaseEstimator, NDArray[np.float64]]:
    return Detrend(wavelengths=grid, **opts), grid


def _continuum_removal(
    opts: dict[str, Any], grid: NDArray[np.float64]
) -> tuple[BaseEstimator, NDArray[np.float64]]:
    # Pipelines here run on absorbance (SpectraTable.X), hence this default, unlike the class.
    return ContinuumRemoval(grid, kind=opts.get("kind", "absorbance")), grid


def _splice_correction(
    opts: dict[str, Any], grid: NDArray[np.float64]
) -> tuple[BaseEstimator, NDArray[np.float64]]:
    return SpliceCorrection(grid, **opts), grid


def _center(
    opts: dict[str, Any], grid: NDArray[np.float64]
) -> tuple[BaseEstimator, NDArray[np.float64]]:
    return StandardScaler(with_std=False), grid


def _autoscale(
    opts: dict[str, Any], grid: NDArray[np.float64]
) -> tuple[BaseEstimator, NDArray[np.float64]]:
    return StandardScaler(), grid


_STEPS: dict[str, _Step] = {
    "absorbance": _Step(_absorbance, ("kind",)),
    "resample": _Step(_resample, ("start", "stop", "step", "target_wavelengths", "method")),
    "savgol": _Step(_savgol, ("window_length", "polyorder", "deriv", "mode")),
    "snv": _Step(_snv, ()),
    "msc": _Step(_msc, ("reference",)),
    "detrend": _Step(_detrend, ("order",)),
    "continuum_removal": _Step(_continuum_removal, ("kind",)),
    "splice_correction": _Step(_splice_correction, ("splice", "interpolation_bands")),
    "center": _Step(_center, ()),
    "autoscale": _Step(_autoscale, ()),
}


def list_preprocessing_steps() -> list[str]:
    """Return the names accepted as ``{"name": ...}`` by :func:`make_preprocessing`."""
    return sorted(_STEPS)


def make_preprocessing(
    steps: Sequence[Mapping[str, Any]], wavelengths: ArrayLike
) -> tuple[Pipeline, NDArray[np.float64]]:
    """Build a preprocessing pipeline from steps given as data (e.g. read from YAML).

    Each step is a mapping with a ``name`` and that step's options:

    - ``absorbance``: ``kind`` (``reflectance``, ``reflectance-percent``, ``absorbance``),
      required, since specsoil tables already hold absorbance.
    - ``resample``: ``start``, ``stop``, ``step`` (nm), ``target_wavelengths``, ``method``
      (``linear``, ``mean``, ``cubic``); see :class:`Resample`.
    - ``savgol``: ``window_length`` and ``polyorder`` (counted in bands, so in the step of
      the grid at that point, e.g. after a ``resample``), ``deriv``, ``mode``.
    - ``snv``; ``msc``: ``reference`` (``mean``, ``median``); ``detrend``: ``order``.
    - ``continuum_removal``: ``kind``, default ``absorbance`` because specsoil pipelines run
      on absorbance (lower hull subtracted).
    - ``splice_correction``: ``splice`` (one or two wavelengths on the grid, default
      1000 and 1830 nm), ``interpolation_bands`` (default 10); see :class:`SpliceCorrection`.
    - ``center`` (column means removed) and ``autoscale`` (columns also scaled to unit
      variance): scikit-learn's ``StandardScaler``.

    The wavelength grid is threaded through the steps: ``resample`` changes it, and
    ``detrend``/``continuum_removal`` receive the grid current at their position.
    Options are checked here, before any data is seen.

    Args:
        steps: The steps in order, e.g. ``[{"name": "resample", "step": 10}, {"name": "snv"}]``.
            An empty sequence gives an identity pipeline.
        wavelengths: The input grid in nm, ascending, one value per column of X.

    Returns:
        The unfitted pipeline and the wavelengths of its output columns.

    Raises:
        SpecsoilError: For an unknown step, an unknown option, or an invalid option value;
            the message names the step and lists what is accepted.
    """
    try:
        grid = check_axis(wavelengths, "wavelengths")
    except ValueError as exc:
        raise SpecsoilError(f"preprocessing: {exc}") from None
    built: list[tuple[str, Any]] = []
    for position, raw in enumerate(steps, start=1):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
            raise SpecsoilError(
                f"preprocessing step {position}: expected a mapping with a 'name' key, "
                f"one of {list_preprocessing_steps()}; got {raw!r}"
            )
        name = raw["name"]
        if name not in _STEPS:
            raise SpecsoilError(
                f"preprocessing step {position}: unknown step {name!r}; "
                f"known steps: {list_preprocessing_steps()}"
            )
        spec = _STEPS[name]
        options = {key: value for key, value in raw.items() if key != "name"}
        unknown = sorted(set(options) - set(spec.options))
        if unknown:
            raise SpecsoilError(
                f"preprocessing step {position} ({name}): unknown option(s) {unknown}; "
                f"{name} accepts {list(spec.options) or 'no options'}"
            )
        try:
            transformer, new_grid = spec.build(options, grid)
            check = getattr(transformer, "_check_params", None)
            if check is not None:
                check(grid.size)
        except (TypeError, ValueError) as exc:
            raise SpecsoilError(f"preprocessing step {position} ({name}): {exc}") from None
        label = name if all(label != name for label, _ in built) else f"{name}_{position}"
        built.append((label, transformer))
        grid = new_grid
    if not built:
        built.append(("identity", FunctionTransformer()))
    return Pipeline(built), grid
