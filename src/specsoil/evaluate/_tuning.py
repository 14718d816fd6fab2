"""Hyper-parameter search for a recipe with Optuna, scored by inner cross-validation.

The objective sees only the rows it is given: inside an outer training fold it never
touches the outer test rows, so tuning stays leak-free (Cawley & Talbot, 2010, JMLR 11:2079,
on the optimistic bias of selecting hyper-parameters on the evaluation data). Trials are
sampled by the Tree-structured Parzen Estimator (Bergstra et al., 2011, NeurIPS) and cut
short by the median rule after each inner fold (Golovin et al., 2017, KDD, "Google Vizier").
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from specsoil._errors import SpecsoilError
from specsoil.evaluate._splits import kfold_splits
from specsoil.models import list_recipes, make_recipe

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

PARAM_TYPES: tuple[str, ...] = ("float", "int", "categorical", "fixed")
_CNN_RECIPES = ("cnn1d", "seed_cnn", "cnn2d", "cnn1d2d")
# Networks whose factory takes a ``dropout`` argument (seed_cnn is fixed by design).
_CNN_WITH_DROPOUT = ("cnn1d", "cnn2d", "cnn1d2d")


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """How one hyper-parameter is searched.

    Attributes:
        name: Estimator parameter; a dotted name (``module_params.dropout``,
            ``augment.noise``) sets one key of a dict-valued parameter.
        type: ``"float"``, ``"int"``, ``"categorical"`` or ``"fixed"``.
        low: Lower bound (float and int).
        high: Upper bound, inclusive (float and int).
        log: Sample on a log scale (float and int; needs ``low`` > 0).
        step: Grid step (int, or float without ``log``); None for continuous floats.
        choices: The values of a categorical parameter.
        value: The value of a fixed parameter (not searched, but applied to every trial).
    """

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None


@dataclass(frozen=True, slots=True)
class TuneResult:
    """The outcome of :func:`tune_recipe`.

    Attributes:
        recipe: The tuned recipe.
        best_params: Estimator parameters of the best trial, dotted names nested back into
            dicts, ready for ``make_recipe(..., params=best_params)``.
        best_value: Its objective: the mean over inner folds of the mean over targets of
            RMSE divided by the target's standard deviation (lower is better).
        trials: One row per trial of the study (all workers): ``number``, ``state``,
            ``value`` (NaN unless complete), ``folds_scored``, ``last_running_score`` (the
            mean over the folds scored, also for pruned trials), one ``params_<name>``
            column per searched parameter, and ``duration_s``.
        study_name: The Optuna study name.
        n_trials: Trials in the study, all states and workers included.
    """

    recipe: str
    best_params: dict[str, Any]
    best_value: float
    trials: pd.DataFrame
    study_name: str
    n_trials: int


def default_search_space(recipe: str) -> dict[str, ParamSpec]:
    """The search space :func:`tune_recipe` uses for ``recipe`` when none is given.

    Args:
        recipe: A recipe from ``specsoil.models.list_recipes()``.

    Returns:
        Parameter name to spec.

    Raises:
        SpecsoilError: If the recipe is unknown or has no default space.
    """
    spaces: dict[str, dict[str, Any]] = {
        # The recipe's own inner CV picks the number of components up to the bound; the
        # search settles the bound and the selection rule (lowest error or one-SE).
        "plsr": {
            "max_components": {"type": "int", "low": 2, "high": 40},
            "selection": {"type": "categorical", "choices": ["min", "1se"]},
        },
        # One (C, gamma, epsilon) per trial instead of the recipe's 3x3 grid; gamma is a
        # factor of the median heuristic, so its range holds across instruments.
        "svr": {
            "C": {"type": "float", "low": 0.1, "high": 1000.0, "log": True},
            "gamma_factors": {"type": "float", "low": 0.01, "high": 100.0, "log": True},
            "epsilon": {"type": "float", "low": 0.01, "high": 1.0, "log": True},
        },
        "mbl": {
            "k": {"type": "int", "low": 20, "high": 300, "step": 10},
            "max_pcs": {"type": "int", "low": 5, "high": 40},
        },
        "rf": {
            "max_features": {"type": "float", "low": 0.05, "high": 1.0},
            "min_samples_leaf": {"type": "int", "low": 1, "high": 10},
        },
        "cubist": {"n_committees": {"type": "int", "low": 1, "high": 50}},
    }
    cnn_space: dict[str, Any] = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
        "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
        # Fixed and modest: early stopping ends most trials sooner, and the pruner the rest.
        "max_epochs": {"type": "fixed", "value": 60},
        # Strengths in the units of the autoscaled input the CNN recipes feed the net.
        "augment.offset": {"type": "float", "low": 0.0, "high": 0.1},
        "augment.multiplicative": {"type": "float", "low": 0.0, "high": 0.05},
        "augment.noise": {"type": "float", "low": 0.0, "high": 0.05},
    }
    for name in _CNN_RECIPES:
        spaces[name] = dict(cnn_space)
        if name in _CNN_WITH_DROPOUT:
            spaces[name]["module_params.dropout"] = {"type": "float", "low": 0.0, "high": 0.5}
    if recipe not in spaces:
        known = [r for r in list_recipes() if r in spaces]
        raise SpecsoilError(
            f"recipe {recipe!r} has no default search space; give one (recipes with a "
            f"default: {known})"
        )
    return parse_search_space(spaces[recipe])


def parse_search_space(
    space: Mapping[str, Any], *, source: str = "search space"
) -> dict[str, ParamSpec]:
    """Validate a search space given as data (e.g. read from YAML).

    Each entry maps a parameter name to ``{type: float|int, low, high, log?, step?}``,
    ``{type: categorical, choices: [...]}``, ``{type: fixed, value: ...}`` or a plain value
    (fixed). Example: ``{"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}``.

    Args:
        space: The search space.
        source: How to name the space in errors (e.g. the file it came from).

    Returns:
        Parameter name to spec.

    Raises:
        SpecsoilError: For a space that is not a mapping, an unknown type or key, missing
            or non-numeric bounds, ``low`` > ``high``, a log scale with ``low`` <= 0, or
            empty choices.
    """
    if not isinstance(space, Mapping) or not space:
        raise SpecsoilError(
            f"{source}: expected a non-empty mapping of parameter name to spec; got {space!r}"
        )
    return {str(name): _parse_one(str(name), spec, source) for name, spec in space.items()}


def _parse_one(name: str, spec: Any, source: str) -> ParamSpec:
    where = f"{source}: parameter {name!r}"
    if not name or any(not part for part in name.split(".")) or name.count(".") > 1:
        raise SpecsoilError(f"{where}: expected a name like 'lr' or 'module_params.dropout'")
    if not isinstance(spec, Mapping):
        return ParamSpec(name, "fixed", value=spec)
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        raise SpecsoilError(f"{where}: type must be one of {list(PARAM_TYPES)}; got {kind!r}")
    allowed = {
        "float": {"type", "low", "high", "log", "step"},
        "int": {"type", "low", "high", "log", "step"},
        "categorical": {"type", "choices"},
        "fixed": {"type", "value"},
    }[kind]
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise SpecsoilError(
            f"{where}: unknown key(s) {unknown} for type {kind!r}; allowed: {sorted(allowed)}"
        )
    if kind == "fixed":
        if "value" not in spec:
            raise SpecsoilError(f"{where}: a fixed parameter needs 'value'")
        return ParamSpec(name, "fixed", value=spec["value"])
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
            raise SpecsoilError(f"{where}: 'choices' must be a non-empty list; got {choices!r}")
        bad = [c for c in choices if c is not None and not isinstance(c, bool | int | float | str)]
        if bad:
            raise SpecsoilError(
                f"{where}: choices must be numbers, strings, booleans or null; got {bad!r}"
            )
        return ParamSpec(name, "categorical", choices=tuple(choices))
    return _parse_range(name, kind, spec, where)


def _yaml_number(value: Any) -> Any:
    """Read ``"1e-4"`` as a number: YAML 1.1 (PyYAML) loads exponents without a dot as text."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _parse_range(name: str, kind: str, spec: Mapping[str, Any], where: str) -> ParamSpec:
    bounds = []
    for key in ("low", "high"):
        value = _yaml_number(spec.get(key))
        number_ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if kind == "int":
            number_ok = number_ok and float(value).is_integer()
        if not number_ok or not math.isfinite(float(value)):
            expected = "an integer" if kind == "int" else "a finite number"
            raise SpecsoilError(f"{where}: '{key}' must be {expected}; got {value!r}")
        bounds.append(float(value))
    low, high = bounds
    if low > high:
        raise SpecsoilError(f"{where}: low={low:g} must be <= high={high:g}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpecsoilError(f"{where}: 'log' must be true or false; got {log!r}")
    if log and low <= 0:
        raise SpecsoilError(f"{where}: a log scale needs low > 0; got low={low:g}")
    step = _yaml_number(spec.get("step"))
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, numbers.Real) or not float(step) > 0:
            raise SpecsoilError(f"{where}: 'step' must be a number > 0; got {step!r}")
        if log:
            raise SpecsoilError(f"{where}: 'step' and 'log' cannot be combined (Optuna)")
        if kind == "int" and not float(step).is_integer():
            raise SpecsoilError(f"{where}: 'step' of an int parameter must be whole; got {step}")
    return ParamSpec(
        name, kind, low=low, high=high, log=log, step=None if step is None else float(step)
    )


def _suggest(trial: optuna.Trial, spec: ParamSpec) -> Any:
    if spec.low is None or spec.high is None:
        raise ValueError(f"parameter {spec.name!r} of type {spec.type!r} needs low and high")
    if spec.type == "float":
        return trial.suggest_float(spec.name, spec.low, spec.high, log=spec.log, step=spec.step)
    return trial.suggest_int(
        spec.name, int(spec.low), int(spec.high), log=spec.log, step=int(spec.step or 1)
    )


def sample_params(trial: optuna.Trial, space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Draw one value per parameter of ``space`` and nest dotted names into dicts.

    Args:
        trial: The Optuna trial that records the draws.
        space: Parameter name to spec (see :func:`parse_search_space`).

    Returns:
        Estimator parameters, e.g. ``{"lr": 0.003, "module_params": {"dropout": 0.2}}``.
    """
    flat: dict[str, Any] = {}
    for spec in space.values():
        if spec.type == "fixed":
            flat[spec.name] = spec.value
        elif spec.type == "categorical":
            flat[spec.name] = trial.suggest_categorical(spec.name, list(spec.choices))
        else:
            flat[spec.name] = _suggest(trial, spec)
    return nest_params(flat)


def nest_params(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``{"module_params.dropout": 0.2}`` into ``{"module_params": {"dropout": 0.2}}``.

    Args:
        flat: Parameter names, dotted for keys of dict-valued parameters.

    Returns:
        The nested parameters.

    Raises:
        SpecsoilError: If a name is used both plainly and as a dotted prefix.
    """
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        head, _, key = name.partition(".")
        if not key:
            if head in nested:
                raise SpecsoilError(f"parameter {head!r} is set both whole and by key")
            nested[head] = value
            continue
        inner = nested.setdefault(head, {})
        if not isinstance(inner, dict):
            raise SpecsoilError(f"parameter {head!r} is set both whole and by key")
        inner[key] = value
    return nested


def _check_inputs(
    X: ArrayLike, Y: ArrayLike, wavelengths: ArrayLike
) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.float64]]:
    X_arr = np.asarray(X, dtype=np.float32)
    Y_arr = np.asarray(Y, dtype=np.float64)
    if Y_arr.ndim == 1:
        Y_arr = Y_arr[:, None]  # (n, 1)
    grid = np.asarray(wavelengths, dtype=np.float64)
    if X_arr.ndim != 2 or Y_arr.ndim != 2 or X_arr.shape[0] != Y_arr.shape[0]:
        raise SpecsoilError(
            f"tune_recipe: X must be (n, bands) and Y (n,) or (n, targets) with the same n; "
            f"got X {X_arr.shape} and Y {Y_arr.shape}"
        )
    if grid.shape != (X_arr.shape[1],):
        raise SpecsoilError(
            f"tune_recipe: wavelengths has shape {grid.shape}; expected ({X_arr.shape[1]},)"
        )
    return X_arr, Y_arr, grid


