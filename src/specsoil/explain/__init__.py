"""Interpretation: which wavelengths a fitted model relies on.

PLS VIP scores and coefficients for PLSR, integrated gradients (captum) for CNNs, and
window permutation importance for every other model, each with its spread across CV refits,
plotted over the mean spectrum with the known soil absorption bands marked. Importing this
package does not import torch or captum.
"""

from specsoil.explain._bands import SOIL_BANDS, SoilBand, bands_near
from specsoil.explain._importance import (
    METHOD_COEFFICIENT,
    METHOD_COEFFICIENT_PREPROCESSED,
    METHOD_INTEGRATED_GRADIENTS,
    METHOD_PERMUTATION,
    METHOD_VIP,
    Explanation,
    ImportanceCurve,
    ImportantRegion,
    explain_model,
    method_for,
    top_regions,
    vip_scores,
)
from specsoil.explain._plot import plot_importance
from specsoil.explain._report import summary_markdown, write_explanation

__all__ = [
    "METHOD_COEFFICIENT",
    "METHOD_COEFFICIENT_PREPROCESSED",
    "METHOD_INTEGRATED_GRADIENTS",
    "METHOD_PERMUTATION",
    "METHOD_VIP",
    "SOIL_BANDS",
    "Explanation",
    "ImportanceCurve",
    "ImportantRegion",
    "SoilBand",
    "bands_near",
    "explain_model",
    "method_for",
    "plot_importance",
    "summary_markdown",
    "top_regions",
    "vip_scores",
    "write_explanation",
]
