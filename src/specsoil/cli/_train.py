"""``specsoil train``: fit one model on every sample and save it for ``predict``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.pipeline import Pipeline

from specsoil._atomic import atomic_write_text
from specsoil.cli._common import add_run_flags, console, load_run, resolve_models
from specsoil.data import SpectraTable
from specsoil.models import SpectralModel
from specsoil.preprocess import make_preprocessing

DEFAULT_MODEL = "plsr"


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``train``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "train", help="fit a model on all samples and save it to a model directory"
    )
    add_run_flags(parser)
    parser.add_argument("--model", help=f"recipe or config model name (default {DEFAULT_MODEL})")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil train``."""
    run_ = load_run(args)
    config, seed, loaded, targets = run_.config, run_.seed, run_.loaded, run_.targets
    name = args.model or (next(iter(config.models)) if config.models else DEFAULT_MODEL)
    (spec,) = resolve_models([name], config)
    model = SpectralModel.fit(
        loaded.table,
        targets,
        recipe=spec.recipe,
        name=spec.name,
        preprocessing=spec.preprocessing,
        params=spec.params,
        random_state=seed,
    )
    out = model.save(Path(args.out))
    _write_cnn_pictures(model, loaded.table, out)
    resolved = {"data": loaded.table.source, "targets": targets, "seed": seed, "model": name}
    atomic_write_text(out / "config.resolved.yaml", yaml.safe_dump(resolved, sort_keys=False))
    console().print(
        f"trained {spec.name!r} ({spec.recipe}) on {loaded.table.n_samples} samples for "
        f"{', '.join(targets)}; saved to {out}/"
    )
    return 0


def _write_cnn_pictures(model: SpectralModel, table: SpectraTable, out: Path) -> None:
    """For a CNN: training curves and the feature maps of the first spectrum, as PNGs."""
    from specsoil.train import CNNRegressor, plot_feature_maps, plot_training_curves

    transforms, final = model.pipeline[:-1], model.pipeline[-1]
    if isinstance(final, Pipeline):  # 2D recipes: (spectrogram, network)
        transforms = Pipeline([*transforms.steps, *final[:-1].steps])
        final = final[-1]
    if not isinstance(final, CNNRegressor):
        return
    title = f"{model.name} ({model.recipe})"
    plot_training_curves(
        final.history_, out / "training_curves.png", best_epoch=final.best_epoch_, title=title
    )
    _, grid = make_preprocessing(model.preprocessing, model.wavelengths)
    if transforms.steps and hasattr(transforms[-1], "frame_positions_"):
        # Spectrogram frames are drawn at the wavelength of their centre band; frames
        # centred in the end padding continue the grid's last step.
        centres = transforms[-1].frame_positions_
        last = grid.size - 1
        beyond = grid[-1] + (centres - last) * (grid[-1] - grid[-2])
        grid = np.where(centres > last, beyond, np.interp(centres, np.arange(grid.size), grid))
    first = np.asarray(transforms.transform(model.align(table)[:1]))[0]
    plot_feature_maps(final, first, grid, out / "feature_maps.png")