def _target_scales(Y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Standard deviation of each target's present values, so targets weigh equally."""
    counts = np.isfinite(Y).sum(axis=0)
    if np.any(counts < 2):
        raise SpecsoilError(
            f"tune_recipe: every target needs at least 2 values; counts per target: "
            f"{counts.tolist()}"
        )
    scale = np.nanstd(Y, axis=0)
    return np.where(scale > 0, scale, 1.0)  # a constant target is scored in its own units


def scaled_rmse(
    Y_true: NDArray[np.float64], Y_pred: NDArray[np.float64], scale: NDArray[np.float64]
) -> float:
    """Mean over targets of RMSE / scale, skipping missing (NaN) true values.

    Args:
        Y_true: Observed values, shape (n, k), NaN where missing.
        Y_pred: Predictions, shape (n, k).
        scale: Per-target divisor, shape (k,).

    Returns:
        The mean of the targets that have at least one value in ``Y_true``.
    """
    present = np.isfinite(Y_true)
    squared = np.where(present, (np.nan_to_num(Y_true) - Y_pred) ** 2, 0.0)
    counts = present.sum(axis=0)
    has = counts > 0
    rmse = np.sqrt(squared.sum(axis=0)[has] / counts[has])
    return float(np.mean(rmse / scale[has]))


def tune_recipe(
    recipe: str,
    X: ArrayLike,
    Y: ArrayLike,
    wavelengths: ArrayLike,
    *,
    search_space: Mapping[str, ParamSpec | Mapping[str, Any] | Any] | None = None,
    preprocessing: Sequence[Mapping[str, Any]] | None = None,
    n_trials: int = 20,
    inner_folds: int = 3,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    random_state: int = 0,
    n_jobs: int = 1,
) -> TuneResult:
    """Search the hyper-parameters of ``recipe`` by inner cross-validation with Optuna.

    Every trial fits the recipe pipeline on ``inner_folds`` seeded K-fold splits of the
    rows given, and only those rows. Its score after each fold is reported to a median
    pruner, which stops a trial whose running score is worse than the median of earlier
    trials at the same fold. The score is the mean over folds of the mean over targets of
    RMSE / SD (the SD of each target over the rows given), so targets in different units
    weigh equally; missing target values (NaN) are skipped.

    Args:
        recipe: A recipe from ``specsoil.models.list_recipes()``.
        X: Absorbance spectra, shape (n_samples, n_wavelengths).
        Y: Targets, shape (n_samples,) or (n_samples, n_targets), NaN where missing.
        wavelengths: Band centres of X in nm, ascending.
        search_space: Parameter name to spec (a :class:`ParamSpec` or the data form of
            :func:`parse_search_space`); None uses :func:`default_search_space`.
        preprocessing: Preprocessing steps replacing the recipe's default.
        n_trials: Trials this call runs (added to any already in a shared study).
        inner_folds: Folds of the inner cross-validation.
        timeout: Stop starting new trials after this many seconds; None for no limit.
        storage: None for an in-memory study, or an Optuna storage URL such as
            ``sqlite:///tune.db`` or ``postgresql://user@host/db``; workers that give the
            same storage and study name share one study.
        study_name: Name of the study; default ``specsoil-<recipe>``.
        random_state: Seed of the sampler, the inner folds and the recipe.
        n_jobs: Trials run in parallel threads in this process.

    Returns:
        The best parameters, their score and the table of trials.

    Raises:
        SpecsoilError: For an unknown recipe, a bad search space or storage, too few rows
            for the folds, or when no trial completed.
    """
    try:
        import optuna
    except ImportError:
        raise SpecsoilError(
            "tuning needs Optuna: pip install 'specsoil[tune]' (or pip install optuna)"
        ) from None

    if recipe not in list_recipes():
        raise SpecsoilError(f"unknown recipe {recipe!r}; available recipes: {list_recipes()}")
    X_arr, Y_arr, grid = _check_inputs(X, Y, wavelengths)
    space = _resolve_space(recipe, search_space)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise SpecsoilError(f"n_trials must be an integer >= 1; got {n_trials!r}")
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise SpecsoilError(f"timeout must be a number of seconds > 0 or None; got {timeout!r}")
    if storage is not None and (not isinstance(storage, str) or "://" not in storage):
        raise SpecsoilError(
            f"storage must be a database URL such as 'sqlite:///tune.db' or "
            f"'postgresql://user@host/db'; got {storage!r}"
        )
    folds = kfold_splits(X_arr.shape[0], n_splits=inner_folds, random_state=random_state)
    scale = _target_scales(Y_arr)
    name = study_name or f"specsoil-{recipe}"

    def objective(trial: optuna.Trial) -> float:
        params = sample_params(trial, space)
        trial.set_user_attr("params", json.dumps(params))
        scores = []
        for step, fold in enumerate(folds):
            pipeline = make_recipe(
                recipe,
                grid,
                preprocessing=preprocessing,
                params=params,
                random_state=random_state,
            )
            pipeline.fit(X_arr[fold.train], Y_arr[fold.train])
            pred = np.asarray(pipeline.predict(X_arr[fold.test]), dtype=np.float64)
            pred = pred.reshape(len(fold.test), Y_arr.shape[1])
            scores.append(scaled_rmse(Y_arr[fold.test], pred, scale))
            running = float(np.mean(scores))
            trial.report(running, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"fold {step + 1}: {running:.4f}")
        return float(np.mean(scores))

    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction="minimize",
            load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=random_state),
            # Median rule from the third trial on; every fold counts, so even one bad
            # fold of an expensive CNN trial can stop it.
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        )
    except Exception as exc:  # SQLAlchemy and database drivers raise their own types
        raise SpecsoilError(
            f"storage {storage!r}: cannot open study {name!r} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=timeout,
        n_jobs=n_jobs,
        callbacks=[_log_trial],
        gc_after_trial=False,
    )
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise SpecsoilError(f"study {name!r}: no trial completed; raise n_trials or timeout")
    best = min(complete, key=lambda t: float(t.value))  # type: ignore[arg-type]
    return TuneResult(
        recipe=recipe,
        best_params=_best_params(best, space),
        best_value=float(best.value),  # type: ignore[arg-type]
        trials=_trials_table(study),
        study_name=name,
        n_trials=len(study.trials),
    )


