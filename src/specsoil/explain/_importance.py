"""Wavelength importance of a fitted model, with its spread across refits on CV folds.

Which grid importance lives on: the grid the estimator sees, i.e. the output of the
pipeline's last resampling step (10 nm for every recipe's default preprocessing), or the
model's own grid when its preprocessing does not resample. The steps after resampling
(derivatives, SNV, scaling, CNN input channels) keep that grid, so one value per band of
it can be given for every kind of model:

- PLSR (``PLSRegressionCV``): VIP scores per target (Wold et al., 1993; Chong & Jun, 2005,
  Chemometr. Intell. Lab. Syst. 78:103) and regression coefficients. Coefficients are
  mapped back to the resampled absorbance through the steps between resampling and PLS
  when those steps are affine (centring, scaling, Savitzky-Golay, detrending), so they read
  as target units per absorbance unit; after a nonlinear step (SNV, MSC) they stay on the
  preprocessed spectra and are labelled ``coefficient_preprocessed``.
- CNNs (``CNNRegressor``): mean absolute integrated gradients (Sundararajan et al., 2017,
  ICML) over samples, computed with captum with respect to the network input and summed
  over its input channels at each band (cnn1d's absorbance, derivative and SNV channels
  share the wavelength axis). The baseline is zero network input: every CNN recipe
  standardises its input band by band with the training statistics, so zero is the
  training mean spectrum. Units are those of the target. Spectrogram inputs (cnn2d) have no
  wavelength axis, so CNNs on spectrograms get permutation importance, as below.
- Every other model (mbl, svr, rf, cubist): model-agnostic permutation importance (Breiman,
  2001; Fisher et al., 2019, JMLR 20:177): the increase in RMSE when one wavelength window
  (50 nm by default) of the spectra the estimator reads (after its preprocessing, e.g. the
  derivative, which keeps the grid) is permuted across samples, so the window's joint
  information is removed while each spectrum's other bands stay intact. Every band of a
  window gets the window's value.

Spread across folds: the model's recipe, preprocessing and parameters are refitted on K
folds of the given data, the importance is computed per fold (integrated gradients and
permutations on that fold's held-out spectra) and reported as mean and standard deviation.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable
from specsoil.explain._bands import bands_near
from specsoil.models import ChainSelectCV, PLSRegressionCV, SpectralModel, fit_details, make_recipe
from specsoil.preprocess import Resample, Spectrogram
from specsoil.train import CNNRegressor, require_torch

logger = logging.getLogger(__name__)

METHOD_VIP = "vip"
METHOD_COEFFICIENT = "coefficient"
METHOD_COEFFICIENT_PREPROCESSED = "coefficient_preprocessed"
METHOD_INTEGRATED_GRADIENTS = "integrated_gradients"
METHOD_PERMUTATION = "permutation"

# How closely an affine map captured on the identity must reproduce a step on random
# spectra, relative to the output's size: round-off is ~1e-15, a nonlinear step misses by far.
_AFFINE_RTOL = 1e-8
# Fewer labelled spectra per fold than this and a refit or an RMSE means little.
_MIN_FOLD_SAMPLES = 4


@dataclass(frozen=True, slots=True)
class ImportanceCurve:
    """The importance of every band for one target by one method.

    Attributes:
        target: The property explained.
        method: ``vip``, ``coefficient``, ``coefficient_preprocessed``,
            ``integrated_gradients`` or ``permutation``.
        model: The saved model's importance on the given data, shape (n_wavelengths,).
        folds: One curve per CV refit, shape (n_folds, n_wavelengths); (0, n) without folds.
    """

    target: str
    method: str
    model: NDArray[np.float64]
    folds: NDArray[np.float64]

    @property
    def mean(self) -> NDArray[np.float64]:
        """Mean over folds, or the saved model's curve when there are no folds."""
        if self.folds.shape[0] == 0:
            return self.model
        return np.asarray(np.nanmean(self.folds, axis=0), dtype=np.float64)

    @property
    def sd(self) -> NDArray[np.float64]:
        """Standard deviation over folds (ddof=1); NaN with fewer than two folds."""
        if self.folds.shape[0] < 2:
            return np.full(self.model.shape, np.nan)
        return np.asarray(np.nanstd(self.folds, axis=0, ddof=1), dtype=np.float64)


