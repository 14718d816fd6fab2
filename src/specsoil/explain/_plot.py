"""Importance curves drawn over the mean spectrum, with the known soil bands marked."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from specsoil._atomic import atomic_path
from specsoil._errors import SpecsoilError
from specsoil.explain._bands import SOIL_BANDS
from specsoil.explain._importance import (
    METHOD_COEFFICIENT,
    METHOD_COEFFICIENT_PREPROCESSED,
    METHOD_VIP,
    Explanation,
)

_LABELS = {
    METHOD_VIP: "VIP",
    METHOD_COEFFICIENT: "PLS coefficient",
    METHOD_COEFFICIENT_PREPROCESSED: "PLS coefficient (preprocessed)",
    "integrated_gradients": "mean |integrated gradients|",
    "permutation": "RMSE increase when permuted",
}


def plot_importance(explanation: Explanation, target: str, path: str | Path) -> Path:
    """Write a PNG with one panel per method: importance (mean ± sd over folds) and spectrum.

    Each panel shows the importance on the left axis (the fold mean with a ±1 sd band and
    the saved model's curve dashed when there are folds), the data's mean absorbance in
    grey on the right axis, and a labelled span at each known soil absorption region
    inside the plotted range.

    Args:
        explanation: The result of :func:`specsoil.explain.explain_model`.
        target: One of ``explanation.targets``.
        path: PNG file to write (atomically).

    Returns:
        The path written.

    Raises:
        SpecsoilError: If ``target`` was not explained.
    """
    curves = explanation.curves_for(target)
    if not curves:
        raise SpecsoilError(f"no importance for target {target!r}; have {explanation.targets}")
    wavelengths = explanation.wavelengths
    figure = Figure(figsize=(9.0, 3.2 * len(curves)), layout="constrained")
    FigureCanvasAgg(figure)  # attaches the Agg canvas to this figure only: no pyplot state
    axes = figure.subplots(len(curves), 1, sharex=True, squeeze=False)[:, 0]
    lo, hi = float(wavelengths[0]), float(wavelengths[-1])
    for ax, curve in zip(axes, curves, strict=True):
        spectrum_ax = ax.twinx()
        spectrum_ax.plot(wavelengths, explanation.mean_spectrum, color="0.6", lw=1.0)
        spectrum_ax.set_ylabel("mean absorbance", color="0.45")
        for band in SOIL_BANDS:
            if band.high_nm < lo or band.low_nm > hi:
                continue
            ax.axvspan(band.low_nm, band.high_nm, color="tab:orange", alpha=0.15, lw=0)
            ax.annotate(
                band.label,
                xy=(max(band.centre_nm, lo), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, -3),
                textcoords="offset points",
                rotation=90,
                va="top",
                ha="center",
                fontsize=7,
                color="tab:brown",
            )
        mean, sd = curve.mean, curve.sd
        if explanation.n_folds:
            ax.fill_between(wavelengths, mean - sd, mean + sd, color="tab:blue", alpha=0.25, lw=0)
            ax.plot(wavelengths, curve.model, color="tab:blue", lw=0.8, ls="--")
        ax.plot(wavelengths, mean, color="tab:blue", lw=1.5)
        if curve.method == METHOD_VIP:
            ax.axhline(1.0, color="0.3", lw=0.8, ls=":")
        elif curve.method in (METHOD_COEFFICIENT, METHOD_COEFFICIENT_PREPROCESSED):
            ax.axhline(0.0, color="0.3", lw=0.8, ls=":")
        ax.set_ylabel(_LABELS.get(curve.method, curve.method), color="tab:blue")
        # The importance line drawn above the spectrum's axis.
        ax.set_zorder(spectrum_ax.get_zorder() + 1)
        ax.patch.set_visible(False)
        spread = (
            f"mean ± sd over {explanation.n_folds} CV refits (dashed: saved model)"
            if explanation.n_folds
            else "saved model"
        )
        ax.set_title(f"{target}: {_LABELS.get(curve.method, curve.method)}, {spread}", fontsize=9)
    axes[-1].set_xlabel("wavelength (nm)")
    axes[-1].set_xlim(lo, hi)
    figure.suptitle(f"{explanation.model_name} ({explanation.recipe})", fontsize=10)
    final = Path(path)
    with atomic_path(final) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return final
