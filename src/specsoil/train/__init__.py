"""Training engine for spectral CNNs: scikit-learn estimators on PyTorch Lightning.

``CNNRegressor`` and ``CNNClassifier`` put any network registered in ``specsoil.nets``
behind the scikit-learn estimator contract, so a CNN is cross-validated exactly like PLSR.
Importing this package does not import torch; the engine imports it when it first trains
or loads a network, so the classic models work without the ``cnn`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specsoil.train._augment import AUGMENTATIONS, SpectralAugmenter, check_augment
from specsoil.train._curves import plot_training_curves
from specsoil.train._estimator import CNNClassifier, CNNRegressor
from specsoil.train._feature_maps import LayerGeometry, layer_wavelengths, plot_feature_maps
from specsoil.train._registry import require_torch, torch_available

if TYPE_CHECKING:
    from specsoil.train._loss import masked_mse_loss
    from specsoil.train._module import SpectralLightningModule

__all__ = [
    "AUGMENTATIONS",
    "CNNClassifier",
    "CNNRegressor",
    "LayerGeometry",
    "SpectralAugmenter",
    "SpectralLightningModule",
    "check_augment",
    "layer_wavelengths",
    "masked_mse_loss",
    "plot_feature_maps",
    "plot_training_curves",
    "require_torch",
    "torch_available",
]

# Names that need torch are loaded on first access (PEP 562).
_LAZY = {
    "masked_mse_loss": "specsoil.train._loss",
    "SpectralLightningModule": "specsoil.train._module",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
