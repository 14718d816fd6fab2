"""Write a cross-validation result to disk: metrics JSON, predictions CSV, plots and a summary.

Every file goes through :mod:`specsoil._atomic`, so an interrupted run leaves no half-written
output. Plots use a bare :class:`matplotlib.figure.Figure` on the Agg canvas: no pyplot state.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from specsoil._atomic import atomic_path, atomic_write_text
from specsoil.evaluate._cross_validation import (
    FOLD_METRIC_COLUMNS,
    METRIC_COLUMNS,
    PREDICTION_COLUMNS,
    CVResult,
)

logger = logging.getLogger(__name__)

_PANEL_INCHES = 4.0
_MAX_COLUMNS = 3


def _format(value: Any, spec: str) -> str:
    """Format a metric for people; undefined values read as ``n/a``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def _panel_text(scores: Mapping[str, Any]) -> str:
    return "\n".join(
        (
            f"R² = {_format(scores['r2'], '.3f')}",
            f"RMSE = {_format(scores['rmse'], '.4g')}",
            f"RPIQ = {_format(scores['rpiq'], '.2f')}",
            f"bias = {_format(scores['bias'], '.3g')}",
            f"n = {int(scores['n'])}",
        )
    )


def plot_observed_vs_predicted(
    predictions: pd.DataFrame,
    metrics: pd.DataFrame,
    target: str,
    path: str | os.PathLike[str],
) -> Path:
    """Scatter predicted against observed values of one target, one panel per model.

    Each panel has the 1:1 line and the model's pooled R², RMSE, RPIQ, bias and n. All panels
    share the same axis limits so the models can be compared by eye.

    Args:
        predictions: Out-of-fold predictions (see :attr:`CVResult.predictions`).
        metrics: Pooled metrics (see :attr:`CVResult.metrics`).
        target: The target to plot, as named in both tables.
        path: Where to write the PNG.

    Returns:
        The path written.

    Raises:
        ValueError: If ``metrics`` has no row for ``target``.
    """
    target_metrics = metrics[metrics["target"] == target]
    if target_metrics.empty:
        raise ValueError(
            f"no metrics for target {target!r}; targets: {sorted(metrics['target'].unique())}"
        )
    target_predictions = predictions[predictions["target"] == target]
    models = list(dict.fromkeys(target_metrics["model"]))
    n_columns = min(len(models), _MAX_COLUMNS)
    n_rows = math.ceil(len(models) / n_columns)

    values = target_predictions[["observed", "predicted"]].to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size:
        low, high = float(values.min()), float(values.max())
        margin = 0.05 * (high - low) if high > low else max(abs(high), 1.0) * 0.05
        limits = (low - margin, high + margin)
    else:
        limits = (0.0, 1.0)

    figure = Figure(figsize=(_PANEL_INCHES * n_columns, _PANEL_INCHES * n_rows), layout="tight")
    FigureCanvasAgg(figure)  # attaches the Agg canvas to this figure only
    for k, model in enumerate(models):
        axes = figure.add_subplot(n_rows, n_columns, k + 1)
        points = target_predictions[target_predictions["model"] == model]
        axes.scatter(points["observed"], points["predicted"], s=12, alpha=0.6, edgecolors="none")
        axes.plot(limits, limits, color="black", linestyle="--", linewidth=1, label="1:1")
        axes.set_xlim(limits)
        axes.set_ylim(limits)
        axes.set_aspect("equal")
        axes.set_title(model)
        axes.set_xlabel(f"Observed {target}")
        axes.set_ylabel(f"Predicted {target}")
        scores = target_metrics[target_metrics["model"] == model].iloc[0].to_dict()
        axes.text(
            0.03,
            0.97,
            _panel_text(scores),
            transform=axes.transAxes,
            verticalalignment="top",
            fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8},
        )
    out = Path(path)
    with atomic_path(out) as tmp:
        # The temporary name ends in .tmp, so the format must be given explicitly.
        figure.savefig(tmp, format="png", dpi=100)
    return out


def _safe_names(targets: list[str]) -> dict[str, str]:
    """File-name-safe, unique stems for target names (``"C (%)"`` -> ``"C_"``)."""
    stems: dict[str, str] = {}
    used: set[str] = set()
    for target in targets:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", target).strip("._") or "target"
        candidate, k = stem, 2
        while candidate.lower() in used:  # case-insensitive file systems would collide too
            candidate, k = f"{stem}_{k}", k + 1
        used.add(candidate.lower())
        stems[target] = candidate
    return stems


def _jsonable(value: Any) -> Any:
    """Plain JSON types, with NaN and infinity as null (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def configuration_markdown(config: Mapping[str, Any]) -> list[str]:
    """A report's closing "Configuration" section: every setting of the run, as JSON."""
    return [
        "",
        "## Configuration",
        "",
        "```json",
        json.dumps(_jsonable(config), indent=2, allow_nan=False),
        "```",
        "",
    ]


