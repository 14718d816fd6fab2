"""Transfer evaluation: how well do models carry over to a group (site, region) left out?

For every group, with that group left out of training, these strategies are compared on the
group's samples that no strategy has seen:

- ``global``: the model trained on all other groups;
- ``local``: the same recipe trained on K samples of the group only;
- ``transfer``: the global model fine-tuned on the same K samples (optionally together with
  the other groups' data, or only the rows of it nearest to the K samples, replayed:
  fine-tuning with rehearsal);
- ``spiking``: classic models (PLSR, MBL, ...) trained on the other groups plus the same K
  samples, the usual way to adapt a large spectral library to a site (Guerrero et al., 2010,
  Geoderma 158:66; Wetterlind & Stenberg, 2010, Eur. J. Soil Sci. 61:823);
- ``spiking_average``: the plain average of the spiking models' predictions;
- ``ensemble``: per spiking model, a fixed-weight average of its predictions and transfer's.

The K local samples are drawn at random, seeded per (group, draw), and the same K samples
serve every strategy, so the strategies differ only in how they use them. Nothing is chosen
by looking at the test samples: every setting and weight is fixed before the run, and
transfer is compared with each spiking model on its own and with their average, never with
whichever scored best on the test samples.
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

STRATEGIES: tuple[str, ...] = (
    "global",
    "local",
    "transfer",
    "spiking",
    "spiking_average",
    "ensemble",
)
"""The strategies compared, in report order."""

RESULT_COLUMNS: tuple[str, ...] = (
    "group",
    "strategy",
    "model",
    "target",
    "draw",
    "rmse",
    "r2",
    "n_test",
)
"""Columns of :attr:`TransferResult.results`, in order."""

# A group must keep at least this many samples for testing after the K local ones are drawn.
MIN_TEST_SAMPLES = 5

# The default transfer setting follows a rule fixed in advance, never test scores:
# transfer_cv fine-tunes with the one setting it is given, the same for every group, draw
# and target, and neither it nor bench_transfer picks a setting by how it scored. The rule:
# transfer learns from the same samples as spiking (the other groups' data replayed with
# the K local samples, those half of each epoch), every weight trainable ("full"), for 40
# epochs at the global model's learning rate. For the record: these values were first
# picked (2026-11) by bench_transfer against the best spiking model per cluster on the test
# samples, the oracle this module no longer computes; they are kept unchanged as the fixed
# rule, and draws after the first are new to them (docs/benchmarks.md, bench_transfer).
TRANSFER_STRATEGY: FinetuneStrategy = "full"
TRANSFER_EPOCHS = 40
TRANSFER_REPLAY = True
TRANSFER_LOCAL_SHARE = 0.5
TRANSFER_REPLAY_NEIGHBOURS: int | None = None
"""None: replay the whole library (as spiking uses it); an int: similarity-weighted replay."""

# Weight of transfer in a transfer + spiking ensemble, fixed in advance: equal weights, the
# one combination that needs no data to set, so none can be fitted to the test samples.
ENSEMBLE_WEIGHT = 0.5

# Name of the spiking_average strategy's model (the mean of the spiking models' predictions).
_AVERAGE = "average"

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
    """Scores of every strategy on every left-out group and draw of the K local samples.

    Attributes:
        results: One row per (group, strategy, model, target, draw): columns group,
            strategy (one of :data:`STRATEGIES`), model (the recipe or model name;
            ``transfer+<spiking model>`` for an ensemble, ``average`` for the spiking
            average), target, draw, rmse, r2 and n_test (the group's held-out samples with
            a lab value for that target).
        skipped_groups: Groups too small to draw the local samples and still test, with
            their number of samples.
        config: The settings of the run (JSON-ready).
        fit_seconds: Wall time spent fitting and predicting, per strategy (spiking per model).
        local_samples: Per group, per draw, the sample ids of the K local samples.
    """

    results: pd.DataFrame
    skipped_groups: dict[str, int]
    config: dict[str, Any]
    fit_seconds: dict[str, float] = field(default_factory=dict)
    local_samples: dict[str, list[list[str]]] = field(default_factory=dict)

    def mean_scores(self) -> pd.DataFrame:
        """Mean RMSE and R² over draws, one row per (target, group, strategy, model).

        ``rmse_sd`` is the standard deviation of the RMSE over the draws (NaN for one draw).
        """
        columns = ["target", "group", "strategy", "model"]
        frame = self.results.groupby(columns, sort=False, as_index=False).agg(
            rmse=("rmse", "mean"),
            rmse_sd=("rmse", "std"),
            r2=("r2", "mean"),
            n_test=("n_test", "mean"),
        )
        return frame

    def rmse_by_draw(self) -> pd.DataFrame:
        """RMSE with one row per (target, group, draw) and one column per report column.

        Columns are labelled as in the reports: ``global``, ``local``, ``transfer``,
        ``spiking <model>``, ``spiking average`` and ``transfer+<model>``.
        """
        frame = self.results.assign(
            column=[
                _column_label(s, m)
                for s, m in zip(self.results["strategy"], self.results["model"], strict=True)
            ]
        )
        wide = frame.set_index(["target", "group", "draw", "column"])["rmse"].unstack("column")
        order = [_column_label(s, m) for s, m in _ordered_pairs(self.results)]
        return wide.reindex(columns=order).astype(np.float64)

    def summary(self) -> dict[str, Any]:
        """Fair comparisons of transfer with each other strategy, per target and overall.

        Every comparison is paired: the two strategies' RMSE on the same group, draw and
        target (the same K local samples and test samples). Transfer is compared with local,
        global, each spiking model on its own and the spiking average, and each ensemble
        with its spiking model; never with whichever spiking model scored best on the test
        samples, which no user could pick in advance.

        Returns:
            ``{"targets": {target: {...}}, "overall": {...}}``, each with ``n_groups``
            ((target,) group pairs), ``n_draws``, the shares ``transfer_beats_local`` and
            ``transfer_beats_global`` (over (group, draw) pairs; None where nothing could
            be compared) and ``comparisons``: per (subject, reference) the wins, the pairs
            compared, the share won, the mean RMSE ratio subject / reference, its mean per
            draw and its standard deviation over draws. Per target also ``groups``: per
            group the mean RMSE over draws of every strategy and its standard deviation.
        """
        wide = self.rmse_by_draw()
        means = self.mean_scores()
        per_target: dict[str, Any] = {}
        for target in dict.fromkeys(self.results["target"]):
            rows = means[means["target"] == target]
            groups = [
                _group_summary(str(group), part)
                for group, part in rows.groupby("group", sort=False)
            ]
            part = wide[wide.index.get_level_values("target") == target].droplevel("target")
            # Strategies run for other targets only are not compared for this one.
            part = part.dropna(axis=1, how="all")
            per_target[str(target)] = {**_comparisons(part), "groups": groups}
        return {"targets": per_target, "overall": _comparisons(wide)}

    def to_json(self) -> dict[str, Any]:
        """The document written to ``transfer.json``.

        ``{"results": [{"group", "strategy", "model", "target", "draw", "rmse", "r2",
        "n_test"}, ...], "summary": {...}, "skipped_groups": [...], "local_samples":
        [{"group", "draw", "sample_ids"}, ...], "config": {...}, "fit_seconds": {...}}``,
        with undefined scores as null.
        """
        records = [
            {column: _jsonable(row[column]) for column in RESULT_COLUMNS}
            for row in self.results.loc[:, list(RESULT_COLUMNS)].to_dict(orient="records")
        ]
        document = {
            "results": records,
            "summary": self.summary(),
            "skipped_groups": [{"group": g, "n": n} for g, n in self.skipped_groups.items()],
            "local_samples": [
                {"group": group, "draw": draw, "sample_ids": ids}
                for group, per_draw in self.local_samples.items()
                for draw, ids in enumerate(per_draw)
            ],
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
    if strategy == "spiking":
        return f"spiking {model}"
    if strategy == "spiking_average":
        return "spiking average"
    if strategy == "ensemble":
        return model
    return strategy


def _finite(value: Any) -> float:
    return float(value) if value is not None and math.isfinite(float(value)) else math.nan


def _group_summary(group: str, part: pd.DataFrame) -> dict[str, Any]:
    """Mean RMSE over draws per strategy for one (group, target), and its spread."""
    by_strategy: dict[str, float] = {}
    spiking: dict[str, float] = {}
    ensembles: dict[str, float] = {}
    spread: dict[str, float] = {}
    for row in part.to_dict(orient="records"):
        strategy, model = str(row["strategy"]), str(row["model"])
        value = float(row["rmse"])
        if strategy == "spiking":
            spiking[model] = value
        elif strategy == "ensemble":
            ensembles[model] = value
        else:
            by_strategy[strategy] = value
        spread[_column_label(strategy, model)] = _finite(row["rmse_sd"])
    return {
        "group": group,
        "global_rmse": by_strategy.get("global", math.nan),
        "local_rmse": by_strategy.get("local", math.nan),
        "transfer_rmse": by_strategy.get("transfer", math.nan),
        "spiking_rmse": spiking,
        "spiking_average_rmse": by_strategy.get("spiking_average", math.nan),
        "ensemble_rmse": ensembles,
        # Standard deviation over draws, per report column (NaN with one draw).
        "rmse_sd": spread,
    }


def _compared_pairs(columns: Sequence[str]) -> list[tuple[str, str]]:
    """(subject, reference) columns compared: transfer with the rest, ensembles with spiking."""
    pairs = [("transfer", c) for c in columns if c != "transfer" and "+" not in c]
    pairs += [(c, f"spiking {c.partition('+')[2]}") for c in columns if c.startswith("transfer+")]
    return [(s, r) for s, r in pairs if s in columns and r in columns]


def _comparison(frame: pd.DataFrame, subject: str, reference: str) -> dict[str, Any]:
    """Paired wins and RMSE ratios of ``subject`` against ``reference`` over rows of ``frame``.

    A row is one (target, group, draw), so both RMSEs come from the same K local samples
    and test samples. Ratios are subject / reference: below 1, the subject is better.
    """
    pair = frame[[subject, reference]]
    pair = pair[np.isfinite(pair.to_numpy()).all(axis=1) & (pair[reference] > 0)]
    wins = pair[subject] < pair[reference]
    ratio = pair[subject] / pair[reference]
    draws = ratio.index.get_level_values("draw")
    by_draw = ratio.groupby(draws).mean()
    return {
        "subject": subject,
        "reference": reference,
        "wins": int(wins.sum()),
        "n": len(pair),
        "share": float(wins.mean()) if len(pair) else None,
        "mean_ratio": float(ratio.mean()) if len(pair) else None,
        "ratio_by_draw": {int(d): float(v) for d, v in by_draw.items()},
        # Spread of the per-draw mean ratio: how much the verdict hangs on the K drawn.
        "ratio_sd_over_draws": float(by_draw.std()) if len(by_draw) > 1 else None,
    }


def _comparisons(frame: pd.DataFrame) -> dict[str, Any]:
    """Counts and every comparison over the (target,) group, draw rows of ``frame``."""
    levels = [name for name in frame.index.names if name != "draw"]
    groups = frame.index.to_frame(index=False)[levels].drop_duplicates()
    comparisons = [_comparison(frame, s, r) for s, r in _compared_pairs(list(frame.columns))]
    by_reference = {c["reference"]: c for c in comparisons if c["subject"] == "transfer"}

    def share(reference: str) -> float | None:
        found = by_reference.get(reference)
        return None if found is None else found["share"]

    return {
        "n_groups": len(groups),
        "n_draws": frame.index.get_level_values("draw").nunique(),
        "transfer_beats_local": share("local"),
        "transfer_beats_global": share("global"),
        "comparisons": comparisons,
    }


def _format(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)


def _share_text(share: float | None, n: int) -> str:
    return "n/a" if share is None else f"{share:.0%} ({round(share * n)} of {n})"


def _ratio_text(comparison: Mapping[str, Any]) -> str:
    """``0.93 ± 0.04``: mean ratio and its standard deviation over draws."""
    text = _format(comparison["mean_ratio"], ".2f")
    if comparison["ratio_sd_over_draws"] is not None:
        text += f" ± {comparison['ratio_sd_over_draws']:.2f}"
    return text


def comparison_markdown(comparisons: Sequence[Mapping[str, Any]]) -> list[str]:
    """A Markdown table of paired comparisons (the ``comparisons`` of a summary)."""
    lines = [
        "| strategy | against | wins | mean RMSE ratio (± sd over draws) |",
        "|---|---|---:|---:|",
    ]
    for c in comparisons:
        lines.append(
            f"| {c['subject']} | {c['reference']} | {c['wins']} of {c['n']} | {_ratio_text(c)} |"
        )
    return lines


def _cell(record: Mapping[str, Any]) -> str:
    text = _format(record["rmse"], ".3g")
    if math.isfinite(_finite(record["rmse_sd"])):
        text += f" ± {record['rmse_sd']:.2g}"
    return f"{text} / {_format(record['r2'], '.2f')}"


def transfer_markdown(result: TransferResult, *, plot: str | None = None) -> str:
    """The ``transfer.md`` report: a table per target and the paired comparisons.

    Args:
        result: The output of :func:`transfer_cv`.
        plot: File name of the bar chart to link, if any.

    Returns:
        The Markdown text.
    """
    config = result.config
    means = result.mean_scores()
    summary = result.summary()
    replay = ""
    if config.get("finetune_replay"):
        neighbours = config.get("finetune_replay_neighbours")
        rows = (
            "the other groups' data"
            if neighbours is None
            else f"the {neighbours} rows of the other groups' data nearest to each local "
            "sample (PCA-Mahalanobis)"
        )
        replay = (
            f", replaying {rows} with the K samples as "
            f"{config.get('finetune_local_share')} of each epoch"
        )
    lines = [
        "# Transfer evaluation",
        "",
        f"Groups from column `{config.get('group_column')}`; each group is left out in turn. "
        f"K = {config.get('local_n')} local samples drawn per group and draw "
        f"({config.get('draws')} draw(s), seed {config.get('seed')}); the rest of the "
        "group is the test set. global: trained on the other groups; local: trained on the K "
        "samples only; transfer: the global model fine-tuned on the K samples "
        f"(strategy {config.get('strategy')}, BatchNorm {config.get('finetune_batchnorm')}"
        + replay
        + "); spiking: trained on the other groups plus the K samples; spiking average: "
        "the mean of the spiking models' predictions; transfer+MODEL: "
        f"{config.get('ensemble_weight')} * transfer + {_ensemble_rest(config)} * spiking "
        "MODEL. Every setting and weight is fixed before the run; nothing is chosen on "
        "the test samples. Cells are RMSE (± sd over draws) / R², means over draws.",
    ]
    if result.skipped_groups:
        skipped = ", ".join(f"{g} (n={n})" for g, n in result.skipped_groups.items())
        lines += ["", f"Skipped (fewer than K + {MIN_TEST_SAMPLES} samples): {skipped}."]
    sections = [*summary["targets"].items(), ("all targets", summary["overall"])]
    for target, target_summary in sections:
        lines += ["", f"## {target}", ""]
        if target != "all targets":
            rows = means[means["target"] == target]
            columns = list(dict.fromkeys(_column_label(s, m) for s, m in _ordered_pairs(rows)))
            lines += ["| group | n test | " + " | ".join(columns) + " |"]
            lines += ["|---|---:|" + "---:|" * len(columns)]
            for group, part in rows.groupby("group", sort=False):
                cells = {
                    _column_label(str(r["strategy"]), str(r["model"])): _cell(r)
                    for r in part.to_dict(orient="records")
                }
                n_test = round(float(part["n_test"].max()))
                lines.append(
                    f"| {group} | {n_test} | "
                    + " | ".join(cells.get(c, "") for c in columns)
                    + " |"
                )
            lines.append("")
        n = sum(c["n"] for c in target_summary["comparisons"] if c["reference"] == "local")
        lines += [
            f"Over {target_summary['n_groups']} group(s) x {target_summary['n_draws']} "
            f"draw(s): transfer beats local in "
            f"{_share_text(target_summary['transfer_beats_local'], n)} pairs and global in "
            f"{_share_text(target_summary['transfer_beats_global'], n)}. Paired "
            "comparisons (same group, draw and target; ratio below 1: the strategy wins):",
            "",
            *comparison_markdown(target_summary["comparisons"]),
        ]
    if plot:
        lines += ["", f"![RMSE per group and strategy]({plot})"]
    lines += configuration_markdown(config)
    return "\n".join(lines)


def _ensemble_rest(config: Mapping[str, Any]) -> str:
    weight = config.get("ensemble_weight")
    return "n/a" if not isinstance(weight, int | float) else f"{1.0 - weight:g}"


def _ordered_pairs(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(strategy, model) pairs in report order: global, local, transfer, spiking, ensembles."""
    pairs = list(dict.fromkeys(zip(rows["strategy"], rows["model"], strict=True)))
    return sorted(pairs, key=lambda p: STRATEGIES.index(p[0]) if p[0] in STRATEGIES else 99)