@dataclass(frozen=True)
class Explanation:
    """Wavelength importance of one model on one data set.

    Attributes:
        model_name: The model's name.
        recipe: The model's recipe.
        wavelengths: The grid importance is reported on (see the module docstring), nm.
        mean_spectrum: Mean absorbance of the data on that grid.
        curves: One curve per (target, method).
        n_folds: Number of CV refits behind each curve's spread (0: none).
        n_samples: Spectra the importance was computed on.
        descriptions: What each method in ``curves`` measures, by method name.
        member_weights: For a stack, each member's weight by target; its importance is that
            of the weighted sum (permutation of the stack as a whole). Empty otherwise.
    """

    model_name: str
    recipe: str
    wavelengths: NDArray[np.float64]
    mean_spectrum: NDArray[np.float64]
    curves: tuple[ImportanceCurve, ...]
    n_folds: int
    n_samples: int
    descriptions: dict[str, str] = field(default_factory=dict)
    member_weights: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def targets(self) -> list[str]:
        """The targets explained, in model order."""
        return list(dict.fromkeys(curve.target for curve in self.curves))

    def curves_for(self, target: str) -> list[ImportanceCurve]:
        """The curves of ``target``, one per method."""
        return [curve for curve in self.curves if curve.target == target]

    def to_frame(self) -> pd.DataFrame:
        """One row per (target, method, wavelength): model, mean, sd and per-fold values."""
        frames = []
        for curve in self.curves:
            columns: dict[str, Any] = {
                "wavelength": self.wavelengths,
                "target": curve.target,
                "method": curve.method,
                "mean": curve.mean,
                "sd": curve.sd,
                "model": curve.model,
            }
            for k, values in enumerate(curve.folds, start=1):
                columns[f"fold_{k}"] = values
            frames.append(pd.DataFrame(columns))
        return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True, slots=True)
class ImportantRegion:
    """A run of adjacent bands with high importance.

    Attributes:
        low_nm: First band of the run.
        high_nm: Last band of the run.
        peak_nm: Band with the highest importance in the run.
        peak: Importance at ``peak_nm`` (absolute value for signed methods).
        bands: Labels of the known soil bands near the peak.
    """

    low_nm: float
    high_nm: float
    peak_nm: float
    peak: float
    bands: tuple[str, ...]


# --------------------------------------------------------------------------- pipeline
@dataclass(frozen=True, slots=True)
class _Stages:
    """A fitted pipeline cut where importance is measured: after its last resampling."""

    head: list[Any]
    tail: list[Any]
    estimator: Any
    grid: NDArray[np.float64]


def _flatten(pipeline: Pipeline) -> list[Any]:
    """The fitted steps of ``pipeline``, nested pipelines (e.g. CNN channels) unrolled."""
    steps: list[Any] = []
    for _, step in pipeline.steps:
        steps.extend(_flatten(step) if isinstance(step, Pipeline) else [step])
    return steps


def _stages(pipeline: Pipeline, wavelengths: NDArray[np.float64]) -> _Stages:
    steps = _flatten(pipeline)
    transformers, estimator = steps[:-1], steps[-1]
    cut = max((i + 1 for i, s in enumerate(transformers) if isinstance(s, Resample)), default=0)
    grid = (
        np.asarray(transformers[cut - 1].wavelengths_out_, dtype=np.float64)
        if cut
        else np.asarray(wavelengths, dtype=np.float64)
    )
    return _Stages(transformers[:cut], transformers[cut:], estimator, grid)


def _apply(steps: Sequence[Any], X: NDArray[Any]) -> NDArray[Any]:
    out = X
    for step in steps:
        out = step.transform(out)
    return np.asarray(out)


