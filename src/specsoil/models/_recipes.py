"""Named recipes: a default preprocessing paired with a tuned-in-training-folds estimator.

Every recipe takes absorbance spectra (the data layer converts reflectance) and starts by
band-averaging onto a 10 nm grid. That makes one recipe fit instruments sampled every
0.5 nm (LUCAS), 1 nm (ASD), 2 nm (FOSS NIRSystems) or irregularly, averages out band noise,
and keeps 200-odd features for the vis-NIR range, which is ample: soil absorption features
are tens of nm wide, and 10 nm grids are the usual choice for large soil spectral libraries
(Viscarra Rossel et al., 2016, Earth-Sci. Rev. 155:198). Savitzky-Golay windows below are
counted in bands of that 10 nm grid. Hyper-parameters that matter (PLS components, SVR
grid, MBL neighbourhood size) are tuned by inner CV inside whatever data ``fit`` receives.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from numpy.typing import ArrayLike
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from specsoil._errors import SpecsoilError
from specsoil.models._chains import ChainSelectCV
from specsoil.models._cubist import CubistRegressor, _cubist_class, cubist_available
from specsoil.models._mbl import MemoryBasedLearning
from specsoil.models._per_target import PerTargetRegressor
from specsoil.models._pls import PLSRegressionCV
from specsoil.models._stack import StackedRegressor
from specsoil.models._svr import SVRCV
from specsoil.preprocess import SpectralChannels, Spectrogram, make_preprocessing
from specsoil.train import CNNRegressor, require_torch, torch_available

# Band averaging to 10 nm (see the module docstring).
_RESAMPLE_10NM: dict[str, Any] = {"name": "resample", "step": 10, "method": "mean"}
# First derivative by a 7-band (70 nm) quadratic Savitzky-Golay filter: removes additive
# baseline offsets and sharpens overlapping bands; a 2nd-order polynomial over ~70 nm keeps
# the broad soil absorptions (e.g. 1400, 1900, 2200 nm) while smoothing detector noise
# (Savitzky & Golay, 1964; Stenberg et al., 2010, Adv. Agron. 107:163).
_SG_FIRST_DERIVATIVE: dict[str, Any] = {
    "name": "savgol",
    "window_length": 7,
    "polyorder": 2,
    "deriv": 1,
}
# Standard normal variate: per-spectrum centring and scaling against multiplicative
# scatter from particle size and packing (Barnes et al., 1989, Appl. Spectrosc. 43:772).
_SNV: dict[str, Any] = {"name": "snv"}
# Multiplicative scatter correction against the training mean spectrum (Geladi et al., 1985,
# Appl. Spectrosc. 39:491): SNV's aim, with a reference learnt from the training rows.
_MSC: dict[str, Any] = {"name": "msc"}

# The standard chains the classic recipes choose among, inside the training rows, after their
# 10 nm band averaging: the usual candidates of soil spectroscopy studies, which rarely agree
# on one winner across properties and libraries (e.g. Stenberg et al., 2010; Barra et al.,
# 2021, TrAC 135:116166). Each target gets its own chain (see ChainSelectCV).
STANDARD_CHAINS: dict[str, tuple[Mapping[str, Any], ...]] = {
    "absorbance": (),
    "snv": (_SNV,),
    "sg1": (_SG_FIRST_DERIVATIVE,),
    "snv_sg1": (_SNV, _SG_FIRST_DERIVATIVE),
    "msc_sg1": (_MSC, _SG_FIRST_DERIVATIVE),
    # svr's chain before the choice (derivative, then SNV): its reference, see below.
    "sg1_snv": (_SG_FIRST_DERIVATIVE, _SNV),
}
# The preprocessing step that asks for the choice: last in a recipe's preprocessing, as data,
# so a config fixes one chain by listing its steps instead (or narrows ``chains``).
SELECT_CHAIN = "select_chain"
_SELECT_OPTIONS = ("chains", "cv", "reference")
_FIVE = ["absorbance", "snv", "sg1", "snv_sg1", "msc_sg1"]


def _select(reference: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    # The recipe's long-standing chain is the reference: another replaces it only when
    # significantly better in the inner CV (see ChainSelectCV._choose). Plain "lowest inner-CV
    # RMSE" among the five made geeves worse (docs/benchmarks.md, bench_cv): PLSR clay 7.90
    # against 7.42 with absorbance, as the luckiest chain of each fold changed from fold to fold.
    return {
        "name": SELECT_CHAIN,
        "chains": [*_FIVE, *extra],
        "reference": reference,
    }


@dataclass(frozen=True, slots=True)
class _Recipe:
    """A recipe: its default preprocessing and how to build its estimator."""

    description: str
    preprocessing: tuple[Mapping[str, Any], ...]
    # Returns the estimator whose parameters ``params`` overrides, already seeded.
    build: Callable[[int], Any]
    # Wraps the tuned estimator into the one placed in the pipeline (e.g. per target).
    wrap: Callable[[Any], Any] | None = None
    # Raises a SpecsoilError when an optional dependency is missing.
    require: Callable[[], object] | None = None
    available: Callable[[], bool] | None = None
    # Scores the chains of a select_chain step, from the tuned estimator and the seed;
    # None scores them with the estimator itself.
    chain_proxy: Callable[[Any, int], Any] | None = None


def _rf(random_state: int) -> RandomForestRegressor:
    # 300 trees: the error of a forest levels off within a few hundred trees (Breiman, 2001);
    # a third of the features per split is Breiman's regression default (randomForest's
    # mtry = p/3); the library default of all features would give correlated bagged trees.
    return RandomForestRegressor(n_estimators=300, max_features=1 / 3, random_state=random_state)


def _pls_proxy(estimator: Any, seed: int) -> PLSRegressionCV:
    # For models whose every inner fit is dear, the PLSR curve judges the chain: one PLS fit
    # per inner fold and chain. Cubist's committees would cost a full boosted fit per fold and
    # chain (25x the model); MBL, even at one neighbourhood size, cost 15x its own fit on
    # geeves (81 s against 5.5 s for one outer fold). Both end in linear models of the
    # bands (Cubist's rules; MBL's local PLS), which is what the PLSR curve scores.
    return PLSRegressionCV(max_components=30, cv=10, selection="min", random_state=seed)


def _svr_proxy(estimator: SVRCV, seed: int) -> TransformedTargetRegressor:
    # The model itself at the centre of its grid (middle C; the RBF width heuristic 1 /
    # n_features after autoscaling, i.e. gamma_factor 1; first epsilon), without the grid
    # search, so a chain costs five SVR fits instead of 46.
    C, _, epsilon = estimator._check_params()
    svr = SVR(kernel="rbf", C=sorted(C)[len(C) // 2], gamma="scale", epsilon=epsilon[0])
    return TransformedTargetRegressor(
        regressor=Pipeline([("scale", StandardScaler()), ("svr", svr)]),
        transformer=StandardScaler(),
    )


_RECIPES: dict[str, _Recipe] = {
    # PLSR: the chemometric baseline (Wold et al., 2001). PLS centres X itself. Components:
    # the lowest 10-fold inner-CV RMSE, caret's default rule (selectionFunction = "best";
    # Kuhn, 2008, J. Stat. Softw. 28(5)). Why not the one-SE rule: soil spectra carry many
    # weak, still useful components, so the CV curve flattens slowly and one SE (sd(residuals)
    # / sqrt(n), as in pls::selectNcomp) stops several components early; scored by outer
    # 10-fold CV it underfit every geeves target (4 instead of 9 components for clay). Ten
    # inner folds rather than five: each inner model sees 90 % of the data, so the curve is
    # less biased towards too few components (Kohavi, 1995, IJCAI; Hastie et al., 2009, sec.
    # 7.10.1), at a negligible cost since the curve comes from one fit per fold. The chain
    # and the number of components are chosen jointly from those same inner folds.
    "plsr": _Recipe(
        description="PLS regression; preprocessing chain and components by 10-fold inner CV",
        preprocessing=(_RESAMPLE_10NM, _select("absorbance")),
        build=lambda seed: PLSRegressionCV(
            max_components=30, cv=10, selection="min", random_state=seed
        ),
    ),
    # Memory-based learning as in resemble (Ramirez-Lopez et al., 2013); their soil
    # applications use first-derivative spectra, which keep the neighbour search from
    # matching spectra on baseline offsets, now one of the candidate chains.
    "mbl": _Recipe(
        description="memory-based learning: local weighted-average PLS on PCA neighbours; "
        "preprocessing chain by a PLSR inner CV",
        preprocessing=(_RESAMPLE_10NM, _select("sg1")),
        build=lambda seed: MemoryBasedLearning(random_state=seed),
        chain_proxy=_pls_proxy,
    ),
    # RBF SVR compares whole spectra by distance, so scatter removal (SNV, MSC, derivative)
    # before the kernel usually matters (e.g. Stevens et al., 2013, PLoS ONE 8:e66409).
    "svr": _Recipe(
        description="RBF support vector regression, C and gamma by inner CV grid search; "
        "preprocessing chain by inner CV",
        preprocessing=(_RESAMPLE_10NM, _select("sg1_snv", ("sg1_snv",))),
        build=lambda seed: SVRCV(random_state=seed),
        chain_proxy=_svr_proxy,
    ),
    # Trees split on single bands, so the derivative makes each band carry local shape
    # rather than the overall albedo shared by all bands.
    "rf": _Recipe(
        description="random forest (300 trees, a third of the bands per split)",
        preprocessing=(_RESAMPLE_10NM, _SG_FIRST_DERIVATIVE),
        build=_rf,
        wrap=PerTargetRegressor,
    ),
    # Cubist (Viscarra Rossel & Webster, 2012, Eur. J. Soil Sci. 63:848); 20 boosted
    # committees, within the range Kuhn & Johnson (2013, ch. 8.7) tune over.
    "cubist": _Recipe(
        description="Cubist model trees with 20 committees (optional GPL extra); "
        "preprocessing chain by a PLSR inner CV",
        preprocessing=(_RESAMPLE_10NM, _select("absorbance")),
        build=lambda seed: CubistRegressor(n_committees=20, random_state=seed),
        require=_cubist_class,
        available=cubist_available,
        chain_proxy=_pls_proxy,
    ),
}


def _require_torch() -> None:
    require_torch("the CNN recipes")


def _cnn_recipe(
    module: str,
    description: str,
    preprocessing: tuple[Mapping[str, Any], ...],
    *,
    wrap: Callable[[Any], Any] | None = None,
    **params: Any,
) -> _Recipe:
    """A recipe around ``CNNRegressor(module)``; it needs the optional torch extra."""

    # One torch thread: on 2-core machines two threads ran slower than one (issue 3 timings).
    def build(seed: int) -> CNNRegressor:
        # A deep copy, so estimators never share (and mutate) one augment dict.
        return CNNRegressor(module, num_threads=1, random_state=seed, **copy.deepcopy(params))

    return _Recipe(
        description=description,
        preprocessing=preprocessing,
        build=build,
        wrap=wrap,
        require=_require_torch,
        available=torch_available,
    )


def _with_spectrogram(estimator: Any) -> Pipeline:
    # 2D nets read (N, 1, F, T) spectrograms: a 32-band window (320 nm on the 10 nm grid)
    # spans the broad soil absorptions while leaving several frames along the spectrum.
    return Pipeline([("spectrogram", Spectrogram(nperseg=32)), ("cnn", estimator)])


def _with_channels(estimator: Any) -> Pipeline:
    # The 7-band (70 nm) derivative is the one the classic recipes use (_SG_FIRST_DERIVATIVE).
    return Pipeline([("channels", SpectralChannels(window_length=7)), ("cnn", estimator)])


# Networks see standardised bands (autoscale): they learn faster when every input channel
# has a comparable scale (LeCun et al., 2012, "Efficient BackProp"), and it keeps one
# learning rate sensible across instruments whose absorbance levels differ.
_CNN_PREPROCESSING = (_RESAMPLE_10NM, {"name": "autoscale"})
# cnn1d standardises inside its channel step (SpectralChannels), after SNV and derivative.
_CNN1D_PREPROCESSING = (_RESAMPLE_10NM,)
# cnn1d training settings, chosen by 5-fold CV inside the calibration data (nirsoil
# train == 1 rows; never its validation rows), see docs/benchmarks.md (bench_cnn).
_CNN1D_PARAMS: dict[str, Any] = {
    # Longer training with more patience, the setting every channel variant was compared
    # under (on absorbance alone it made no difference: R² 0.35/0.46/0.36 against
    # 0.36/0.49/0.39 with 100 epochs and patience 10).
    "max_epochs": 200,
    "patience": 20,
    # A higher peak learning rate with stronger weight decay: R² 0.718 / 0.810 / 0.586
    # (N, C, CEC) against 0.708 / 0.799 / 0.539 at the engine's 1e-3 / 1e-4. Augmentation
    # (offset, slope 0.05, scatter 0.02, noise 0.02, shift 0.3 in standardised units) gave
    # 0.726 / 0.818 / 0.543 alone but 0.684 / 0.779 / 0.528 combined with this setting, so
    # it is left off: seed-to-seed differences are about 0.02-0.04 R² here.
    "lr": 3e-3,
    "weight_decay": 1e-3,
    # Early stopping only chooses the number of epochs; the model is then retrained on all
    # rows to the end of a one-cycle schedule of that length (issue 12.1, bench_cnn).
    "refit": True,
}
_RECIPES.update(
    {
        "cnn1d": _cnn_recipe(
            "cnn1d",
            "the default 1D CNN (specsoil.nets cnn1d) on absorbance, derivative and SNV "
            "channels, early stopping",
            _CNN1D_PREPROCESSING,
            wrap=_with_channels,
            **_CNN1D_PARAMS,
        ),
        "seed_cnn": _cnn_recipe(
            "seed_cnn", "the classic three-convolution teaching CNN", _CNN_PREPROCESSING
        ),
        "cnn2d": _cnn_recipe(
            "cnn2d",
            "2D CNN on the spectrogram (STFT, 32-band window)",
            _CNN_PREPROCESSING,
            wrap=_with_spectrogram,
        ),
        "cnn1d2d": _cnn_recipe(
            "cnn1d2d",
            "two-branch CNN: 1D on the spectrum, 2D on its spectrogram",
            _CNN_PREPROCESSING,
        ),
        # Recurrent and attention networks (issue 12.5) on cnn1d's channels and training;
        # the peak rate is lower (1e-3): recurrences and attention diverged more readily.
        **{
            name: _cnn_recipe(
                name,
                f"{description} over the band sequence, on cnn1d's channels",
                _CNN1D_PREPROCESSING,
                wrap=_with_channels,
                **{**_CNN1D_PARAMS, "lr": 1e-3},
            )
            for name, description in (
                ("lstm1d", "bidirectional LSTM after a strided conv stem"),
                ("gru1d", "bidirectional GRU after a strided conv stem"),
                ("transformer1d", "transformer encoder on 8-band patches"),
            )
        },
    }
)
# Stacked regression over whole member recipes; built by make_recipe (members need the grid).
STACK = "stack"
_RECIPES[STACK] = _Recipe(
    description="stacked regression: non-negative weights (summing to 1) on the members' "
    "inner-CV predictions; members plsr, mbl, svr, rf, cubist by default",
    preprocessing=(),
    build=lambda seed: None,
)
# What `specsoil cv` (and so `make demo`) runs without --model: the classic recipes and the
# default CNN, so every comparison shows where the CNN stands (docs/benchmarks.md).
_DEFAULT_RECIPES = ("plsr", "cubist", "rf", "svr", "mbl", "cnn1d")


def default_recipes() -> list[str]:
    """The recipes ``specsoil cv`` compares when none is named, where installed."""
    available = set(available_recipes())
    return [name for name in _DEFAULT_RECIPES if name in available]


def list_recipes() -> list[str]:
    """Return the names of all recipes, sorted."""
    return sorted(_RECIPES)


def available_recipes() -> list[str]:
    """Return the recipes whose optional dependencies are installed, sorted."""
    return [
        name for name in list_recipes() if (check := _RECIPES[name].available) is None or check()
    ]


def recipe_description(name: str) -> str:
    """Return a one-line description of recipe ``name``."""
    return _get(name).description


def _get(name: str) -> _Recipe:
    if name not in _RECIPES:
        raise SpecsoilError(f"unknown recipe {name!r}; available recipes: {list_recipes()}")
    return _RECIPES[name]


def recipe_preprocessing(name: str) -> list[dict[str, Any]]:
    """Return the default preprocessing steps of recipe ``name`` (a fresh copy).

    Raises:
        SpecsoilError: If ``name`` is not a recipe.
    """
    return [copy.deepcopy(dict(step)) for step in _get(name).preprocessing]


def recipe_estimator(
    name: str, *, params: Mapping[str, Any] | None = None, random_state: int = 0
) -> Any:
    """Build the estimator of recipe ``name`` (without preprocessing).

    Args:
        name: A recipe from :func:`list_recipes`.
        params: Overrides of the estimator's parameters (for ``rf``, of the
            ``RandomForestRegressor`` inside the per-target wrapper).
        random_state: Seed for every stochastic part, unless ``params`` sets its own.

    Returns:
        The unfitted estimator, accepting y of shape (n,) or (n, k) with NaN for missing.

    Raises:
        SpecsoilError: For an unknown recipe, an unknown or invalid parameter, or a missing
            optional dependency.
    """
    recipe = _get(name)
    if name == STACK:
        raise SpecsoilError(
            f"recipe {STACK!r} is built from whole member recipes, which need the wavelength "
            "grid: use make_recipe"
        )
    if recipe.require is not None:
        recipe.require()
    estimator = recipe.build(random_state)
    overrides = dict(params or {})
    valid = sorted(estimator.get_params(deep=False))
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise SpecsoilError(
            f"recipe {name!r}: unknown parameter(s) {unknown}; valid parameters: {valid}"
        )
    estimator.set_params(**overrides)
    _check_estimator_params(name, estimator)
    return recipe.wrap(estimator) if recipe.wrap is not None else estimator


def _check_estimator_params(name: str, estimator: Any) -> None:
    """Reject invalid parameter values now, before any data is read or fitted."""
    checks = [getattr(estimator, attr, None) for attr in ("_check_params", "_k_values")]
    if hasattr(estimator, "_parameter_constraints"):
        checks.append(estimator._validate_params)  # scikit-learn's own constraint check
    try:
        for check in checks:
            if callable(check):
                check()
    except (TypeError, ValueError) as exc:
        message = str(exc).replace("\n", " ")
        raise SpecsoilError(f"recipe {name!r}: {message}") from None


def make_recipe(
    name: str,
    wavelengths: ArrayLike,
    *,
    preprocessing: Sequence[Mapping[str, Any]] | None = None,
    params: Mapping[str, Any] | None = None,
    random_state: int = 0,
) -> Pipeline:
    """Build the unfitted pipeline of recipe ``name`` for spectra on ``wavelengths``.

    Args:
        name: A recipe from :func:`list_recipes`: ``plsr``, ``mbl``, ``svr``, ``rf``,
            ``cubist``, the CNNs, or ``stack``.
        wavelengths: The grid of the input absorbance spectra in nm, ascending.
        preprocessing: Steps for :func:`specsoil.preprocess.make_preprocessing`, replacing
            the recipe's default (:func:`recipe_preprocessing`); ``[]`` means none. A last
            step ``{"name": "select_chain", "chains": [...], "cv": 5}`` chooses one of the
            :data:`STANDARD_CHAINS` per target by inner CV on the training rows (see
            :class:`ChainSelectCV`); without it the listed steps are the fixed chain.
        params: Overrides of the estimator's parameters, e.g. ``{"max_components": 20}``.
            For ``stack``: ``members`` (recipe names, or mappings with ``recipe`` and
            optional ``name``, ``preprocessing`` and ``params``), ``cv`` and ``sum_to_one``.
        random_state: Seed for every stochastic part.

    Returns:
        ``Pipeline(preprocessing steps..., (name, estimator))``, taking absorbance X of shape
        (n_samples, len(wavelengths)) and y of shape (n,) or (n, k), NaN where missing.

    Raises:
        SpecsoilError: For an unknown recipe, bad preprocessing, an unknown or invalid
            parameter, or a missing optional dependency.
    """
    steps = recipe_preprocessing(name) if preprocessing is None else list(preprocessing)
    fixed, select = _split_select(name, steps)
    if name == STACK:
        estimator: Any = _stack(wavelengths, params or {}, random_state)
        if select is not None:
            raise SpecsoilError(f"recipe {name!r}: {SELECT_CHAIN} is for single models only")
    else:
        estimator = recipe_estimator(name, params=params, random_state=random_state)
    pipeline, _ = make_preprocessing(fixed, wavelengths)
    if select is not None:
        estimator = _chain_select(name, estimator, select, random_state)
    return Pipeline([*pipeline.steps, (name, estimator)])


def _split_select(
    name: str, steps: Sequence[Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], Mapping[str, Any] | None]:
    """The fixed steps and the trailing select_chain step (None when the chain is fixed)."""
    positions = [
        i
        for i, step in enumerate(steps)
        if isinstance(step, Mapping) and step.get("name") == SELECT_CHAIN
    ]
    if not positions:
        return list(steps), None
    if positions != [len(steps) - 1]:
        raise SpecsoilError(
            f"recipe {name!r}: preprocessing step {positions[0] + 1} ({SELECT_CHAIN}) must be "
            "the last step, once: the chain it chooses ends the preprocessing"
        )
    return list(steps[:-1]), steps[-1]


def _chain_select(
    name: str, estimator: Any, step: Mapping[str, Any], random_state: int
) -> ChainSelectCV:
    """Wrap ``estimator`` so that the training rows choose its chain (a select_chain step)."""
    options = {key: value for key, value in step.items() if key != "name"}
    unknown = sorted(set(options) - set(_SELECT_OPTIONS))
    chains = options.get("chains", list(STANDARD_CHAINS))
    where = f"recipe {name!r}: preprocessing step {SELECT_CHAIN}"
    if unknown:
        raise SpecsoilError(
            f"{where}: unknown option(s) {unknown}; it accepts {list(_SELECT_OPTIONS)}"
        )
    if isinstance(chains, str) or not isinstance(chains, Sequence) or not chains:
        raise SpecsoilError(f"{where}: chains must be a non-empty list of names; got {chains!r}")
    bad = [c for c in chains if c not in STANDARD_CHAINS]
    if bad:
        raise SpecsoilError(
            f"{where}: unknown chain(s) {bad}; standard chains: {list(STANDARD_CHAINS)} (to fix "
            "another chain, list its steps instead of select_chain)"
        )
    recipe = _get(name)
    proxy = None if recipe.chain_proxy is None else recipe.chain_proxy(estimator, random_state)
    selector = ChainSelectCV(
        estimator,
        chains={c: [dict(s) for s in STANDARD_CHAINS[c]] for c in dict.fromkeys(chains)},
        proxy=proxy,
        cv=options.get("cv", 5),
        reference=options.get("reference"),
        random_state=random_state,
    )
    _check_or_raise(where, selector._check_params)
    return selector


# The stack's members when a config names none: every classic recipe installed. cnn1d joins
# only when asked for (members: [..., cnn1d]): a stack fits each member cv + 1 times, which
# for a CNN on a CPU means six trainings per fit.
_DEFAULT_STACK_MEMBERS = ("plsr", "mbl", "svr", "rf", "cubist")
_STACK_OPTIONS = ("members", "cv", "sum_to_one")
_MEMBER_KEYS = ("recipe", "name", "preprocessing", "params")


def _stack(
    wavelengths: ArrayLike, params: Mapping[str, Any], random_state: int
) -> StackedRegressor:
    """The stack's estimator: each member a whole recipe pipeline on the input grid."""
    unknown = sorted(set(params) - set(_STACK_OPTIONS))
    if unknown:
        raise SpecsoilError(
            f"recipe {STACK!r}: unknown parameter(s) {unknown}; valid parameters: "
            f"{list(_STACK_OPTIONS)}"
        )
    available = set(available_recipes())
    specs = params.get("members") or [m for m in _DEFAULT_STACK_MEMBERS if m in available]
    if isinstance(specs, str) or not isinstance(specs, Sequence):
        raise SpecsoilError(f"recipe {STACK!r}: members must be a list; got {specs!r}")
    members = []
    for position, spec in enumerate(specs, start=1):
        entry = {"recipe": spec} if isinstance(spec, str) else spec
        where = f"recipe {STACK!r}: member {position}"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("recipe"), str):
            raise SpecsoilError(
                f"{where}: expected a recipe name or a mapping with 'recipe' (and optional "
                f"'name', 'preprocessing', 'params'); got {spec!r}"
            )
        extra = sorted(set(entry) - set(_MEMBER_KEYS))
        if extra:
            raise SpecsoilError(f"{where}: unknown key(s) {extra}; accepted: {list(_MEMBER_KEYS)}")
        if entry["recipe"] == STACK:
            raise SpecsoilError(f"{where}: a stack cannot be a member of a stack")
        steps: Any = entry.get("preprocessing")
        overrides: Any = entry.get("params")
        pipeline = make_recipe(
            entry["recipe"],
            wavelengths,
            preprocessing=steps,
            params=overrides,
            random_state=random_state,
        )
        members.append((str(entry.get("name", entry["recipe"])), pipeline))
    stack = StackedRegressor(
        members,
        cv=params.get("cv", 5),
        sum_to_one=params.get("sum_to_one", True),
        random_state=random_state,
    )
    _check_or_raise(f"recipe {STACK!r}", stack._check_params)
    return stack


def _check_or_raise(where: str, check: Callable[[], object]) -> None:
    """Run a parameter check now, before any data is read, as a user error naming ``where``."""
    try:
        check()
    except (TypeError, ValueError) as exc:
        raise SpecsoilError(f"{where}: {exc}") from None