def _resolve_space(
    recipe: str, search_space: Mapping[str, ParamSpec | Mapping[str, Any] | Any] | None
) -> dict[str, ParamSpec]:
    if search_space is None:
        return default_search_space(recipe)
    if not isinstance(search_space, Mapping):
        raise SpecsoilError(f"search space: expected a mapping; got {search_space!r}")
    given = {k: v for k, v in search_space.items() if isinstance(v, ParamSpec)}
    as_data = {k: v for k, v in search_space.items() if not isinstance(v, ParamSpec)}
    return {**given, **(parse_search_space(as_data) if as_data else {})}


def _best_params(trial: optuna.trial.FrozenTrial, space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    stored = trial.user_attrs.get("params")
    if isinstance(stored, str):
        # The exact parameters the trial ran with, whichever worker ran it.
        params: dict[str, Any] = json.loads(stored)
        return params
    flat = {s.name: s.value for s in space.values() if s.type == "fixed"}
    return nest_params({**flat, **trial.params})


def _trials_table(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for trial in study.trials:
        duration = trial.duration.total_seconds() if trial.duration is not None else np.nan
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                # Pruned trials are scored on fewer folds: their scores are not comparable.
                "value": float(trial.value)  # type: ignore[arg-type]
                if trial.state.name == "COMPLETE"
                else np.nan,
                "folds_scored": len(trial.intermediate_values),
                "last_running_score": _last_value(trial.intermediate_values),
                **{f"params_{k}": v for k, v in trial.params.items()},
                "duration_s": duration,
            }
        )
    return pd.DataFrame(rows)


def _last_value(values: Mapping[int, float]) -> float:
    """The running score at the last fold reported, NaN if none was."""
    return float(values[max(values)]) if values else float("nan")


def _log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    shown = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    value = "-" if trial.value is None else f"{trial.value:.4f}"
    logger.info("trial %d %s: %s (%s)", trial.number, trial.state.name.lower(), value, shown)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