def method_for(estimator: Any, *, wavelength_axis: bool = True) -> list[str]:
    """The importance methods used for a fitted final estimator (see the module docstring).

    Args:
        estimator: The pipeline's final estimator.
        wavelength_axis: Whether the estimator's input keeps a wavelength axis; a CNN on
            spectrograms does not, so its gradients cannot be read per band.
    """
    if isinstance(estimator, PLSRegressionCV) or _chosen_pls(estimator):
        return [METHOD_VIP, METHOD_COEFFICIENT]
    if isinstance(estimator, CNNRegressor) and wavelength_axis:
        return [METHOD_INTEGRATED_GRADIENTS]
    return [METHOD_PERMUTATION]


def _chosen_pls(estimator: Any) -> bool:
    """A PLSR whose preprocessing chain each target chose (the plsr recipe)."""
    return isinstance(estimator, ChainSelectCV) and isinstance(estimator.estimator, PLSRegressionCV)


def _per_target_chains(stages: _Stages) -> list[_Stages]:
    """One target's stages each: its chosen chain joins the steps after resampling."""
    return [
        _Stages(stages.head, [*stages.tail, *chain[:-1]], chain[-1], stages.grid)
        for chain in stages.estimator.estimators_
    ]


def _methods(stages: _Stages) -> list[str]:
    # Spectrogram steps (cnn2d) turn bands into time-frequency cells: permutation of the
    # absorbance windows still measures them, gradients per band cannot.
    spectrogram = any(isinstance(step, Spectrogram) for step in stages.tail)
    return method_for(stages.estimator, wavelength_axis=not spectrogram)


# --------------------------------------------------------------------------- PLS
def vip_scores(pls: PLSRegression) -> NDArray[np.float64]:
    """Variable importance in projection of a fitted PLS model, one value per feature.

    VIP_j = sqrt(p * sum_a SS_a (w_ja / ||w_a||)^2 / sum_a SS_a), with SS_a = ||q_a||^2 t_a't_a
    the variance of y explained by component a (Wold et al., 1993; Chong & Jun, 2005). The
    mean of VIP^2 over the p features is 1, hence the usual VIP > 1 rule.

    Args:
        pls: A fitted ``PLSRegression``.

    Returns:
        VIP scores, shape (n_features,).
    """
    weights = np.asarray(pls.x_weights_, dtype=np.float64)  # (p, A)
    scores = np.asarray(pls.x_scores_, dtype=np.float64)  # (n, A)
    loadings = np.asarray(pls.y_loadings_, dtype=np.float64)  # (k, A)
    explained = (loadings**2).sum(axis=0) * (scores**2).sum(axis=0)  # (A,)
    norms = np.linalg.norm(weights, axis=0)
    share = (weights / np.where(norms > 0, norms, 1.0)) ** 2  # (p, A)
    total = float(explained.sum())
    if total <= 0:  # y not explained at all: every feature is equally (un)important
        return np.ones(weights.shape[0])
    p = weights.shape[0]
    return np.asarray(np.sqrt(p * (share @ explained) / total), dtype=np.float64)


def _affine_map(steps: Sequence[Any], n_features: int) -> NDArray[np.float64] | None:
    """The matrix M with ``steps(Z) = Z @ M + c`` when the steps are affine, else None."""
    if not steps:
        return np.eye(n_features)
    with warnings.catch_warnings():
        # A nonlinear step (SNV) warns about the constant zero row; the check below rejects it.
        warnings.simplefilter("ignore", UserWarning)
        offset = _apply(steps, np.zeros((1, n_features)))
        if offset.ndim != 2:
            return None
        matrix = _apply(steps, np.eye(n_features)) - offset  # (p, p_out)
        probe = np.random.default_rng(0).normal(1.0, 0.3, (3, n_features))
        expected = _apply(steps, probe)
    got = probe @ matrix + offset
    scale = max(1.0, float(np.abs(expected).max()))
    if not np.allclose(got, expected, rtol=0.0, atol=_AFFINE_RTOL * scale):
        return None
    return np.asarray(matrix, dtype=np.float64)