def _records(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {column: _jsonable(row[column]) for column in columns}
        for row in frame.loc[:, list(columns)].to_dict(orient="records")
    ]


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    header = ["model", "n", "R²", "RMSE", "bias", "RPD", "RPIQ", "CCC"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.to_dict(orient="records"):
        cells = [
            str(row["model"]),
            str(int(row["n"])),
            _format(row["r2"], ".3f"),
            _format(row["rmse"], ".4g"),
            _format(row["bias"], ".3g"),
            _format(row["rpd"], ".2f"),
            _format(row["rpiq"], ".2f"),
            _format(row["ccc"], ".3f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _markdown(result: CVResult, plots: dict[str, str], config: Mapping[str, Any]) -> str:
    folds = list(dict.fromkeys(result.fold_metrics["fold"]))
    lines = [
        "# Cross-validation report",
        "",
        f"Models: {', '.join(result.fit_seconds)}. Targets: {', '.join(plots)}. "
        f"Folds: {len(folds)}.",
        "",
        "Metrics are computed on the pooled out-of-fold predictions; samples without an "
        "observed value are left out (n counts the samples scored).",
    ]
    for target, plot in plots.items():
        lines += ["", f"## {target}", ""]
        lines += _markdown_table(result.metrics[result.metrics["target"] == target])
        lines += ["", f"![Observed vs predicted {target}]({plot})"]
    lines += _choices_markdown(result.fit_details, list(plots))
    lines += ["", "## Fit time", "", "| model | seconds |", "|---|---|"]
    lines += [f"| {model} | {seconds:.2f} |" for model, seconds in result.fit_seconds.items()]
    lines += configuration_markdown(config)
    return "\n".join(lines)


def _chains_by_model(
    details: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> dict[str, list[list[str]]]:
    """Per model (and stack member, as ``stack/member``), each fold's chains per target."""
    chains: dict[str, list[list[str]]] = {}
    for model, folds in details.items():
        for fold in folds.values():
            if "chain" in fold:
                chains.setdefault(model, []).append(list(fold["chain"]))
            for member, inner in fold.get("members", {}).items():
                if "chain" in inner:
                    chains.setdefault(f"{model}/{member}", []).append(list(inner["chain"]))
    return chains


def _choices_markdown(
    details: Mapping[str, Mapping[str, Mapping[str, Any]]], targets: list[str]
) -> list[str]:
    """The preprocessing chains and stack weights the training folds chose."""
    lines: list[str] = []
    chains = _chains_by_model(details)
    if chains:
        lines += [
            "",
            "## Preprocessing chosen in the training folds",
            "",
            "Each fold's training rows chose one chain per target by inner CV; cells count the "
            "folds that chose each chain.",
            "",
            "| model | " + " | ".join(targets) + " |",
            "|---|" + "---|" * len(targets),
        ]
        for model, per_fold in chains.items():
            cells = []
            for j in range(len(targets)):
                counts = pd.Series([fold[j] for fold in per_fold]).value_counts()
                cells.append(", ".join(f"{name}: {count}" for name, count in counts.items()))
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    for model, folds in details.items():
        weights = [fold["weights"] for fold in folds.values() if "weights" in fold]
        if not weights:
            continue
        members = list(weights[0])
        lines += [
            "",
            f"## Stack weights: {model}",
            "",
            "Non-negative weights learnt on the members' inner-CV predictions in each fold's "
            "training rows: mean over folds (lowest-highest).",
            "",
            "| target | " + " | ".join(members) + " |",
            "|---|" + "---:|" * len(members),
        ]
        for j, target in enumerate(targets):
            cells = []
            for member in members:
                values = np.array([fold[member][j] for fold in weights])
                spread = f" ({values.min():.2f}-{values.max():.2f})" if len(values) > 1 else ""
                cells.append(f"{values.mean():.2f}{spread}")
            lines.append(f"| {target} | " + " | ".join(cells) + " |")
    return lines


def _details_by_target(value: Any, targets: list[str]) -> Any:
    """Fit details with their per-target lists keyed by target name, for metrics.json."""
    if isinstance(value, Mapping):
        return {key: _details_by_target(item, targets) for key, item in value.items()}
    if isinstance(value, list) and len(value) == len(targets):
        return dict(zip(targets, value, strict=True))
    return value


def write_report(
    result: CVResult, out_dir: str | os.PathLike[str], *, config: Mapping[str, Any]
) -> list[Path]:
    """Write metrics.json, predictions.csv, one obs_pred_<target>.png per target and report.md.

    ``metrics.json`` is ``{"results": [{"model", "target", "n", "r2", "rmse", "bias", "rpd",
    "rpiq", "ccc"}, ...], "config": {...}, "fold_metrics": [...], "fit_seconds": {...}}`` with
    undefined metrics as null. Existing files of the same names are replaced.

    Args:
        result: The output of :func:`cross_validate`.
        out_dir: Folder to write into; created if missing.
        config: The resolved run settings, stored in metrics.json and report.md.

    Returns:
        The paths written, in the order above.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    targets = list(dict.fromkeys(result.metrics["target"]))
    stems = _safe_names(targets)

    document = {
        "results": _records(result.metrics, METRIC_COLUMNS),
        "config": _jsonable(config),
        "fold_metrics": _records(result.fold_metrics, FOLD_METRIC_COLUMNS),
        "fit_seconds": _jsonable(result.fit_seconds),
    }
    if result.fit_details:
        document["fit_details"] = _jsonable(_details_by_target(result.fit_details, targets))
    metrics_path = folder / "metrics.json"
    atomic_write_text(metrics_path, json.dumps(document, indent=2, allow_nan=False) + "\n")

    predictions_path = folder / "predictions.csv"
    with atomic_path(predictions_path) as tmp:
        result.predictions.loc[:, list(PREDICTION_COLUMNS)].to_csv(tmp, index=False)

    written = [metrics_path, predictions_path]
    plots: dict[str, str] = {}
    for target in targets:
        plot_path = folder / f"obs_pred_{stems[target]}.png"
        written.append(
            plot_observed_vs_predicted(result.predictions, result.metrics, target, plot_path)
        )
        plots[target] = plot_path.name

    report_path = folder / "report.md"
    atomic_write_text(report_path, _markdown(result, plots, config))
    written.append(report_path)
    logger.debug("Wrote %d report files to %s", len(written), folder)
    return written


VALIDATION_TITLES: dict[str, str] = {
    "random": "random K-fold",
    "spatial_blocks": "spatial blocks",
    "leave_location_out": "leave-location-out",
}
"""Headings for the validation schemes that ``specsoil cv --spatial-blocks`` compares."""


def _title(validation: str) -> str:
    return VALIDATION_TITLES.get(validation, validation.replace("_", " "))


def _side_by_side(results: Mapping[str, CVResult], target: str) -> list[str]:
    """Markdown rows: one per model, R² and RMSE under each validation, then the RMSE ratio."""
    names = list(results)
    reference = names[0]
    header = ["model"]
    header += [f"R² {_title(v)}" for v in names] + [f"RMSE {_title(v)}" for v in names]
    header += [f"RMSE {_title(v)} / {_title(reference)}" for v in names[1:]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    scores = {
        v: {
            str(row["model"]): row
            for row in result.metrics[result.metrics["target"] == target].to_dict(orient="records")
        }
        for v, result in results.items()
    }
    for model in scores[reference]:
        rows = [scores[v].get(model, {}) for v in names]
        cells = [model]
        cells += [_format(row.get("r2", math.nan), ".3f") for row in rows]
        cells += [_format(row.get("rmse", math.nan), ".4g") for row in rows]
        base = float(rows[0].get("rmse", math.nan))
        for row in rows[1:]:
            ratio = float(row.get("rmse", math.nan)) / base if base > 0 else math.nan
            cells.append(_format(ratio, ".2f"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _validation_markdown(
    results: Mapping[str, CVResult],
    plots: Mapping[str, Mapping[str, str]],
    descriptions: Mapping[str, str],
    config: Mapping[str, Any],
) -> str:
    first = next(iter(results.values()))
    targets = list(dict.fromkeys(first.metrics["target"]))
    lines = [
        "# Cross-validation report: random and spatial validation",
        "",
        f"Models: {', '.join(first.fit_seconds)}. Targets: {', '.join(targets)}.",
        "",
        "The same models were cross-validated under each scheme below. Random K-fold tests "
        "samples whose neighbours were in the training folds; spatial schemes test whole "
        "areas or locations the model never saw, so they estimate the error of predicting "
        "new places. A spatial RMSE well above the random one means the random estimate "
        "is optimistic for mapping.",
        "",
    ]
    for validation, result in results.items():
        n_folds = result.fold_metrics["fold"].nunique()
        text = descriptions.get(validation, "")
        lines.append(f"- **{_title(validation)}** ({n_folds} folds){': ' + text if text else ''}")
    lines += [
        "",
        "Metrics are computed on the pooled out-of-fold predictions; samples without an "
        "observed value are left out (n counts the samples scored).",
    ]
    for target in targets:
        lines += ["", f"## {target}", "", "### Random vs spatial", ""]
        lines += _side_by_side(results, target)
        for validation, result in results.items():
            lines += ["", f"### {_title(validation)}", ""]
            lines += _markdown_table(result.metrics[result.metrics["target"] == target])
            plot = plots[validation].get(target)
            if plot:
                lines += ["", f"![Observed vs predicted {target}, {_title(validation)}]({plot})"]
    names = list(results)
    lines += ["", "## Fit time (seconds)", ""]
    lines += ["| model | " + " | ".join(_title(v) for v in names) + " |"]
    lines += ["|" + "---|" * (len(names) + 1)]
    for model in first.fit_seconds:
        cells = [f"{results[v].fit_seconds.get(model, math.nan):.2f}" for v in names]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += configuration_markdown(config)
    return "\n".join(lines)


def _tagged(frame: pd.DataFrame, validation: str, columns: tuple[str, ...]) -> pd.DataFrame:
    tagged = frame.loc[:, list(columns)].copy()
    tagged.insert(0, "validation", validation)
    return tagged


def write_validation_report(
    results: Mapping[str, CVResult],
    out_dir: str | os.PathLike[str],
    *,
    config: Mapping[str, Any],
    descriptions: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the results of several validation schemes side by side (random vs spatial CV).

    Files, as :func:`write_report` writes them plus a ``validation`` column or key:

    - ``metrics.json``: ``{"results": [{"validation", "model", "target", "n", "r2", ...}],
      "validations": {name: description}, "config": {...}, "fold_metrics": [{"validation",
      "model", "fold", ...}], "fit_seconds": {model: total}, "fit_seconds_by_validation":
      {validation: {model: seconds}}}``, undefined metrics as null;
    - ``predictions.csv``: ``validation`` then the usual prediction columns;
    - ``obs_pred_<target>.png`` for the first scheme, ``obs_pred_<target>_<scheme>.png``
      for the others;
    - ``report.md``: per target a model-by-scheme table of R² and RMSE, then each scheme's
      full metrics and plot.

    Args:
        results: Named results of :func:`cross_validate` with the same models and targets,
            the reference scheme (random K-fold) first, e.g. ``{"random": ...,
            "spatial_blocks": ..., "leave_location_out": ...}``.
        out_dir: Folder to write into; created if missing.
        config: The resolved run settings, stored in metrics.json and report.md.
        descriptions: One sentence per scheme saying how its folds were made.

    Returns:
        The paths written.

    Raises:
        ValueError: If ``results`` is empty or a name is not a plain word.
    """
    if not results:
        raise ValueError("results is empty; expected at least one named CVResult")
    for validation in results:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", validation):
            raise ValueError(f"validation names must be plain words; got {validation!r}")
    notes = dict(descriptions or {})
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    first = next(iter(results))
    targets = list(dict.fromkeys(results[first].metrics["target"]))
    stems = _safe_names(targets)

    metrics = pd.concat([_tagged(r.metrics, v, METRIC_COLUMNS) for v, r in results.items()])
    fold_metrics = pd.concat(
        [_tagged(r.fold_metrics, v, FOLD_METRIC_COLUMNS) for v, r in results.items()]
    )
    totals: dict[str, float] = {}
    for result in results.values():
        for model, seconds in result.fit_seconds.items():
            totals[model] = totals.get(model, 0.0) + seconds
    document = {
        "results": _records(metrics, ("validation", *METRIC_COLUMNS)),
        "validations": {v: notes.get(v, "") for v in results},
        "config": _jsonable(config),
        "fold_metrics": _records(fold_metrics, ("validation", *FOLD_METRIC_COLUMNS)),
        "fit_seconds": _jsonable(totals),
        "fit_seconds_by_validation": _jsonable({v: r.fit_seconds for v, r in results.items()}),
    }
    metrics_path = folder / "metrics.json"
    atomic_write_text(metrics_path, json.dumps(document, indent=2, allow_nan=False) + "\n")

    predictions_path = folder / "predictions.csv"
    predictions = pd.concat(
        [_tagged(r.predictions, v, PREDICTION_COLUMNS) for v, r in results.items()]
    )
    with atomic_path(predictions_path) as tmp:
        predictions.to_csv(tmp, index=False)

    written = [metrics_path, predictions_path]
    plots: dict[str, dict[str, str]] = {v: {} for v in results}
    for validation, result in results.items():
        suffix = "" if validation == first else f"_{validation}"
        for target in targets:
            if result.metrics[result.metrics["target"] == target].empty:
                continue
            plot_path = folder / f"obs_pred_{stems[target]}{suffix}.png"
            written.append(
                plot_observed_vs_predicted(result.predictions, result.metrics, target, plot_path)
            )
            plots[validation][target] = plot_path.name

    report_path = folder / "report.md"
    atomic_write_text(report_path, _validation_markdown(results, plots, notes, config))
    written.append(report_path)
    logger.debug("Wrote %d report files to %s", len(written), folder)
    return written
