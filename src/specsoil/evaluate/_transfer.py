"""Transfer evaluation: how well do models carry over to a group (site, region) left out?

For every group, with that group left out of training, four strategies are compared on the
group's samples that no strategy has seen:

- ``global``: the model trained on all other groups;
- ``local``: the same recipe trained on K samples of the group only;
- ``transfer``: the global model fine-tuned on the same K samples (optionally together with
  the other groups' data, replayed: fine-tuning with rehearsal);
- ``spiking``: classic models (PLSR, MBL, ...) trained on the other groups plus the same K
  samples, the usual way to adapt a large spectral library to a site (Guerrero et al., 2010,
  Geoderma 158:66; Wetterlind & Stenberg, 2010, Eur. J. Soil Sci. 61:823).

The K local samples are drawn at random, seeded per (group, repeat), and the same K samples
serve local, transfer and spiking, so the strategies differ only in how they use them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray

from specsoil._atomic import atomic_path, atomic_write_text
from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable
from specsoil.evaluate._metrics import r2, rmse
from specsoil.evaluate._report import _jsonable, configuration_markdown
from specsoil.evaluate._splits import Fold, group_splits
from specsoil.models import (
    FinetuneBatchNorm,
    FinetuneStrategy,
    SpectralModel,
    finetune_model,
    is_finetunable,
    make_recipe,
    recipe_preprocessing,
)

logger = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = ("global", "local", "transfer", "spiking")
"""The strategies compared, in report order."""

RESULT_COLUMNS: tuple[str, ...] = (
    "group",
    "strategy",
    "model",
    "target",
    "repeat",
    "rmse",
    "r2",
    "n_test",
)
"""Columns of :attr:`TransferResult.results`, in order."""

# A group must keep at least this many samples for testing after the K local ones are drawn.
MIN_TEST_SAMPLES = 5

# Default fine-tuning of the transfer strategy, picked with bench/bench_transfer.py
# (docs/benchmarks.md, bench_transfer; geeves, 5 spectral clusters, K = 20): replaying the
# other groups' data with every weight trainable ("full") for 40 epochs at the global
# model's learning rate, the K samples half of each epoch, had the lowest mean RMSE ratio
# to the best spiking model (1.17, against 1.21 for the earlier default: partial, no
# replay, 200 epochs; 1.23 for full, 40 epochs, no replay) and beat the global model in
# every (group, target) pair. A local share of 0.75 scored the same at twice the time
# (and, in a trial run, 100 epochs at five times).
TRANSFER_STRATEGY: FinetuneStrategy = "full"
TRANSFER_EPOCHS = 40
TRANSFER_REPLAY = True
TRANSFER_LOCAL_SHARE = 0.5

TransferProgress = Callable[[str, int, int], None]
"""Called as ``progress(description, completed, total)`` after each model fit."""


class ModelSpecLike(Protocol):
    """A named recipe with its preprocessing and estimator overrides (``cli`` ModelSpec)."""

    @property
    def name(self) -> str:
        """Name shown in the results."""

    @property
    def recipe(self) -> str:
        """The recipe the estimator comes from."""

    @property
    def preprocessing(self) -> list[dict[str, Any]]:
        """Preprocessing steps, as data."""

    @property
    def params(self) -> dict[str, Any]:
        """Estimator parameter overrides."""


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    recipe: str
    preprocessing: list[dict[str, Any]]
    params: dict[str, Any]


def _as_spec(model: str | ModelSpecLike) -> _Spec:
    if isinstance(model, str):
        return _Spec(model, model, recipe_preprocessing(model), {})
    return _Spec(model.name, model.recipe, list(model.preprocessing), dict(model.params))


@dataclass(frozen=True, slots=True, eq=False)
class TransferResult:
    """Scores of every strategy on every left-out group.

    Attributes:
        results: One row per (group, strategy, model, target, repeat): columns group,
            strategy (global, local, transfer or spiking), model (the recipe or model name),
            target, repeat, rmse, r2 and n_test (the group's held-out samples with a lab
            value for that target).
        skipped_groups: Groups too small to draw the local samples and still test, with
            their number of samples.
        config: The settings of the run (JSON-ready).
        fit_seconds: Wall time spent fitting and predicting, per strategy (spiking per model).
    """

    results: pd.DataFrame
    skipped_groups: dict[str, int]
    config: dict[str, Any]
    fit_seconds: dict[str, float] = field(default_factory=dict)

    def mean_scores(self) -> pd.DataFrame:
        """Mean RMSE and R² over repeats, one row per (target, group, strategy, model)."""
        columns = ["target", "group", "strategy", "model"]
        frame = self.results.groupby(columns, sort=False, as_index=False).agg(
            rmse=("rmse", "mean"), r2=("r2", "mean"), n_test=("n_test", "mean")
        )
        return frame

    def summary(self) -> dict[str, Any]:
        """How often transfer beats the other strategies, per target and over all targets.

        A group counts when transfer's RMSE (mean over repeats) is lower than the other
        strategy's; against spiking it must beat the best spiking model of that group.

        Returns:
            ``{"targets": {target: {...}}, "overall": {...}}``, each with ``n_groups`` and
            the shares ``transfer_beats_local``, ``transfer_beats_global`` and
            ``transfer_beats_spiking`` (None where nothing could be compared); per target
            also ``groups``: per group the mean RMSE of every strategy, the best spiking
            model and how much lower (negative: better) transfer's RMSE is than it.
        """
        means = self.mean_scores()
        per_target: dict[str, Any] = {}
        all_groups: list[dict[str, Any]] = []
        for target in dict.fromkeys(means["target"]):
            rows = means[means["target"] == target]
            groups = [
                _group_summary(str(group), part)
                for group, part in rows.groupby("group", sort=False)
            ]
            all_groups += groups
            per_target[str(target)] = {**_shares(groups), "groups": groups}
        return {"targets": per_target, "overall": _shares(all_groups)}

    def to_json(self) -> dict[str, Any]:
        """The document written to ``transfer.json``.

        ``{"results": [{"group", "strategy", "model", "target", "repeat", "rmse", "r2",
        "n_test"}, ...], "summary": {...}, "skipped_groups": [...], "config": {...},
        "fit_seconds": {...}}``, with undefined scores as null.
        """
        records = [
            {column: _jsonable(row[column]) for column in RESULT_COLUMNS}
            for row in self.results.loc[:, list(RESULT_COLUMNS)].to_dict(orient="records")
        ]
        document = {
            "results": records,
            "summary": self.summary(),
            "skipped_groups": [{"group": g, "n": n} for g, n in self.skipped_groups.items()],
            "config": self.config,
            "fit_seconds": self.fit_seconds,
        }
        return dict(_jsonable(document))

    def write(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``transfer.json``, ``transfer.md`` and ``transfer_rmse.png`` atomically.

        Args:
            out_dir: Folder to write into; created if missing.

        Returns:
            The paths written, in the order above.
        """
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        json_path = folder / "transfer.json"
        text = json.dumps(self.to_json(), indent=2, allow_nan=False)
        atomic_write_text(json_path, text + "\n")
        plot_path = plot_transfer_rmse(self, folder / "transfer_rmse.png")
        md_path = folder / "transfer.md"
        atomic_write_text(md_path, transfer_markdown(self, plot=plot_path.name))
        logger.debug("Wrote transfer results to %s", folder)
        return [json_path, md_path, plot_path]


