"""The ``explain`` operation: which wavelengths a saved model relies on, with their spread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from specsoil import _output_plan
from specsoil._errors import SpecsoilError
from specsoil.explain import Explanation, explain_model, top_regions, write_explanation
from specsoil.models import SpectralModel
from specsoil.ops._inputs import DataSource, OutputRequest, load_source, written_files
from specsoil.ops._progress import ProgressCallback, Stages

DEFAULT_FOLDS = 5
_STAGES = ("load", "explain", "write")


class ExplainRequest(OutputRequest):
    """The model to explain, the spectra to explain it on, and the report folder.

    Attributes:
        model: A model folder written by train.
        source: Spectra (with the model's target columns when ``folds`` > 0).
        folds: Refit the recipe on K CV folds for the spread; 0 explains the saved model only.
        window_nm: Wavelength window permuted together by permutation importance.
        repeats: Permutations per window.
        steps: Integrated-gradients steps.
        seed: Random seed.
    """

    model: str
    source: DataSource
    folds: int = DEFAULT_FOLDS
    window_nm: float = 50.0
    repeats: int = 3
    steps: int = 32
    seed: int = 0


@dataclass(frozen=True)
class ExplainOutcome:
    """The importance curves and the folder holding them.

    Attributes:
        out: The report folder (importance.csv, one PNG per target, explain.md).
        files: Every file written there.
        model_name: The explained model's name.
        explanation: Importance per target and method over the wavelength grid.
        peaks_nm: Per curve (``"target (method)"``), the peak wavelengths of its top three
            regions.
    """

    out: Path
    files: tuple[Path, ...]
    model_name: str
    explanation: Explanation
    peaks_nm: dict[str, list[float]]


def run_explain(
    request: ExplainRequest, *, progress: ProgressCallback | None = None
) -> ExplainOutcome:
    """Compute the model's wavelength importance and write the report folder atomically.

    Args:
        request: What to explain; the output folder is checked before any work.
        progress: Called after loading, explaining and writing.

    Raises:
        SpecsoilError: For bad input or an output that may not be written.
    """
    stages = Stages(progress, _STAGES)
    if request.folds < 0 or request.folds == 1:
        raise SpecsoilError(
            f"--folds must be 0 (the saved model only) or at least 2; got {request.folds}"
        )
    out = _output_plan.plan_output_folder(
        request.out,
        kind="explain",
        inputs=[request.model, request.source.data, *request.other_inputs],
        overwrite=request.overwrite,
    )
    model = SpectralModel.load(request.model)
    table = load_source(request.source).table
    stages.finished("load")
    explanation = explain_model(
        model,
        table,
        folds=request.folds,
        window_nm=request.window_nm,
        n_repeats=request.repeats,
        n_steps=request.steps,
        random_state=request.seed,
    )
    stages.finished("explain")
    resolved = {
        "model": str(request.model),
        "data": table.source,
        "folds": request.folds,
        "window_nm": request.window_nm,
        "repeats": request.repeats,
        "steps": request.steps,
        "seed": request.seed,
    }
    write_explanation(explanation, out, config=resolved)
    stages.finished("write")
    peaks = {
        f"{curve.target} ({curve.method})": [
            r.peak_nm for r in top_regions(explanation.wavelengths, curve.mean, n=3)
        ]
        for curve in explanation.curves
    }
    return ExplainOutcome(
        out=out,
        files=written_files(out),
        model_name=model.name,
        explanation=explanation,
        peaks_nm=peaks,
    )
