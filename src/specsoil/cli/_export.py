"""``specsoil export``: write a saved CNN (or PLSR) model with its preprocessing as ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from specsoil._errors import SpecsoilError
from specsoil.cli._common import add_output_flags, console, plan_output_file
from specsoil.export import OnnxModel, export_onnx
from specsoil.models import SpectralModel
from specsoil.ops import load_data

# Largest difference between onnxruntime and PyTorch predictions accepted by --check-data,
# in target standard deviations: float32 networks agree to ~1e-6 of that.
CHECK_TOLERANCE = 1e-4


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``export``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "export",
        help="export a saved CNN (or plsr) model with its preprocessing to ONNX, to predict "
        "without torch",
    )
    parser.add_argument("--model", required=True, help="model directory written by train")
    parser.add_argument(
        "--format", choices=("onnx",), default="onnx", help="output format (default onnx)"
    )
    add_output_flags(parser, help=".onnx file to write")
    parser.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's)")
    parser.add_argument(
        "--check-data",
        help="spectra table or bundled dataset name: check that onnxruntime and PyTorch "
        f"predict the same on it (within {CHECK_TOLERANCE:g} target sd)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil export``."""
    out = Path(args.out)
    if out.suffix.lower() != ".onnx":
        raise SpecsoilError(f"{out}: the output of --format onnx must end in .onnx")
    final = plan_output_file(args, args.model, args.check_data)
    model = SpectralModel.load(args.model)
    export_onnx(model, final, opset=args.opset)
    message = (
        f"exported {model.name!r} ({model.recipe}; {model.wavelengths.size} bands -> "
        f"{', '.join(model.targets)}) to {out}"
    )
    if args.check_data:
        table = load_data(args.check_data).table
        worst = _max_difference(model, OnnxModel.load(final), table)
        if not worst <= CHECK_TOLERANCE:
            raise SpecsoilError(
                f"{out}: onnxruntime and PyTorch differ by {worst:.3g} target sd on "
                f"{table.source} (more than {CHECK_TOLERANCE:g}); please report this"
            )
        message += f"; on {table.n_samples} spectra it agrees with PyTorch to {worst:.1g} sd"
    console().print(message)
    return 0


def _max_difference(model: SpectralModel, exported: OnnxModel, table: Any) -> float:
    """Largest |onnxruntime - PyTorch| prediction over all spectra, in target sd units."""
    reference = model.predict(table)
    predicted = exported.predict(table)
    # The training data's sd of each target (manifest), else the spread of the predictions.
    summary = model.training.get("targets", {})
    sds = [summary.get(name, {}).get("sd") for name in model.targets]
    scale = np.array(
        [sd if sd else np.nanstd(reference[:, j]) for j, sd in enumerate(sds)], dtype=np.float64
    )
    scale = np.where(scale > 0, scale, 1.0)
    return float(np.max(np.abs(predicted - reference) / scale))
