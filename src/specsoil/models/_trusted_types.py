"""The exact object types a saved specsoil pipeline may hold beyond skops's own defaults.

``skops.io.get_untrusted_types`` lists every type in a ``.skops`` file that skops does not
trust by default (its defaults are plain containers and primitives, numpy dtypes and ufuncs,
and scikit-learn's public estimators). A model folder loads only when that list is a subset
of ``TRUSTED_TYPES``: exactly the types that ``SpectralModel.save`` writes for the recipes and
preprocessing steps specsoil has, and nothing by prefix. Builtin callables (``eval``,
``exec``, ``getattr``, ``__import__``), ``operator`` and ``functools`` helpers, ``os`` or
``posix`` functions and numpy loaders are therefore refused, so a crafted file cannot make
loading run code.

Generated, not hand-written: ``tests/models/test_trusted_types.py`` saves every recipe and
every preprocessing step and fails when this list and what ``save`` writes differ;
``SPECSOIL_UPDATE_TRUSTED_TYPES=1 pytest tests/models/test_trusted_types.py`` rewrites it.
"""

from __future__ import annotations

# The one function: the scorer SVRCV's inner grid search keeps (RMSE of two arrays).
# sklearn.tree._tree.Tree (random forest) is checked after loading, since skops cannot
# check its node arrays (see _spectral_model._check_trees).
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        # BEGIN GENERATED
        "cubist.cubist.Cubist",
        "sklearn.metrics._regression.root_mean_squared_error",
        "sklearn.metrics._scorer._Scorer",
        "sklearn.model_selection._split.KFold",
        "sklearn.tree._tree.Tree",
        "specsoil.models._chains.ChainSelectCV",
        "specsoil.models._cubist.CubistRegressor",
        "specsoil.models._mbl.MemoryBasedLearning",
        "specsoil.models._per_target.PerTargetRegressor",
        "specsoil.models._pls.PLSRegressionCV",
        "specsoil.models._stack.StackedRegressor",
        "specsoil.models._svr.SVRCV",
        "specsoil.preprocess._absorbance.AbsorbanceTransform",
        "specsoil.preprocess._channels.SpectralChannels",
        "specsoil.preprocess._continuum_removal.ContinuumRemoval",
        "specsoil.preprocess._detrend.Detrend",
        "specsoil.preprocess._msc.MultiplicativeScatterCorrection",
        "specsoil.preprocess._resample.Resample",
        "specsoil.preprocess._savitzky_golay.SavitzkyGolay",
        "specsoil.preprocess._snv.StandardNormalVariate",
        "specsoil.preprocess._spectrogram.Spectrogram",
        "specsoil.preprocess._splice.SpliceCorrection",
        "specsoil.train._estimator.CNNRegressor",
        # END GENERATED
    }
)
