"""``specsoil predict``: apply a saved model to new spectra."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from specsoil._atomic import atomic_path
from specsoil.cli._common import add_data_flags, console, load_data
from specsoil.export import OnnxModel
from specsoil.models import SpectralModel


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
    loaded = load_data(args.data, spectra_kind=args.spectra_kind, drop_invalid=args.drop_invalid)
    predictions = model.predict(loaded.table)
    frame = pd.DataFrame(predictions, columns=model.targets)
    frame.insert(0, "sample_id", loaded.table.sample_ids.to_numpy())
    out = Path(args.out)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    console().print(
        f"predicted {', '.join(model.targets)} for {len(frame)} spectra with "
        f"{model.name!r}; written to {out}"
    )
    return 0
