"""``specsoil train``: fit one model on every sample and save it for ``predict``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.pipeline import Pipeline

from specsoil._errors import SpecsoilError
from specsoil.cli._clip import add_clip_flag, parse_clip
from specsoil.cli._common import (
    add_output_flags,
    add_run_flags,
    console,
    load_run,
    plan_output_folder,
    resolve_models,
    run_inputs,
)
from specsoil.config import load_config
from specsoil.data import ParquetSpectraSource, SpectraTable
from specsoil.models import (
    DEFAULT_CALIBRATION_FRACTION,
    DEFAULT_CONFORMAL_FOLDS,
    ConformalOption,
    SpectralModel,
    fit_model_stream,
)
from specsoil.preprocess import make_preprocessing

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "plsr"
# Only the CNN recipes learn from streamed batches.
DEFAULT_STREAM_MODEL = "cnn1d"
CONFORMAL_CHOICES = ("auto", "cv", "split", "none")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``train``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "train", help="fit a model on all samples and save it to a model directory"
    )
    add_run_flags(parser)
    parser.add_argument("--model", help=f"recipe or config model name (default {DEFAULT_MODEL})")
    add_output_flags(parser, help="model directory to write")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="train a CNN recipe on a Parquet file (or a directory of Parquet parts) by "
        "reading one row group at a time, for tables larger than memory (default model "
        f"{DEFAULT_STREAM_MODEL})",
    )
    parser.add_argument(
        "--conformal",
        choices=CONFORMAL_CHOICES,
        default="auto",
        help="calibrate prediction intervals for predict --interval: 'cv' is CV+ (the model "
        "is fitted on every sample, plus --conformal-folds fold models kept for the "
        "intervals: K extra fits, which for a CNN means K extra trainings), 'split' holds "
        "out --calibration-fraction of the samples to calibrate on (the model is fitted on "
        "the rest), 'none' skips it; 'auto' (default) is cv for the classic recipes and "
        "none for CNN recipes (choose cv or split for them explicitly)",
    )
    parser.add_argument(
        "--conformal-folds",
        type=int,
        default=DEFAULT_CONFORMAL_FOLDS,
        metavar="K",
        help=f"folds for --conformal cv (default {DEFAULT_CONFORMAL_FOLDS})",
    )
    parser.add_argument(
        "--calibration-fraction",
        type=float,
        default=DEFAULT_CALIBRATION_FRACTION,
        metavar="F",
        help="share of samples held out for --conformal split (default "
        f"{DEFAULT_CALIBRATION_FRACTION})",
    )
    add_clip_flag(parser)
    parser.set_defaults(func=run)
    return parser


def _conformal_option(choice: str) -> ConformalOption | None:
    """The CLI's --conformal choice as SpectralModel.fit's ``conformal`` argument."""
    options: dict[str, ConformalOption | None] = {
        "auto": "auto",
        "cv": "cv+",
        "split": "split",
        "none": None,
    }
    return options[choice]


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil train``."""
    out = plan_output_folder(args, "model", *run_inputs(args))
    if args.stream:
        return _run_stream(args, out)
    run_ = load_run(args)
    config, seed, loaded, targets = run_.config, run_.seed, run_.loaded, run_.targets
    name = args.model or (next(iter(config.models)) if config.models else DEFAULT_MODEL)
    (spec,) = resolve_models([name], config)
    clip = parse_clip(args.clip, targets)
    model = SpectralModel.fit(
        loaded.table,
        targets,
        recipe=spec.recipe,
        name=spec.name,
        preprocessing=spec.preprocessing,
        params=spec.params,
        random_state=seed,
        conformal=_conformal_option(args.conformal),
        conformal_folds=args.conformal_folds,
        calibration_fraction=args.calibration_fraction,
        clip=clip,
    )
    resolved = {
        "data": loaded.table.source,
        "targets": targets,
        "seed": seed,
        "model": name,
        "conformal": model.conformal.method if model.conformal is not None else None,
    }
    save_model_folder(model, out, loaded.table, resolved)
    console().print(
        f"trained {spec.name!r} ({spec.recipe}) on {loaded.table.n_samples} samples for "
        f"{', '.join(targets)}{_calibration_note(model)}; saved to {args.out}/"
    )
    return 0


