"""``specsoil predict``: apply a saved model to new spectra."""

from __future__ import annotations

import argparse
from typing import Any

from specsoil.cli._clip import add_clip_flag, parse_clip
from specsoil.cli._common import add_data_flags, add_output_flags, console, data_source
from specsoil.models import DEFAULT_DOMAIN_CONFIDENCE
from specsoil.ops import PredictRequest, run_predict


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
    add_output_flags(parser, help="CSV file to write")
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
    add_clip_flag(parser, at_predict=True)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil predict``."""
    request = PredictRequest(
        model=args.model,
        source=data_source(args),
        interval=args.interval,
        domain_confidence=args.domain_confidence,
        clip=parse_clip(args.clip, allow_open=True),
        out=args.out,
        overwrite=args.overwrite,
    )
    outcome = run_predict(request)
    console().print(f"{outcome.summary}; written to {args.out}")
    return 0