def plot_transfer_rmse(result: TransferResult, path: str | os.PathLike[str]) -> Path:
    """Grouped bar chart of RMSE per group and strategy, one panel per target.

    Bars are means over draws; the error bars one standard deviation over draws.

    Args:
        result: The output of :func:`transfer_cv`.
        path: Where to write the PNG.

    Returns:
        The path written.
    """
    means = result.mean_scores()
    targets = list(dict.fromkeys(means["target"])) or ["(no results)"]
    n_groups = max(1, means["group"].nunique())
    n_pairs = max(1, len(_ordered_pairs(means)))
    width_in = max(6.0, (0.25 * n_pairs + 0.6) * n_groups + 2.0)
    figure = Figure(figsize=(width_in, 3.6 * len(targets)), layout="tight")
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
            indexed = part.set_index("group").reindex(groups)
            values = indexed["rmse"].to_numpy(dtype=np.float64)
            spread = np.nan_to_num(indexed["rmse_sd"].to_numpy(dtype=np.float64))
            axes.bar(
                positions + (j - (len(pairs) - 1) / 2) * width,
                values,
                width,
                yerr=spread,
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


def _group_seed(seed: int, group: str, draw: int) -> np.random.Generator:
    # crc32 rather than hash(): str hashes change between interpreter runs. Each draw has its
    # own stream, so draw d is the same whatever the number of draws.
    return np.random.default_rng([seed, zlib.crc32(group.encode("utf-8")), draw])


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
        predicted: NDArray[np.float64],
        test_rows: NDArray[np.intp],
        context: Mapping[str, Any],
        strategy: str,
        model: str,
    ) -> None:
        """Score predictions of ``test_rows``: one result row per target."""
        for j, target in enumerate(self.targets):
            observed = self.Y[test_rows, j]
            self.rows.append(
                {
                    **context,
                    "strategy": strategy,
                    "model": model,
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


def _predict(model: SpectralModel, table: SpectraTable) -> NDArray[np.float64]:
    predicted = np.asarray(model.predict(table), dtype=np.float64)
    return predicted.reshape(table.n_samples, -1)


def _check_settings(
    replay: object,
    local_share: float,
    replay_neighbours: object,
    ensemble_weight: object,
) -> None:
    if not isinstance(replay, bool):
        raise SpecsoilError(f"replay must be True or False; got {replay!r}")
    if replay and not 0.0 < local_share < 1.0:
        raise SpecsoilError(f"local_share must be between 0 and 1 (exclusive); got {local_share}")
    if replay_neighbours is not None:
        if not replay:
            raise SpecsoilError("replay_neighbours selects the replayed rows, so it needs replay")
        _check_count(replay_neighbours, "replay_neighbours", 1)
    if (
        isinstance(ensemble_weight, bool)
        or not isinstance(ensemble_weight, int | float)
        or not 0.0 <= ensemble_weight <= 1.0
    ):
        raise SpecsoilError(f"ensemble_weight must be between 0 and 1; got {ensemble_weight!r}")


def transfer_cv(
    table: SpectraTable,
    *,
    group_column: str,
    targets: Sequence[str],
    local_n: int = 20,
    model: str | ModelSpecLike = "cnn1d",
    spiking_models: Sequence[str | ModelSpecLike] = ("plsr", "mbl"),
    strategy: FinetuneStrategy = TRANSFER_STRATEGY,
    draws: int = 1,
    seed: int = 0,
    max_epochs: int | None = TRANSFER_EPOCHS,
    lr: float | None = None,
    batchnorm: FinetuneBatchNorm = "frozen",
    replay: bool = TRANSFER_REPLAY,
    local_share: float = TRANSFER_LOCAL_SHARE,
    replay_neighbours: int | None = TRANSFER_REPLAY_NEIGHBOURS,
    ensemble_weight: float = ENSEMBLE_WEIGHT,
    progress: TransferProgress | None = None,
) -> TransferResult:
    """Leave each group out and compare global, local, transfer and spiking on it.

    For every group with at least ``local_n`` + 5 samples holding a lab value: the global
    model is trained once on all other groups; then, per draw, ``local_n`` samples of the
    group are drawn (seeded by ``seed``, the group and the draw; from the samples with
    every lab value when there are K of them), and the local model, the fine-tuned global
    model and each spiking model are fitted with them. Every strategy is scored on the
    group's remaining samples; missing lab values are masked per target. The spiking
    average and the transfer + spiking ensembles combine those predictions with weights
    fixed in advance. No setting is chosen by test scores (see :data:`TRANSFER_STRATEGY`).

    Args:
        table: Spectra with lab values and a group column (site, region, country).
        group_column: The column naming each sample's group.
        targets: Properties to model.
        local_n: K, the number of local samples of the left-out group that may be used.
        model: The CNN recipe (or a model spec as ``specsoil cv`` resolves it) used for the
            global, local and transfer strategies.
        spiking_models: Recipes (or specs) trained on the other groups plus the K samples.
        strategy: Fine-tuning strategy (``head``, ``partial`` or ``full``).
        draws: Number of independent draws of the K samples per group; draw d is the
            same whatever ``draws`` is.
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
        replay_neighbours: With ``replay``, replay only the rows of the other groups'
            data nearest to each local sample, this many per sample (similarity-weighted
            replay, :func:`specsoil.models.similar_rows`); None: all of them.
        ensemble_weight: Weight of transfer in each transfer + spiking ensemble (the
            spiking model gets the rest).
        progress: Called as ``progress(description, completed, total)`` after each fit.

    Returns:
        The scores, the skipped groups, the local samples drawn and the settings.

    Raises:
        SpecsoilError: If a setting is invalid, ``model`` is not a CNN, the group column is
            missing or has fewer than 2 groups, or no group is large enough.
    """
    local_n = _check_count(local_n, "local_n", 2)
    draws = _check_count(draws, "draws", 1)
    _check_settings(replay, local_share, replay_neighbours, ensemble_weight)
    targets = list(targets)
    if not targets:
        raise SpecsoilError(f"{table.source}: name at least one target")
    spec = _as_spec(model)
    spiking = [_as_spec(m) for m in spiking_models]
    names = [s.name for s in spiking]
    if len(set(names)) != len(names):
        raise SpecsoilError(f"spiking models must have distinct names; got {names}")
    if _AVERAGE in names:
        raise SpecsoilError(
            f"a spiking model may not be called {_AVERAGE!r}: that name is the spiking average"
        )
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
        "Transfer evaluation: %d groups, K = %d, %d draw(s), %s with spiking %s",
        len(eligible),
        local_n,
        draws,
        spec.name,
        names,
    )
    runner = _Runner(
        table=table,
        Y=Y,
        targets=targets,
        seed=seed,
        progress=progress,
        total=len(eligible) * (1 + draws * (2 + len(spiking))),
    )
    sample_ids = np.asarray(table.sample_ids, dtype=object)
    local_samples: dict[str, list[list[str]]] = {}
    for fold, candidates in eligible:
        started = time.perf_counter()
        global_model = runner.fit(spec, fold.train)
        runner.step("global", f"{fold.name}: global", started)
        for draw in range(draws):
            generator = _group_seed(seed, fold.name, draw)
            local = np.sort(generator.choice(candidates, size=local_n, replace=False))
            local_samples.setdefault(fold.name, []).append([str(i) for i in sample_ids[local]])
            test_rows = np.setdiff1d(fold.test, local)
            test_table = table.subset(test_rows)
            context = {"group": fold.name, "draw": draw}
            label = f"{fold.name} #{draw + 1}"

            def score(predicted: NDArray[np.float64], strategy: str, name: str) -> None:
                runner.record(predicted, test_rows, context, strategy, name)  # noqa: B023

            started = time.perf_counter()
            score(_predict(global_model, test_table), "global", spec.name)
            runner.seconds["global"] += time.perf_counter() - started
            started = time.perf_counter()
            score(_predict(runner.fit(spec, local), test_table), "local", spec.name)
            runner.step("local", f"{label}: local", started)
            started = time.perf_counter()
            tuned = finetune_model(
                global_model,
                table.subset(local),
                targets,
                strategy=strategy,
                max_epochs=max_epochs,
                lr=lr,
                random_state=seed + draw,
                name=spec.name,
                batchnorm=batchnorm,
                replay=table.subset(fold.train) if replay else None,
                local_share=local_share,
                replay_neighbours=replay_neighbours,
            )
            transferred = _predict(tuned, test_table)
            score(transferred, "transfer", spec.name)
            runner.step("transfer", f"{label}: transfer", started)
            spiked: dict[str, NDArray[np.float64]] = {}
            for other in spiking:
                started = time.perf_counter()
                fitted = runner.fit(other, np.concatenate([fold.train, local]))
                spiked[other.name] = _predict(fitted, test_table)
                score(spiked[other.name], "spiking", other.name)
                runner.step(f"spiking {other.name}", f"{label}: spiking {other.name}", started)
            if len(spiked) > 1:
                score(np.mean(list(spiked.values()), axis=0), "spiking_average", _AVERAGE)
            for name, predicted in spiked.items():
                blend = ensemble_weight * transferred + (1.0 - ensemble_weight) * predicted
                score(blend, "ensemble", f"transfer+{name}")

    config = {
        "data": table.source,
        "n_samples": table.n_samples,
        "group_column": group_column,
        "groups": [fold.name for fold, _ in eligible],
        "targets": targets,
        "local_n": local_n,
        "draws": draws,
        "seed": seed,
        "model": {"name": spec.name, "recipe": spec.recipe, "params": spec.params},
        "spiking_models": {s.name: {"recipe": s.recipe, "params": s.params} for s in spiking},
        "strategy": strategy,
        "finetune_max_epochs": max_epochs,
        "finetune_lr": lr,
        "finetune_batchnorm": batchnorm,
        "finetune_replay": replay,
        "finetune_local_share": local_share if replay else None,
        "finetune_replay_neighbours": replay_neighbours,
        "ensemble_weight": ensemble_weight,
    }
    results = pd.DataFrame(runner.rows, columns=list(RESULT_COLUMNS))
    return TransferResult(
        results, skipped, dict(_jsonable(config)), dict(runner.seconds), local_samples
    )