def _pls_importance(
    stages: _Stages, targets: Sequence[str]
) -> dict[tuple[str, str], NDArray[np.float64]]:
    estimator: PLSRegressionCV = stages.estimator
    matrix = _affine_map(stages.tail, stages.grid.size)
    coef_method = METHOD_COEFFICIENT if matrix is not None else METHOD_COEFFICIENT_PREPROCESSED
    curves: dict[tuple[str, str], NDArray[np.float64]] = {}
    for j, target in enumerate(targets):
        curves[target, METHOD_VIP] = vip_scores(estimator.estimators_[j])
        coef = np.asarray(estimator.coef_[j], dtype=np.float64)
        # Chain rule through the affine steps: d y / d z = M @ b.
        curves[target, coef_method] = matrix @ coef if matrix is not None else coef
    return curves


# --------------------------------------------------------------------------- CNN
def _require_captum() -> Any:
    require_torch("integrated gradients for CNN models")
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        raise SpecsoilError(
            "integrated gradients for CNN models need captum: pip install 'specsoil[explain]'"
        ) from None
    return IntegratedGradients


def _network_input(stages: _Stages, Z: NDArray[np.float64]) -> NDArray[np.float32]:
    values = _apply(stages.tail, Z)
    if values.ndim == 2:
        values = values[:, None, :]  # (N, 1, L): one input channel
    if values.ndim != 3 or values.shape[-1] != stages.grid.size:
        raise SpecsoilError(
            f"integrated gradients need a network input with a wavelength axis, (n, channels, "
            f"{stages.grid.size} bands); this model's network reads shape "
            f"{tuple(values.shape[1:])} (a spectrogram for cnn2d), which has none: explain "
            "a 1D CNN (cnn1d, seed_cnn, cnn1d2d) instead"
        )
    return np.ascontiguousarray(values, dtype=np.float32)


def _cnn_importance(
    stages: _Stages,
    Z: NDArray[np.float64],
    targets: Sequence[str],
    *,
    n_steps: int,
    batch_size: int,
) -> dict[tuple[str, str], NDArray[np.float64]]:
    integrated_gradients = _require_captum()
    import torch

    estimator: CNNRegressor = stages.estimator
    X_net = _network_input(stages, Z)
    members = estimator.module_ if isinstance(estimator.module_, list) else [estimator.module_]
    for net in members:
        net.cpu().eval()
    scale = torch.as_tensor(np.asarray(estimator.target_scale_), dtype=torch.float32)

    def forward(x: torch.Tensor) -> torch.Tensor:
        # Ensemble mean, in target units: attributions then read as target units too.
        outputs = torch.stack([net(x).float() for net in members]).mean(dim=0)
        return outputs * scale

    explainer = integrated_gradients(forward)
    inputs = torch.from_numpy(X_net)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small nets on shared CPUs run fastest on one thread
    curves: dict[tuple[str, str], NDArray[np.float64]] = {}
    try:
        for j, target in enumerate(targets):
            attribution = explainer.attribute(
                inputs,
                baselines=torch.zeros_like(inputs),
                target=j,
                n_steps=n_steps,
                internal_batch_size=batch_size,
            )
            per_band = attribution.detach().double().sum(dim=1)  # (N, L): channels summed
            curves[target, METHOD_INTEGRATED_GRADIENTS] = per_band.abs().mean(dim=0).numpy()
    finally:
        torch.set_num_threads(threads)
    return curves


# --------------------------------------------------------------------------- permutation
def _windows(grid: NDArray[np.float64], window_nm: float) -> NDArray[np.intp]:
    """Window number of each band: consecutive windows ``window_nm`` wide from the first band."""
    windows: NDArray[np.intp] = np.floor((grid - grid[0]) / window_nm + 1e-9).astype(np.intp)
    return windows


