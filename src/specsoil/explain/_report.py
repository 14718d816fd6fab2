"""The ``explain`` output folder: importance table, one plot per target and a summary."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from specsoil._atomic import atomic_directory
from specsoil.explain._bands import SOIL_BANDS
from specsoil.explain._importance import Explanation, top_regions
from specsoil.explain._plot import plot_importance

IMPORTANCE_CSV = "importance.csv"
SUMMARY_MD = "explain.md"
CONFIG_YAML = "config.resolved.yaml"


def plot_filename(target: str) -> str:
    """``importance_<target>.png``, with characters unsafe in file names replaced by ``_``."""
    return f"importance_{re.sub(r'[^A-Za-z0-9_.-]+', '_', target)}.png"


def write_explanation(
    explanation: Explanation,
    directory: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``importance.csv``, ``importance_<target>.png`` and ``explain.md`` atomically.

    ``importance.csv`` has one row per (target, method, wavelength) with the columns
    ``wavelength, target, method, mean, sd, model, fold_1..fold_K`` (mean and sd over the
    CV refits; without refits, mean is the saved model's value and sd is empty).

    Args:
        explanation: The result of :func:`specsoil.explain.explain_model`.
        directory: Output folder; an existing one is replaced only when it is empty or a
            specsoil explain folder holding nothing but what specsoil wrote.
        config: The settings used, also written as ``config.resolved.yaml`` when given.

    Returns:
        The folder written.

    Raises:
        SpecsoilError: If ``directory`` exists and may not be replaced.
    """
    final = Path(directory)
    with atomic_directory(final, kind="explain") as tmp:
        explanation.to_frame().to_csv(tmp / IMPORTANCE_CSV, index=False)
        for target in explanation.targets:
            plot_importance(explanation, target, tmp / plot_filename(target))
        (tmp / SUMMARY_MD).write_text(summary_markdown(explanation), encoding="utf-8")
        if config is not None:
            text = yaml.safe_dump(dict(config), sort_keys=False)
            (tmp / CONFIG_YAML).write_text(text, encoding="utf-8")
    return final


def _member_weights_markdown(weights: Mapping[str, Mapping[str, float]]) -> list[str]:
    """A stack's member weights per target: which member earns its place."""
    if not weights:
        return []
    members = list(next(iter(weights.values())))
    lines = [
        "",
        "## Stack member weights",
        "",
        "Non-negative weights learnt on the members' inner-CV predictions; the importance "
        "below is that of the weighted sum.",
        "",
        "| target | " + " | ".join(members) + " |",
        "|---|" + "---:|" * len(members),
    ]
    for target, by_member in weights.items():
        lines.append(f"| {target} | " + " | ".join(f"{by_member[m]:.2f}" for m in members) + " |")
    return lines


def summary_markdown(explanation: Explanation, *, n_regions: int = 5) -> str:
    """A short Markdown summary: methods, and the top wavelength regions per target."""
    w = explanation.wavelengths
    spread = (
        f"mean over {explanation.n_folds} CV refits of the recipe on the data (± sd)"
        if explanation.n_folds
        else "the saved model only (no CV refits)"
    )
    lines = [
        f"# Wavelength importance of {explanation.model_name} ({explanation.recipe})",
        "",
        f"{explanation.n_samples} spectra; importance on the model grid of {w.size} bands, "
        f"{w[0]:g}-{w[-1]:g} nm (the grid after the pipeline's resampling); {spread}.",
        "",
        "## Methods",
        "",
    ]
    lines += [f"- `{method}`: {text}" for method, text in explanation.descriptions.items()]
    lines += _member_weights_markdown(explanation.member_weights)
    for target in explanation.targets:
        lines += ["", f"## {target}", "", f"Plot: `{plot_filename(target)}`.", ""]
        for curve in explanation.curves_for(target):
            regions = top_regions(w, curve.mean, n=n_regions)
            lines += [f"Top regions by `{curve.method}` (|mean|, highest first):", ""]
            if not regions:
                lines += ["- none: the importance is zero everywhere", ""]
                continue
            for region in regions:
                near = f" — near {', '.join(region.bands)}" if region.bands else ""
                lines.append(
                    f"- {region.low_nm:g}-{region.high_nm:g} nm, peak {region.peak:.3g} at "
                    f"{region.peak_nm:g} nm{near}"
                )
            lines.append("")
    lines += ["## Known soil bands marked on the plots", ""]
    lines += [
        f"- {b.low_nm:g}-{b.high_nm:g} nm, {b.label}: {b.assignment} ({b.reference})"
        for b in SOIL_BANDS
    ]
    return "\n".join(lines).rstrip() + "\n"
