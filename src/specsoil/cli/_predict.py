"""``specsoil predict``: apply a saved model to new spectra."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil._atomic import atomic_path
from specsoil._errors import SpecsoilError
from specsoil.cli._common import add_data_flags, console, library_filters, load_data
from specsoil.data import SpectraTable
from specsoil.export import OnnxModel
from specsoil.models import DEFAULT_DOMAIN_CONFIDENCE, SpectralModel

logger = logging.getLogger(__name__)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``predict``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "predict", help="predict properties for new spectra with a saved model"
    )
    parser.add_argument(
        "--model",
        required=True,
        help="model directory written by train, or a .onnx file written by export "
        "(needs only onnxruntime, not torch)",
    )
    add_data_flags(parser, required=True)
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument(
        "--interval",
        type=float,
        metavar="P",
        help="also write conformal prediction intervals with coverage P (e.g. 0.9) as "
        "<target>_lower and <target>_upper columns; needs a model trained with "
        "--conformal cv or split",
    )
    parser.add_argument(
        "--domain-confidence",
        type=float,
        default=DEFAULT_DOMAIN_CONFIDENCE,
        metavar="P",
        help="level of the Hotelling T² and Q limits of the applicability domain: a "
        "spectrum is flagged (in_domain false) when either exceeds its limit "
        f"(default {DEFAULT_DOMAIN_CONFIDENCE})",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil predict``."""
    # An exported model runs on onnxruntime alone; a model directory needs the full stack.
    model: SpectralModel | OnnxModel = (
        OnnxModel.load(args.model)
        if str(args.model).lower().endswith(".onnx")
        else SpectralModel.load(args.model)
    )
    if args.interval is not None and not 0.0 < args.interval < 1.0:
        raise SpecsoilError(f"--interval must be between 0 and 1 (e.g. 0.9); got {args.interval}")
    if isinstance(model, OnnxModel) and args.interval is not None:
        raise SpecsoilError(
            f"{args.model}: an ONNX export carries no conformal calibration, so --interval "
            "is not available; predict with the model directory it was exported from"
        )
    loaded = load_data(
        args.data,
        spectra_kind=args.spectra_kind,
        drop_invalid=args.drop_invalid,
        **library_filters(args),
    )
    table = loaded.table
    lower: NDArray[np.float64] | None = None
    upper: NDArray[np.float64] | None = None
    if isinstance(model, SpectralModel) and args.interval is not None:
        predictions, lower, upper = model.predict_interval(table, args.interval)
    else:
        predictions = model.predict(table)
    frame = pd.DataFrame({"sample_id": table.sample_ids.to_numpy()})
    for j, target in enumerate(model.targets):
        frame[target] = predictions[:, j]
        if lower is not None and upper is not None:
            frame[f"{target}_lower"] = lower[:, j]
            frame[f"{target}_upper"] = upper[:, j]
    note = _add_domain_columns(frame, model, table, args.domain_confidence)
    out = Path(args.out)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    interval = f" with {args.interval:g} intervals" if lower is not None else ""
    console().print(
        f"predicted {', '.join(model.targets)}{interval} for {len(frame)} spectra with "
        f"{model.name!r}; {note}; written to {out}"
    )
    return 0


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