def _column_label(strategy: str, model: str) -> str:
    return f"spiking {model}" if strategy == "spiking" else strategy


def _group_summary(group: str, part: pd.DataFrame) -> dict[str, Any]:
    """Mean RMSE per strategy for one (group, target), and the margin to the best spiking."""
    by_strategy: dict[str, float] = {}
    spiking: dict[str, float] = {}
    for row in part.to_dict(orient="records"):
        if row["strategy"] == "spiking":
            spiking[str(row["model"])] = float(row["rmse"])
        else:
            by_strategy[str(row["strategy"])] = float(row["rmse"])
    finite_spiking = {m: v for m, v in spiking.items() if math.isfinite(v)}
    best = min(finite_spiking, key=finite_spiking.__getitem__) if finite_spiking else None
    transfer = by_strategy.get("transfer", math.nan)
    best_rmse = finite_spiking[best] if best is not None else math.nan
    return {
        "group": group,
        "global_rmse": by_strategy.get("global", math.nan),
        "local_rmse": by_strategy.get("local", math.nan),
        "transfer_rmse": transfer,
        "spiking_rmse": spiking,
        "best_spiking_model": best,
        "best_spiking_rmse": best_rmse,
        # Negative: transfer's RMSE is lower than the best spiking model's.
        "transfer_minus_best_spiking": transfer - best_rmse,
    }