def _rmse(pred: NDArray[np.float64], Y: NDArray[np.float64]) -> NDArray[np.float64]:
    residual = np.where(np.isfinite(Y), pred - Y, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a target with no lab value: NaN
        return np.asarray(np.sqrt(np.nanmean(residual**2, axis=0)), dtype=np.float64)


def _permutation_importance(
    stages: _Stages,
    Z: NDArray[np.float64],
    Y: NDArray[np.float64],
    targets: Sequence[str],
    *,
    window_nm: float,
    n_repeats: int,
    random_state: int,
) -> dict[tuple[str, str], NDArray[np.float64]]:
    n = Z.shape[0]
    # Permute what the estimator reads (e.g. derivative spectra) when it is on the grid:
    # windows of raw absorbance spliced into spectra with another baseline level would add
    # steps at the window edges that no real spectrum has, and a derivative, SNV or RBF
    # kernel would react to those steps rather than to the lost information.
    features = _apply(stages.tail, Z)
    on_grid = features.ndim == 2 and features.shape[1] == stages.grid.size
    values = features if on_grid else Z

    def predict(permuted: NDArray[Any]) -> NDArray[np.float64]:
        inputs = permuted if on_grid else _apply(stages.tail, permuted)
        pred = stages.estimator.predict(inputs)
        return np.asarray(pred, dtype=np.float64).reshape(n, len(targets))

    baseline = _rmse(predict(values), Y)
    window_of_band = _windows(stages.grid, window_nm)
    n_windows = int(window_of_band.max()) + 1
    rng = np.random.default_rng(random_state)
    increase = np.zeros((len(targets), n_windows))
    for w in range(n_windows):
        columns = np.flatnonzero(window_of_band == w)
        for _ in range(n_repeats):
            # One permutation for the whole window keeps its bands together (a spectrum's
            # band shape moves as one), so only its link to the target is broken.
            permuted = values.copy()
            permuted[:, columns] = values[rng.permutation(n)][:, columns]
            increase[:, w] += _rmse(predict(permuted), Y) - baseline
    increase /= n_repeats
    return {
        (target, METHOD_PERMUTATION): increase[j, window_of_band]
        for j, target in enumerate(targets)
    }


# --------------------------------------------------------------------------- driver
@dataclass(frozen=True, slots=True)
class _Settings:
    window_nm: float
    n_repeats: int
    n_steps: int
    batch_size: int
    random_state: int


def _importance(
    stages: _Stages,
    Z: NDArray[np.float64],
    Y: NDArray[np.float64] | None,
    targets: Sequence[str],
    settings: _Settings,
) -> dict[tuple[str, str], NDArray[np.float64]]:
    methods = _methods(stages)
    if _chosen_pls(stages.estimator):
        # Each target's chain may differ, so VIP and coefficients come per target; after a
        # nonlinear chain (SNV, MSC) the coefficient is the preprocessed one.
        curves: dict[tuple[str, str], NDArray[np.float64]] = {}
        for target, sub in zip(targets, _per_target_chains(stages), strict=True):
            curves.update(_pls_importance(sub, [target]))
        return curves
    if METHOD_VIP in methods:
        return _pls_importance(stages, targets)
    if METHOD_INTEGRATED_GRADIENTS in methods:
        return _cnn_importance(
            stages, Z, targets, n_steps=settings.n_steps, batch_size=settings.batch_size
        )
    if Y is None:
        raise AssertionError("permutation importance needs targets")  # checked by the caller
    return _permutation_importance(
        stages,
        Z,
        Y,
        targets,
        window_nm=settings.window_nm,
        n_repeats=settings.n_repeats,
        random_state=settings.random_state,
    )


def _descriptions(settings: _Settings) -> dict[str, str]:
    return {
        METHOD_VIP: "PLS variable importance in projection (Wold et al., 1993; Chong & Jun, "
        "2005): the mean of VIP² over bands is 1, and VIP > 1 is the usual mark of an "
        "important band.",
        METHOD_COEFFICIENT: "PLS regression coefficient mapped through the affine steps "
        "after resampling onto the resampled absorbance: target units per absorbance unit; "
        "its sign says whether absorbance there raises or lowers the prediction.",
        METHOD_COEFFICIENT_PREPROCESSED: "PLS regression coefficient on the preprocessed "
        "spectra (a nonlinear step such as SNV sits between resampling and PLS, so it cannot "
        "be mapped back onto absorbance).",
        METHOD_INTEGRATED_GRADIENTS: "mean |integrated gradients| over samples (Sundararajan "
        f"et al., 2017; captum, {settings.n_steps} steps), with respect to the network input "
        "and summed over its channels at each band; baseline: zero standardised input, i.e. "
        "the training mean spectrum; target units.",
        METHOD_PERMUTATION: "model-agnostic permutation importance: increase in RMSE (target "
        f"units) when each {settings.window_nm:g} nm window of the preprocessed spectra the "
        f"estimator reads is permuted across samples, mean of {settings.n_repeats} "
        "permutations; every band of a window shows the window's value.",
    }


def explain_model(
    model: SpectralModel,
    table: SpectraTable,
    *,
    folds: int = 5,
    window_nm: float = 50.0,
    n_repeats: int = 3,
    n_steps: int = 32,
    batch_size: int = 256,
    random_state: int = 0,
) -> Explanation:
    """Compute the wavelength importance of ``model`` on ``table`` (see the module docstring).

    Args:
        model: A fitted model (``SpectralModel.fit`` or ``SpectralModel.load``).
        table: Spectra covering the model's wavelength range; they need the model's target
            columns for permutation importance and for ``folds`` > 0.
        folds: Number of CV folds on which the recipe is refitted for the spread; 0 skips
            them (only the saved model's importance is computed).
        window_nm: Width of the permuted windows (permutation importance only), nm.
        n_repeats: Permutations per window.
        n_steps: Integration steps of integrated gradients.
        batch_size: Inputs per forward/backward pass of integrated gradients.
        random_state: Seed of the folds, the permutations and the refits.

    Returns:
        The importance curves with the grid and mean spectrum they belong to.

    Raises:
        SpecsoilError: If the spectra do not cover the model's range, a needed target column
            is missing or too sparse, or an option is out of range.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 0 or folds == 1:
        raise SpecsoilError(f"folds must be 0 (no refits) or an integer >= 2; got {folds!r}")
    if not (math.isfinite(window_nm) and window_nm > 0):
        raise SpecsoilError(f"window_nm must be a number > 0; got {window_nm!r}")
    for name, value in (("n_repeats", n_repeats), ("n_steps", n_steps), ("batch_size", batch_size)):
        if value < 1:
            raise SpecsoilError(f"{name} must be an integer >= 1; got {value!r}")
    settings = _Settings(window_nm, n_repeats, n_steps, batch_size, random_state)
    X = np.asarray(model.align(table), dtype=np.float64)
    stages = _stages(model.pipeline, model.wavelengths)
    methods = _methods(stages)
    needs_targets = folds > 0 or METHOD_PERMUTATION in methods
    Y = table.targets(model.targets) if needs_targets else None
    if Y is not None:
        _check_labelled(table, model.targets, Y, minimum=max(2 * folds, _MIN_FOLD_SAMPLES))
    Z = _apply(stages.head, X).astype(np.float64)
    logger.info(
        "explaining %r (%s) by %s on %d spectra, %d bands (%g-%g nm)",
        model.name,
        model.recipe,
        " and ".join(methods),
        table.n_samples,
        stages.grid.size,
        stages.grid[0],
        stages.grid[-1],
    )
    on_model = _importance(stages, Z, Y, model.targets, settings)
    per_fold: list[dict[tuple[str, str], NDArray[np.float64]]] = []
    if folds and Y is not None:
        per_fold = _fold_importance(model, X, Y, folds, settings)
    curves = tuple(
        ImportanceCurve(
            target=target,
            method=method,
            model=np.asarray(values, dtype=np.float64),
            # A refit may choose another chain, hence a method (coefficient or its
            # preprocessed form) this model lacks: NaN for that fold.
            folds=np.array(
                [
                    fold.get((target, method), np.full(stages.grid.size, np.nan))
                    for fold in per_fold
                ],
                dtype=np.float64,
            ).reshape(len(per_fold), stages.grid.size),
        )
        for (target, method), values in on_model.items()
    )
    descriptions = _descriptions(settings)
    return Explanation(
        model_name=model.name,
        recipe=model.recipe,
        wavelengths=stages.grid,
        mean_spectrum=Z.mean(axis=0),
        curves=curves,
        n_folds=len(per_fold),
        n_samples=table.n_samples,
        descriptions={c.method: descriptions[c.method] for c in curves},
        member_weights=_member_weights(model),
    )


def _member_weights(model: SpectralModel) -> dict[str, dict[str, float]]:
    """A stack's weight of every member, by target (empty for any other model)."""
    weights = fit_details(model.pipeline).get("weights", {})
    return {
        target: {member: float(values[j]) for member, values in weights.items()}
        for j, target in enumerate(model.targets)
    }


def _check_labelled(
    table: SpectraTable, targets: Sequence[str], Y: NDArray[np.float64], *, minimum: int
) -> None:
    counts = np.isfinite(Y).sum(axis=0)
    for name, count in zip(targets, counts, strict=True):
        if count < minimum:
            raise SpecsoilError(
                f"{table.source}: target {name!r} has {int(count)} lab values; explaining "
                f"with these settings needs at least {minimum} (use fewer --folds, or "
                "--folds 0 for VIP or gradients without refits)"
            )


def _fold_importance(
    model: SpectralModel,
    X: NDArray[np.float64],
    Y: NDArray[np.float64],
    folds: int,
    settings: _Settings,
) -> list[dict[tuple[str, str], NDArray[np.float64]]]:
    """Refit the model's recipe on each training fold; importance on its held-out rows."""
    labelled = np.flatnonzero(np.isfinite(Y).any(axis=1))
    splitter = KFold(n_splits=folds, shuffle=True, random_state=settings.random_state)
    results = []
    for k, (train, test) in enumerate(splitter.split(labelled), start=1):
        rows_train, rows_test = labelled[train], labelled[test]
        pipeline = make_recipe(
            model.recipe,
            model.wavelengths,
            preprocessing=model.preprocessing,
            params=model.params,
            random_state=settings.random_state + k,
        )
        logger.info("fold %d/%d: refitting %s on %d spectra", k, folds, model.recipe, train.size)
        pipeline.fit(X[rows_train].astype(np.float32), Y[rows_train])
        stages = _stages(pipeline, model.wavelengths)
        Z = _apply(stages.head, X[rows_test].astype(np.float32)).astype(np.float64)
        results.append(_importance(stages, Z, Y[rows_test], model.targets, settings))
    return results


# --------------------------------------------------------------------------- summaries
def top_regions(
    wavelengths: NDArray[np.float64],
    values: NDArray[np.float64],
    *,
    n: int = 5,
    quantile: float = 0.8,
) -> list[ImportantRegion]:
    """The runs of adjacent bands whose |importance| is in the top ``1 - quantile``.

    Args:
        wavelengths: The grid, nm, shape (p,).
        values: Importance per band (signed values are ranked by magnitude), shape (p,).
        n: Most regions returned.
        quantile: Bands at or above this quantile of |importance| form the regions.

    Returns:
        Up to ``n`` regions, the highest peak first, each with the known soil bands near
        its peak.
    """
    magnitude = np.abs(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0))
    if magnitude.size == 0 or not np.any(magnitude > 0):
        return []
    # Zero importance is never a region, even when most bands have it.
    selected = (magnitude >= np.quantile(magnitude, quantile)) & (magnitude > 0)
    regions = []
    start = None
    for i, flag in enumerate([*selected.tolist(), False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            run = np.arange(start, i)
            peak = int(run[np.argmax(magnitude[run])])
            regions.append(
                ImportantRegion(
                    low_nm=float(wavelengths[start]),
                    high_nm=float(wavelengths[i - 1]),
                    peak_nm=float(wavelengths[peak]),
                    peak=float(magnitude[peak]),
                    bands=tuple(b.label for b in bands_near(float(wavelengths[peak]))),
                )
            )
            start = None
    regions.sort(key=lambda region: -region.peak)
    return regions[:n]
