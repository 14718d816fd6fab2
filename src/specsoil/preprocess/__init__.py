"""Spectral preprocessing as scikit-learn transformers, plus a registry of named steps.

Every transformer takes X of shape (n_samples, n_wavelengths), returns float64, clones and
fits in a :class:`sklearn.pipeline.Pipeline`. :func:`make_preprocessing` builds such a
pipeline from steps written as data (YAML configs).

The methods are a few lines of numpy/scipy each, so specsoil does not depend on
``chemotools``: its ``ikpls``/``cvmatrix`` dependencies would not earn their place.
Centering and autoscaling use scikit-learn's ``StandardScaler`` (steps ``center`` and
``autoscale``).
"""

from specsoil.preprocess._absorbance import AbsorbanceTransform
from specsoil.preprocess._channels import SpectralChannels
from specsoil.preprocess._continuum_removal import ContinuumRemoval
from specsoil.preprocess._detrend import Detrend
from specsoil.preprocess._msc import MultiplicativeScatterCorrection
from specsoil.preprocess._resample import Resample
from specsoil.preprocess._savitzky_golay import SavitzkyGolay
from specsoil.preprocess._snv import StandardNormalVariate
from specsoil.preprocess._spectrogram import Spectrogram, spectrogram_shape
from specsoil.preprocess._splice import SpliceCorrection
from specsoil.preprocess._steps import list_preprocessing_steps, make_preprocessing

__all__ = [
    "AbsorbanceTransform",
    "ContinuumRemoval",
    "Detrend",
    "MultiplicativeScatterCorrection",
    "Resample",
    "SavitzkyGolay",
    "SpectralChannels",
    "Spectrogram",
    "SpliceCorrection",
    "StandardNormalVariate",
    "list_preprocessing_steps",
    "make_preprocessing",
    "spectrogram_shape",
]