def _shares(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def share(other: str) -> float | None:
        pairs = [
            (g["transfer_rmse"], g[other])
            for g in groups
            if math.isfinite(g["transfer_rmse"]) and math.isfinite(g[other])
        ]
        return sum(t < o for t, o in pairs) / len(pairs) if pairs else None

    return {
        "n_groups": len(groups),
        "transfer_beats_local": share("local_rmse"),
        "transfer_beats_global": share("global_rmse"),
        "transfer_beats_spiking": share("best_spiking_rmse"),
    }


def _format(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)


def _share_text(share: float | None, n: int) -> str:
    return "n/a" if share is None else f"{share:.0%} ({round(share * n)} of {n})"


def transfer_markdown(result: TransferResult, *, plot: str | None = None) -> str:
    """The ``transfer.md`` report: a table per target and the shares of groups transfer wins.

    Args:
        result: The output of :func:`transfer_cv`.
        plot: File name of the bar chart to link, if any.

    Returns:
        The Markdown text.
    """
    config = result.config
    means = result.mean_scores()
    summary = result.summary()
    lines = [
        "# Transfer evaluation",
        "",
        f"Groups from column `{config.get('group_column')}`; each group is left out in turn. "
        f"K = {config.get('local_n')} local samples drawn per group and repeat "
        f"({config.get('repeats')} repeat(s), seed {config.get('seed')}); the rest of the "
        "group is the test set. global: trained on the other groups; local: trained on the K "
        "samples only; transfer: the global model fine-tuned on the K samples "
        f"(strategy {config.get('strategy')}, BatchNorm {config.get('finetune_batchnorm')}"
        + (
            f", replaying the other groups' data with the K samples as "
            f"{config.get('finetune_local_share')} of each epoch"
            if config.get("finetune_replay")
            else ""
        )
        + "); spiking: trained on the other groups plus the "
        "K samples. Cells are RMSE / R², means over repeats.",
    ]
    if result.skipped_groups:
        skipped = ", ".join(f"{g} (n={n})" for g, n in result.skipped_groups.items())
        lines += ["", f"Skipped (fewer than K + {MIN_TEST_SAMPLES} samples): {skipped}."]
    for target, target_summary in summary["targets"].items():
        rows = means[means["target"] == target]
        columns = list(dict.fromkeys(_column_label(s, m) for s, m in _ordered_pairs(rows)))
        lines += ["", f"## {target}", ""]
        lines += ["| group | n test | " + " | ".join(columns) + " |"]
        lines += ["|---|---:|" + "---:|" * len(columns)]
        for group, part in rows.groupby("group", sort=False):
            cells = {
                _column_label(str(r["strategy"]), str(r["model"])): (
                    f"{_format(r['rmse'], '.3g')} / {_format(r['r2'], '.2f')}"
                )
                for r in part.to_dict(orient="records")
            }
            n_test = round(float(part["n_test"].max()))
            lines.append(
                f"| {group} | {n_test} | " + " | ".join(cells.get(c, "") for c in columns) + " |"
            )
        n = int(target_summary["n_groups"])
        lines += [
            "",
            f"Transfer beats local in {_share_text(target_summary['transfer_beats_local'], n)} "
            f"groups, global in {_share_text(target_summary['transfer_beats_global'], n)}, and "
            "the best spiking model in "
            f"{_share_text(target_summary['transfer_beats_spiking'], n)}.",
        ]
        behind = [
            g
            for g in target_summary["groups"]
            if math.isfinite(g["transfer_minus_best_spiking"])
            and g["transfer_minus_best_spiking"] >= 0
        ]
        if behind:
            lines += ["", "Where transfer does not beat spiking (RMSE above the best spiking):", ""]
            for g in behind:
                margin = g["transfer_minus_best_spiking"]
                relative = margin / g["best_spiking_rmse"] if g["best_spiking_rmse"] else math.nan
                lines.append(
                    f"- {g['group']}: transfer {g['transfer_rmse']:.3g} against "
                    f"{g['best_spiking_model']} {g['best_spiking_rmse']:.3g} "
                    f"(+{margin:.3g}, {_format(relative, '+.0%')})"
                )
    if plot:
        lines += ["", f"![RMSE per group and strategy]({plot})"]
    lines += configuration_markdown(config)
    return "\n".join(lines)


def _ordered_pairs(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(strategy, model) pairs in report order: global, local, transfer, then spiking models."""
    pairs = list(dict.fromkeys(zip(rows["strategy"], rows["model"], strict=True)))
    return sorted(pairs, key=lambda p: STRATEGIES.index(p[0]) if p[0] in STRATEGIES else 99)


def plot_transfer_rmse(result: TransferResult, path: str | os.PathLike[str]) -> Path:
    """Grouped bar chart of RMSE per group and strategy, one panel per target.

    Args:
        result: The output of :func:`transfer_cv`.
        path: Where to write the PNG.

    Returns:
        The path written.
    """
    means = result.mean_scores()
    targets = list(dict.fromkeys(means["target"])) or ["(no results)"]
    n_groups = max(1, means["group"].nunique())
    figure = Figure(figsize=(max(6.0, 1.4 * n_groups + 2.0), 3.6 * len(targets)), layout="tight")
    FigureCanvasAgg(figure)  # attaches the Agg canvas to this figure only
    for k, target in enumerate(targets):
        axes = figure.add_subplot(len(targets), 1, k + 1)
        rows = means[means["target"] == target]
        groups = list(dict.fromkeys(rows["group"]))
        pairs = _ordered_pairs(rows)
        width = 0.8 / max(1, len(pairs))
        positions = np.arange(len(groups), dtype=np.float64)
        for j, (strategy, model) in enumerate(pairs):
            part = rows[(rows["strategy"] == strategy) & (rows["model"] == model)]
            values = part.set_index("group")["rmse"].reindex(groups).to_numpy(dtype=np.float64)
            axes.bar(
                positions + (j - (len(pairs) - 1) / 2) * width,
                values,
                width,
                label=_column_label(strategy, model),
            )
        axes.set_xticks(positions, [str(g) for g in groups])
        axes.set_ylabel(f"RMSE {target}")
        axes.set_title(f"{target}: RMSE on each left-out group (lower is better)")
        if pairs:
            axes.legend(fontsize=8, ncols=min(len(pairs), 5))
    out = Path(path)
    with atomic_path(out) as tmp:
        # The temporary name ends in .tmp, so the format must be given explicitly.
        figure.savefig(tmp, format="png", dpi=100)
    return out


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise SpecsoilError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _group_seed(seed: int, group: str, repeat: int) -> np.random.Generator:
    # crc32 rather than hash(): str hashes change between interpreter runs.
    return np.random.default_rng([seed, zlib.crc32(group.encode("utf-8")), repeat])


@dataclass(slots=True)
class _Runner:
    """Fits models on row subsets of one table, scores them, and reports progress."""

    table: SpectraTable
    Y: NDArray[np.float64]
    targets: list[str]
    seed: int
    progress: TransferProgress | None
    total: int
    done: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def fit(self, spec: _Spec, rows: NDArray[np.intp]) -> SpectralModel:
        return SpectralModel.fit(
            self.table.subset(rows),
            self.targets,
            recipe=spec.recipe,
            name=spec.name,
            preprocessing=spec.preprocessing,
            params=spec.params,
            random_state=self.seed,
        )

    def record(
        self,
        model: SpectralModel,
        test_rows: NDArray[np.intp],
        context: Mapping[str, Any],
        strategy: str,
    ) -> None:
        """Score ``model`` on ``test_rows``: one result row per target."""
        predicted = model.predict(self.table.subset(test_rows))
        for j, target in enumerate(self.targets):
            observed = self.Y[test_rows, j]
            self.rows.append(
                {
                    **context,
                    "strategy": strategy,
                    "model": model.name,
                    "target": target,
                    "rmse": rmse(observed, predicted[:, j]),
                    "r2": r2(observed, predicted[:, j]),
                    "n_test": int(np.isfinite(observed).sum()),
                }
            )

    def step(self, key: str, description: str, started: float) -> None:
        """Count one fit (its time under ``key``) and report progress."""
        self.seconds[key] += time.perf_counter() - started
        self.done += 1
        if self.progress is not None:
            self.progress(description, self.done, self.total)


def transfer_cv(
    table: SpectraTable,
    *,
    group_column: str,
    targets: Sequence[str],
    local_n: int = 20,
    model: str | ModelSpecLike = "cnn1d",
    spiking_models: Sequence[str | ModelSpecLike] = ("plsr", "mbl"),
    strategy: FinetuneStrategy = TRANSFER_STRATEGY,
    repeats: int = 1,
    seed: int = 0,
    max_epochs: int | None = TRANSFER_EPOCHS,
    lr: float | None = None,
    batchnorm: FinetuneBatchNorm = "frozen",
    replay: bool = TRANSFER_REPLAY,
    local_share: float = TRANSFER_LOCAL_SHARE,
    progress: TransferProgress | None = None,
) -> TransferResult:
    """Leave each group out and compare global, local, transfer and spiking on it.

    For every group with at least ``local_n`` + 5 samples holding a lab value: the global
    model is trained once on all other groups; then, per repeat, ``local_n`` samples of the
    group are drawn (seeded by ``seed``, the group and the repeat; from the samples with
    every lab value when there are K of them), and the local model, the fine-tuned global
    model and each spiking model are fitted with them. Every strategy is scored on the
    group's remaining samples; missing lab values are masked per target.

    Args:
        table: Spectra with lab values and a group column (site, region, country).
        group_column: The column naming each sample's group.
        targets: Properties to model.
        local_n: K, the number of local samples of the left-out group that may be used.
        model: The CNN recipe (or a model spec as ``specsoil cv`` resolves it) used for the
            global, local and transfer strategies.
        spiking_models: Recipes (or specs) trained on the other groups plus the K samples.
        strategy: Fine-tuning strategy (``head``, ``partial`` or ``full``).
        repeats: Number of independent draws of the K samples per group.
        seed: Seed of every model and of the draws.
        max_epochs: Fine-tuning epochs (None: the global model's; 40 suits replay, where
            an epoch holds all the other groups' rows).
        lr: Fine-tuning learning rate of the head (None: the global model's).
        batchnorm: ``"frozen"``: BatchNorm layers keep the global model's running
            statistics while fine-tuning; ``"adapt"``: unfrozen ones re-estimate them.
        replay: Fine-tune on the K samples together with the other groups' data (the
            global model's training rows), as spiking does for the classic models; False:
            on the K samples only.
        local_share: With ``replay``, the share of each fine-tuning epoch made of the K
            local samples (repeated to reach it).
        progress: Called as ``progress(description, completed, total)`` after each fit.

    Returns:
        The scores, the skipped groups and the settings.

    Raises:
        SpecsoilError: If a setting is invalid, ``model`` is not a CNN, the group column is
            missing or has fewer than 2 groups, or no group is large enough.
    """
    local_n = _check_count(local_n, "local_n", 2)
    repeats = _check_count(repeats, "repeats", 1)
    if not isinstance(replay, bool):
        raise SpecsoilError(f"replay must be True or False; got {replay!r}")
    if replay and not 0.0 < local_share < 1.0:
        raise SpecsoilError(f"local_share must be between 0 and 1 (exclusive); got {local_share}")
    targets = list(targets)
    if not targets:
        raise SpecsoilError(f"{table.source}: name at least one target")
    spec = _as_spec(model)
    spiking = [_as_spec(m) for m in spiking_models]
    names = [s.name for s in spiking]
    if len(set(names)) != len(names):
        raise SpecsoilError(f"spiking models must have distinct names; got {names}")
    # Build every pipeline once before any fit, so a bad recipe or parameter fails at once.
    built = {
        s.name: make_recipe(
            s.recipe, table.wavelengths, preprocessing=s.preprocessing, params=s.params
        )
        for s in [spec, *spiking]
    }
    if not is_finetunable(built[spec.name]):
        raise SpecsoilError(
            f"model {spec.name!r} ({spec.recipe}) is not a CNN, so it cannot be fine-tuned; "
            "transfer evaluation needs a CNN recipe such as cnn1d (classic models are "
            "compared as spiking models)"
        )
    Y = table.targets(targets)
    folds = group_splits(table.column(group_column), column=group_column)
    labelled = np.asarray(np.isfinite(Y).any(axis=1), dtype=bool)
    complete = np.asarray(np.isfinite(Y).all(axis=1), dtype=bool)
    eligible: list[tuple[Fold, NDArray[np.intp]]] = []
    skipped: dict[str, int] = {}
    for fold in folds:
        candidates = fold.test[labelled[fold.test]]
        if candidates.size < local_n + MIN_TEST_SAMPLES:
            skipped[fold.name] = int(candidates.size)
            logger.warning(
                "group %r has %d samples with lab values; at least local_n + %d = %d are "
                "needed, so it is skipped",
                fold.name,
                candidates.size,
                MIN_TEST_SAMPLES,
                local_n + MIN_TEST_SAMPLES,
            )
        else:
            # Local samples come from the rows with every lab value where there are enough
            # (as when K samples are sent to the lab for all properties), so that no target
            # is left without local values to fit.
            full = fold.test[complete[fold.test]]
            eligible.append((fold, full if full.size >= local_n else candidates))
    if not eligible:
        raise SpecsoilError(
            f"{table.source}: no group in column {group_column!r} has local_n + "
            f"{MIN_TEST_SAMPLES} = {local_n + MIN_TEST_SAMPLES} samples with lab values "
            f"(group sizes: {skipped}); lower --local-n or group more coarsely"
        )

    logger.info(
        "Transfer evaluation: %d groups, K = %d, %d repeat(s), %s with spiking %s",
        len(eligible),
        local_n,
        repeats,
        spec.name,
        names,
    )
    runner = _Runner(
        table=table,
        Y=Y,
        targets=targets,
        seed=seed,
        progress=progress,
        total=len(eligible) * (1 + repeats * (2 + len(spiking))),
    )
    for fold, candidates in eligible:
        started = time.perf_counter()
        global_model = runner.fit(spec, fold.train)
        runner.step("global", f"{fold.name}: global", started)
        for repeat in range(repeats):
            draw = _group_seed(seed, fold.name, repeat)
            local = np.sort(draw.choice(candidates, size=local_n, replace=False))
            test_rows = np.setdiff1d(fold.test, local)
            context = {"group": fold.name, "repeat": repeat}
            label = f"{fold.name} #{repeat + 1}"

            started = time.perf_counter()
            runner.record(global_model, test_rows, context, "global")
            runner.seconds["global"] += time.perf_counter() - started
            started = time.perf_counter()
            runner.record(runner.fit(spec, local), test_rows, context, "local")
            runner.step("local", f"{label}: local", started)
            started = time.perf_counter()
            tuned = finetune_model(
                global_model,
                table.subset(local),
                targets,
                strategy=strategy,
                max_epochs=max_epochs,
                lr=lr,
                random_state=seed + repeat,
                name=spec.name,
                batchnorm=batchnorm,
                replay=table.subset(fold.train) if replay else None,
                local_share=local_share,
            )
            runner.record(tuned, test_rows, context, "transfer")
            runner.step("transfer", f"{label}: transfer", started)
            for other in spiking:
                started = time.perf_counter()
                spiked = runner.fit(other, np.concatenate([fold.train, local]))
                runner.record(spiked, test_rows, context, "spiking")
                runner.step(f"spiking {other.name}", f"{label}: spiking {other.name}", started)

    config = {
        "data": table.source,
        "n_samples": table.n_samples,
        "group_column": group_column,
        "groups": [fold.name for fold, _ in eligible],
        "targets": targets,
        "local_n": local_n,
        "repeats": repeats,
        "seed": seed,
        "model": {"name": spec.name, "recipe": spec.recipe, "params": spec.params},
        "spiking_models": {s.name: {"recipe": s.recipe, "params": s.params} for s in spiking},
        "strategy": strategy,
        "finetune_max_epochs": max_epochs,
        "finetune_lr": lr,
        "finetune_batchnorm": batchnorm,
        "finetune_replay": replay,
        "finetune_local_share": local_share if replay else None,
    }
    results = pd.DataFrame(runner.rows, columns=list(RESULT_COLUMNS))
    return TransferResult(results, skipped, dict(_jsonable(config)), dict(runner.seconds))
