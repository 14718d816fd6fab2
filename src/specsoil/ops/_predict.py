"""The ``predict`` operation: apply a saved model to new spectra and write a CSV."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import Field

from specsoil import _output_plan
from specsoil._atomic import atomic_path
from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable
from specsoil.export import OnnxModel
from specsoil.models import DEFAULT_DOMAIN_CONFIDENCE, SpectralModel, check_clip, describe_clip
from specsoil.ops._inputs import DataSource, OutputRequest, load_source
from specsoil.ops._progress import ProgressCallback, Stages

logger = logging.getLogger(__name__)

_STAGES = ("load", "predict", "write")


class PredictRequest(OutputRequest):
    """The model, the spectra to predict, and the CSV to write.

    Attributes:
        model: A model folder written by train, or a ``.onnx`` file written by export.
        source: The spectra to predict.
        interval: Also give conformal intervals with this coverage (0 < P < 1).
        domain_confidence: Level of the applicability-domain limits (Hotelling T², Q).
        clip: ``{target: (low, high)}`` replacing the model's stored bounds for those
            targets; ``(None, None)`` removes them.
    """

    model: str
    source: DataSource
    interval: float | None = None
    domain_confidence: float = DEFAULT_DOMAIN_CONFIDENCE
    clip: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)


@dataclass(frozen=True)
class PredictOutcome:
    """The predictions and the file holding them.

    Attributes:
        out: The CSV written.
        files: ``(out,)``.
        predictions: One row per spectrum: ``sample_id``, each target, its interval ends
            with ``interval``, and ``in_domain``, ``hotelling_t2``, ``q_residual`` where the
            model has an applicability domain.
        summary: One line: what was predicted, how, and how many spectra lie outside the
            applicability domain.
    """

    out: Path
    files: tuple[Path, ...]
    predictions: pd.DataFrame
    summary: str


def run_predict(
    request: PredictRequest, *, progress: ProgressCallback | None = None
) -> PredictOutcome:
    """Predict the model's targets for the spectra and write the CSV atomically.

    Args:
        request: What to predict; the output file is checked before any work.
        progress: Called after loading, predicting and writing.

    Raises:
        SpecsoilError: For bad input or an output that may not be written.
    """
    stages = Stages(progress, _STAGES)
    out = _output_plan.plan_output_file(
        request.out,
        inputs=[request.model, request.source.data, *request.other_inputs],
        overwrite=request.overwrite,
    )
    # An exported model runs on onnxruntime alone; a model directory needs the full stack.
    model: SpectralModel | OnnxModel = (
        OnnxModel.load(request.model)
        if str(request.model).lower().endswith(".onnx")
        else SpectralModel.load(request.model)
    )
    interval = request.interval
    if interval is not None and not 0.0 < interval < 1.0:
        raise SpecsoilError(f"--interval must be between 0 and 1 (e.g. 0.9); got {interval}")
    if isinstance(model, OnnxModel) and interval is not None:
        raise SpecsoilError(
            f"{request.model}: an ONNX export carries no conformal calibration, so --interval "
            "is not available; predict with the model directory it was exported from"
        )
    if request.clip:
        check_clip(request.clip, model.targets, source="--clip")
        # Open pairs are dropped here, so (None, None) removes a stored bound.
        merged = check_clip({**model.clip, **request.clip}, model.targets, source="--clip")
        model = dataclasses.replace(model, clip=merged)
    table = load_source(request.source).table
    stages.finished("load")
    lower: NDArray[np.float64] | None = None
    upper: NDArray[np.float64] | None = None
    if isinstance(model, SpectralModel) and interval is not None:
        predictions, lower, upper = model.predict_interval(table, interval)
    else:
        predictions = model.predict(table)
    frame = pd.DataFrame({"sample_id": table.sample_ids.to_numpy()})
    for j, target in enumerate(model.targets):
        frame[target] = predictions[:, j]
        if lower is not None and upper is not None:
            frame[f"{target}_lower"] = lower[:, j]
            frame[f"{target}_upper"] = upper[:, j]
    note = _add_domain_columns(frame, model, table, request.domain_confidence)
    stages.finished("predict")
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    stages.finished("write")
    shown = f" with {interval:g} intervals" if lower is not None else ""
    if model.clip:
        shown += f", clipped to {describe_clip(model.clip)}"
    summary = (
        f"predicted {', '.join(model.targets)}{shown} for {len(frame)} spectra with "
        f"{model.name!r}; {note}"
    )
    return PredictOutcome(out=out, files=(out,), predictions=frame, summary=summary)


def _add_domain_columns(
    frame: pd.DataFrame, model: SpectralModel | OnnxModel, table: SpectraTable, confidence: float
) -> str:
    """Add ``in_domain``, ``hotelling_t2`` and ``q_residual`` where the model has a domain.

    Returns:
        A short note on the outcome for the closing message.
    """
    if isinstance(model, OnnxModel):
        logger.warning(
            "an ONNX export carries no applicability domain: no in_domain column (predict "
            "with the model directory it was exported from to get one)"
        )
        return "no applicability domain"
    if model.domain is None:
        logger.warning(
            "model %r carries no applicability domain (streamed, fine-tuned or trained by an "
            "older specsoil): no in_domain column; retrain with specsoil train to get one",
            model.name,
        )
        return "no applicability domain"
    assessment = model.assess_domain(table, confidence=confidence)
    frame["in_domain"] = assessment.in_domain
    frame["hotelling_t2"] = assessment.hotelling_t2
    frame["q_residual"] = assessment.q_residual
    outside = int((~assessment.in_domain).sum())
    return f"{outside} outside the applicability domain"