def _calibration_note(model: SpectralModel) -> str:
    """How the intervals were calibrated, for the closing message."""
    calibration = model.conformal
    if calibration is None:
        return " (no prediction intervals)"
    if calibration.method == "cv+":
        return f" with CV+ intervals ({calibration.n_folds} fold models)"
    held = calibration.residuals.shape[0]
    return f" with split-conformal intervals (fitted on all but {held} held-out samples)"


def save_model_folder(
    model: SpectralModel, out: Path, table: SpectraTable, resolved: dict[str, Any]
) -> None:
    """Save ``model`` to ``out`` complete: its pictures and run settings appear with it."""

    def add_pictures_and_config(folder: Path) -> None:
        _write_cnn_pictures(model, table, folder)
        text = yaml.safe_dump(resolved, sort_keys=False)
        (folder / "config.resolved.yaml").write_text(text, encoding="utf-8")

    model.save(out, extras=add_pictures_and_config)


def _run_stream(args: argparse.Namespace, out: Path) -> int:
    """``specsoil train --stream``: the table is never read whole, only row group by group."""
    config = load_config(args.config)
    data = args.data or config.data
    # A directory is read as Parquet parts (ParquetSpectraSource checks them).
    if data is None or not (
        Path(data).is_dir() or Path(data).suffix.lower() in (".parquet", ".pq")
    ):
        raise SpecsoilError(
            f"--stream reads Parquet files (or a directory of Parquet parts) only; got "
            f"{str(data or 'the bundled dataset')!r}. Convert the table first: specsoil "
            "convert --data FILE --out FILE.parquet"
        )
    if args.conformal in ("cv", "split"):
        raise SpecsoilError(
            f"--conformal {args.conformal} does not work with --stream (the calibration "
            "rows are not held); train without --stream for prediction intervals"
        )
    if args.drop_invalid or config.drop_invalid:
        raise SpecsoilError(
            "--drop-invalid does not work with --stream (rows are not held to drop); drop "
            "them once when converting: specsoil convert --drop-invalid"
        )
    targets = list(args.target or config.targets or [])
    if not targets:
        raise SpecsoilError(f"{data}: say which property to model with --target")
    seed = args.seed if args.seed is not None else config.seed
    name = args.model or (next(iter(config.models)) if config.models else DEFAULT_STREAM_MODEL)
    (spec,) = resolve_models([name], config)
    clip = parse_clip(args.clip, targets)
    source = ParquetSpectraSource(
        data, targets=targets, spectra_kind=args.spectra_kind or config.spectra_kind
    )
    w = source.wavelengths
    logger.info(
        "spectra: %d samples x %d bands, %g-%g nm, in %d row groups (streamed); %s (%s)",
        source.n_rows,
        w.size,
        w[0],
        w[-1],
        source.n_row_groups,
        source.spectra_kind,
        source.kind_reason,
    )
    model = fit_model_stream(
        source,
        recipe=spec.recipe,
        name=spec.name,
        preprocessing=spec.preprocessing,
        params=spec.params,
        random_state=seed,
    )
    model.clip = clip
    first = next(source.iter_tables([0]))  # feature maps are drawn for its first spectrum
    resolved = {"data": str(data), "targets": targets, "seed": seed, "model": name, "stream": True}
    save_model_folder(model, out, first, resolved)
    console().print(
        f"trained {spec.name!r} ({spec.recipe}) on {source.n_rows} samples streamed from "
        f"{source.n_row_groups} row groups for {', '.join(targets)}; saved to {args.out}/"
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
