"""Regression models for soil spectra and the named recipes that pair them with preprocessing.

Every estimator follows the scikit-learn regressor contract, accepts y of shape (n,) or
(n, n_targets), and skips missing lab values (NaN) per target instead of imputing them.
"""

from specsoil.models._chains import ChainSelectCV, fit_details
from specsoil.models._clip import (
    ClipBounds,
    apply_clip,
    check_clip,
    clip_to_json,
    describe_clip,
)
from specsoil.models._cubist import CubistRegressor, OptionalDependencyError, cubist_available
from specsoil.models._mbl import MemoryBasedLearning
from specsoil.models._model_files import check_manifest_fields
from specsoil.models._per_target import PerTargetRegressor
from specsoil.models._pls import PLSRegressionCV
from specsoil.models._recipes import (
    STACK,
    STANDARD_CHAINS,
    available_recipes,
    default_recipes,
    list_recipes,
    make_recipe,
    recipe_description,
    recipe_estimator,
    recipe_preprocessing,
)
from specsoil.models._spectral_model import (
    FORMAT_VERSION,
    ConformalOption,
    SpectralModel,
    align_spectra,
    check_format_version,
)
from specsoil.models._stack import StackedRegressor, stacking_weights
from specsoil.models._streaming import fit_model_stream
from specsoil.models._svr import SVRCV
from specsoil.models._transfer import (
    FINETUNE_BATCHNORM,
    FINETUNE_STRATEGIES,
    REPLAY_NEIGHBOURS,
    FinetuneBatchNorm,
    FinetuneStrategy,
    finetune_model,
    is_finetunable,
    similar_rows,
)
from specsoil.models._uncertainty import (
    DEFAULT_CALIBRATION_FRACTION,
    DEFAULT_CONFORMAL_FOLDS,
    DEFAULT_DOMAIN_CONFIDENCE,
    ApplicabilityDomain,
    ConformalCalibration,
    DomainAssessment,
)

__all__ = [
    "DEFAULT_CALIBRATION_FRACTION",
    "DEFAULT_CONFORMAL_FOLDS",
    "DEFAULT_DOMAIN_CONFIDENCE",
    "FINETUNE_BATCHNORM",
    "FINETUNE_STRATEGIES",
    "FORMAT_VERSION",
    "REPLAY_NEIGHBOURS",
    "STACK",
    "STANDARD_CHAINS",
    "SVRCV",
    "ApplicabilityDomain",
    "ChainSelectCV",
    "ClipBounds",
    "ConformalCalibration",
    "ConformalOption",
    "CubistRegressor",
    "DomainAssessment",
    "FinetuneBatchNorm",
    "FinetuneStrategy",
    "MemoryBasedLearning",
    "OptionalDependencyError",
    "PLSRegressionCV",
    "PerTargetRegressor",
    "SpectralModel",
    "StackedRegressor",
    "align_spectra",
    "apply_clip",
    "available_recipes",
    "check_clip",
    "check_format_version",
    "check_manifest_fields",
    "clip_to_json",
    "cubist_available",
    "default_recipes",
    "describe_clip",
    "finetune_model",
    "fit_details",
    "fit_model_stream",
    "is_finetunable",
    "list_recipes",
    "make_recipe",
    "recipe_description",
    "recipe_estimator",
    "recipe_preprocessing",
    "similar_rows",
    "stacking_weights",
]
