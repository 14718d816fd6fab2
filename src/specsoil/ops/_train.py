"""The ``train`` operation: fit one model on every sample and save its folder complete."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import Field
from sklearn.pipeline import Pipeline

from specsoil import _output_plan
from specsoil._errors import SpecsoilError
from specsoil.config import ModelConfig
from specsoil.data import ParquetSpectraSource, SpectraTable
from specsoil.models import (
    DEFAULT_CALIBRATION_FRACTION,
    DEFAULT_CONFORMAL_FOLDS,
    ConformalOption,
    SpectralModel,
    check_clip,
    fit_model_stream,
)
from specsoil.ops._inputs import (
    DataSource,
    OutputRequest,
    load_source,
    resolve_models,
    resolve_targets,
    written_files,
)
from specsoil.ops._progress import ProgressCallback, Stages
from specsoil.preprocess import make_preprocessing

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "plsr"
# Only the CNN recipes learn from streamed batches.
DEFAULT_STREAM_MODEL = "cnn1d"
ClipRequest = dict[str, tuple[float | None, float | None]]
_CONFORMAL: dict[str, ConformalOption | None] = {
    "auto": "auto",
    "cv": "cv+",
    "split": "split",
    "none": None,
}
_STAGES = ("load", "fit", "save")


class TrainRequest(OutputRequest):
    """The model to fit, on which data, with which intervals, and its folder.

    Attributes:
        source: The spectra and lab values (a Parquet file or folder with ``stream``).
        targets: Property columns; empty means the dataset's own targets.
        model: Recipe or variant name; None is the first variant, else ``plsr``
            (``cnn1d`` with ``stream``).
        variants: Named models (a recipe plus preprocessing and parameters).
        seed: Random seed.
        stream: Fit a CNN recipe on a Parquet source one row group at a time.
        conformal: Interval calibration: ``cv`` (CV+), ``split``, ``none``, or ``auto`` (cv
            for classic recipes, none for CNNs).
        conformal_folds: Folds of CV+.
        calibration_fraction: Share of samples held out for split conformal.
        clip: ``{target: (low, high)}`` bounds stored with the model; either side None.
    """

    source: DataSource = DataSource()
    targets: tuple[str, ...] = ()
    model: str | None = None
    variants: dict[str, ModelConfig] = Field(default_factory=dict)
    seed: int = 0
    stream: bool = False
    conformal: Literal["auto", "cv", "split", "none"] = "auto"
    conformal_folds: int = DEFAULT_CONFORMAL_FOLDS
    calibration_fraction: float = DEFAULT_CALIBRATION_FRACTION
    clip: ClipRequest = Field(default_factory=dict)


@dataclass(frozen=True)
class TrainOutcome:
    """A saved model and what to tell about it.

    Attributes:
        out: The model folder.
        files: Every file written there (pictures and settings included).
        model: The fitted model.
        summary: One line: what was trained on what, and its intervals.
    """

    out: Path
    files: tuple[Path, ...]
    model: SpectralModel
    summary: str


def run_train(request: TrainRequest, *, progress: ProgressCallback | None = None) -> TrainOutcome:
    """Fit the requested model on every sample and save its folder atomically.

    The folder appears complete or not at all: the model, its training curves and feature
    maps (CNNs) and ``config.resolved.yaml`` are written before it is renamed into place.

    Args:
        request: What to train; the output folder is checked before any work.
        progress: Called after loading, fitting and saving.

    Raises:
        SpecsoilError: For bad input or an output that may not be written.
    """
    out = _output_plan.plan_output_folder(
        request.out,
        kind="model",
        inputs=[request.source.data, *request.other_inputs],
        overwrite=request.overwrite,
    )
    if request.stream:
        return _train_stream(request, out, Stages(progress, _STAGES))
    stages = Stages(progress, _STAGES)
    loaded = load_source(request.source)
    targets = resolve_targets(loaded, request.targets)
    name = request.model or next(iter(request.variants), DEFAULT_MODEL)
    (spec,) = resolve_models([name], request.variants)
    clip = check_clip(request.clip, targets, source="--clip")
    stages.finished("load")
    model = SpectralModel.fit(
        loaded.table,
        targets,
        recipe=spec.recipe,
        name=spec.name,
        preprocessing=spec.preprocessing,
        params=spec.params,
        random_state=request.seed,
        conformal=_CONFORMAL[request.conformal],
        conformal_folds=request.conformal_folds,
        calibration_fraction=request.calibration_fraction,
        clip=clip,
    )
    stages.finished("fit")
    resolved = {
        "data": loaded.table.source,
        "targets": targets,
        "seed": request.seed,
        "model": name,
        "conformal": model.conformal.method if model.conformal is not None else None,
    }
    save_model_folder(model, out, loaded.table, resolved)
    stages.finished("save")
    summary = (
        f"trained {spec.name!r} ({spec.recipe}) on {loaded.table.n_samples} samples for "
        f"{', '.join(targets)}{_calibration_note(model)}"
    )
    return TrainOutcome(out=out, files=written_files(out), model=model, summary=summary)


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
    """Save ``model`` to ``out`` complete: its pictures and run settings appear with it.

    Args:
        model: The fitted model.
        out: The model folder (replaced atomically).
        table: Spectra the model saw; a CNN's feature maps are drawn for the first one.
        resolved: The run's settings, written as ``config.resolved.yaml``.
    """

    def add_pictures_and_config(folder: Path) -> None:
        write_cnn_pictures(model, table, folder)
        text = yaml.safe_dump(resolved, sort_keys=False)
        (folder / "config.resolved.yaml").write_text(text, encoding="utf-8")

    model.save(out, extras=add_pictures_and_config)


def _train_stream(request: TrainRequest, out: Path, stages: Stages) -> TrainOutcome:
    """Fit a CNN on a Parquet source read row group by row group, never whole."""
    data = request.source.data
    # A directory is read as Parquet parts (ParquetSpectraSource checks them).
    if data is None or not (
        Path(data).is_dir() or Path(data).suffix.lower() in (".parquet", ".pq")
    ):
        raise SpecsoilError(
            f"--stream reads Parquet files (or a directory of Parquet parts) only; got "
            f"{str(data or 'the bundled dataset')!r}. Convert the table first: specsoil "
            "convert --data FILE --out FILE.parquet"
        )
    if request.conformal in ("cv", "split"):
        raise SpecsoilError(
            f"--conformal {request.conformal} does not work with --stream (the calibration "
            "rows are not held); train without --stream for prediction intervals"
        )
    if request.source.drop_invalid:
        raise SpecsoilError(
            "--drop-invalid does not work with --stream (rows are not held to drop); drop "
            "them once when converting: specsoil convert --drop-invalid"
        )
    targets = list(request.targets)
    if not targets:
        raise SpecsoilError(f"{data}: say which property to model with --target")
    name = request.model or next(iter(request.variants), DEFAULT_STREAM_MODEL)
    (spec,) = resolve_models([name], request.variants)
    clip = check_clip(request.clip, targets, source="--clip")
    source = ParquetSpectraSource(
        data,
        targets=targets,
        spectra_kind=request.source.spectra_kind,
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
    stages.finished("load")
    model = fit_model_stream(
        source,
        recipe=spec.recipe,
        name=spec.name,
        preprocessing=spec.preprocessing,
        params=spec.params,
        random_state=request.seed,
    )
    model.clip = clip
    stages.finished("fit")
    first = next(source.iter_tables([0]))  # feature maps are drawn for its first spectrum
    resolved = {
        "data": str(data),
        "targets": targets,
        "seed": request.seed,
        "model": name,
        "stream": True,
    }
    save_model_folder(model, out, first, resolved)
    stages.finished("save")
    summary = (
        f"trained {spec.name!r} ({spec.recipe}) on {source.n_rows} samples streamed from "
        f"{source.n_row_groups} row groups for {', '.join(targets)}"
    )
    return TrainOutcome(out=out, files=written_files(out), model=model, summary=summary)


def write_cnn_pictures(model: SpectralModel, table: SpectraTable, out: Path) -> None:
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
