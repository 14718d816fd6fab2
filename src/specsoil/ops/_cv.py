"""The ``cv`` operation: cross-validated comparison of models under one protocol."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import Field

from specsoil import _output_plan
from specsoil._atomic import atomic_directory
from specsoil._errors import SpecsoilError
from specsoil.config import ModelConfig
from specsoil.data import SpectraTable, read_coordinates
from specsoil.evaluate import (
    VALIDATION_TITLES,
    CVResult,
    Fold,
    column_folds,
    cross_validate,
    group_splits,
    kfold_splits,
    location_groups,
    location_splits,
    spatial_block_splits,
    spatial_blocks,
    train_test_column,
    write_report,
    write_validation_report,
)
from specsoil.models import default_recipes, make_recipe
from specsoil.ops._inputs import (
    DataSource,
    OutputRequest,
    load_source,
    resolve_models,
    resolve_targets,
    written_files,
)
from specsoil.ops._progress import ProgressCallback, ProgressUpdate

DEFAULT_FOLDS = 10


class CVRequest(OutputRequest):
    """What to cross-validate, how to split the samples, and where the report goes.

    Attributes:
        source: The spectra and lab values.
        targets: Property columns; empty means the dataset's own targets.
        models: Recipe or variant names; empty means every variant, else the defaults.
        variants: Named models (a recipe plus preprocessing and parameters).
        seed: Random seed of the folds and the models.
        folds: K of K-fold (default 10); also K of the spatial schemes.
        fold_column: Column whose values name the test folds.
        group_column: Leave-one-group-out on this column.
        train_column: Rows where this column is 1/true calibrate, the rest test.
        jobs: Model fits in parallel; -1 uses every core.
        spatial_blocks: Also cross-validate over square blocks of this size (map units).
        location_tolerance: Samples closer than this share a location (leave-location-out).
        x: Column of longitudes or eastings (spatial CV).
        y: Column of latitudes or northings (spatial CV).
        crs: Coordinate reference system of ``x``/``y``, e.g. ``EPSG:32755``.
    """

    source: DataSource = DataSource()
    targets: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    variants: dict[str, ModelConfig] = Field(default_factory=dict)
    seed: int = 0
    folds: int | None = None
    fold_column: str | None = None
    group_column: str | None = None
    train_column: str | None = None
    jobs: int = 1
    spatial_blocks: float | None = None
    location_tolerance: float = 0.0
    x: str | None = None
    y: str | None = None
    crs: str | None = None


@dataclass(frozen=True)
class CVOutcome:
    """What a ``cv`` run found and wrote.

    Attributes:
        out: The report folder.
        files: Every file written there.
        results: Per validation scheme (``random``, and with spatial blocks also
            ``spatial_blocks`` and ``leave_location_out``), the fold predictions and metrics.
        descriptions: Per scheme, how the samples were split.
        targets: The properties modelled.
        lab_values: The targets' lab values, shape (n_samples, n_targets); NaN where missing.
        seconds: Time spent cross-validating.
        notes: Lines to show the user besides the metrics (the coordinates used).
    """

    out: Path
    files: tuple[Path, ...]
    results: dict[str, CVResult]
    descriptions: dict[str, str]
    targets: list[str]
    lab_values: NDArray[np.float64]
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def spatial(self) -> bool:
        """True when spatial schemes ran beside the random K-fold."""
        return len(self.results) > 1


def run_cv(request: CVRequest, *, progress: ProgressCallback | None = None) -> CVOutcome:
    """Cross-validate the requested models and write the report folder atomically.

    Args:
        request: What to run; the output folder is checked before any work.
        progress: Called after each (model, fold) fit over every scheme.

    Returns:
        The results and the files written.

    Raises:
        SpecsoilError: For bad input or an output that may not be written.
    """
    if request.folds is not None and request.folds < 2:
        raise SpecsoilError(f"--folds must be at least 2; got {request.folds}")
    out = _output_plan.plan_output_folder(
        request.out,
        kind="cv-report",
        inputs=[request.source.data, *request.other_inputs],
        overwrite=request.overwrite,
    )
    loaded = load_source(request.source)
    table, seed = loaded.table, request.seed
    targets = resolve_targets(loaded, request.targets)
    names = list(request.models) or list(request.variants) or default_recipes()
    specs = resolve_models(names, request.variants)
    notes: list[str] = []
    spatial: dict[str, Any] = {}
    if request.spatial_blocks is None:
        if request.x or request.y or request.crs:
            raise SpecsoilError("--x, --y and --crs are used with --spatial-blocks SIZE only")
        folds, split_desc = _resolve_folds(request, table)
        plans = {"random": folds}
        descriptions = {"random": split_desc}
    else:
        plans, descriptions, spatial, note = _spatial_plans(request, table)
        notes.append(note)
    estimators = {
        spec.name: make_recipe(
            spec.recipe,
            table.wavelengths,
            preprocessing=spec.preprocessing,
            params=spec.params,
            random_state=seed,
        )
        for spec in specs
    }
    Y = table.targets(targets)
    started = time.perf_counter()
    results: dict[str, CVResult] = {}
    total = len(specs) * sum(len(folds) for folds in plans.values())
    finished = 0  # fits of the schemes already run, so the count spans all of them
    for validation, folds in plans.items():
        results[validation] = cross_validate(
            estimators,
            table.X,
            Y,
            target_names=targets,
            folds=folds,
            sample_ids=list(table.sample_ids),
            progress=_fit_reporter(progress, finished, total, validation if spatial else ""),
            n_jobs=request.jobs,
        )
        finished += len(specs) * len(folds)
    seconds = time.perf_counter() - started
    resolved = {
        "data": table.source,
        "dataset": loaded.dataset,
        "n_samples": table.n_samples,
        "wavelength_range_nm": [float(table.wavelengths[0]), float(table.wavelengths[-1])],
        "n_wavelengths": int(table.wavelengths.size),
        "spectra_kind": table.spectra_kind,
        "spectra_kind_detected": table.kind_detected,
        "dropped_rows": list(table.dropped_rows),
        # Missing and censored (<x, >x) lab values of the targets, and what was done with <x, >x.
        "lab_values": {
            "censored": table.censored,
            "counts": {
                t: dict(table.lab_value_counts[t]) for t in targets if t in table.lab_value_counts
            },
        },
        "targets": targets,
        "split": descriptions["random"],
        "seed": seed,
        "models": {
            s.name: {"recipe": s.recipe, "preprocessing": s.preprocessing, "params": s.params}
            for s in specs
        },
    }
    if spatial:
        resolved["spatial"] = spatial
    with atomic_directory(out, kind="cv-report") as folder:
        if not spatial:
            write_report(results["random"], folder, config=resolved)
        else:
            write_validation_report(results, folder, config=resolved, descriptions=descriptions)
        text = yaml.safe_dump(resolved, sort_keys=False)
        (folder / "config.resolved.yaml").write_text(text, encoding="utf-8")
    return CVOutcome(
        out=out,
        files=written_files(out),
        results=results,
        descriptions=descriptions,
        targets=targets,
        lab_values=Y,
        seconds=seconds,
        notes=tuple(notes),
    )


def _fit_reporter(
    progress: ProgressCallback | None, finished: int, total: int, validation: str
) -> Callable[[str, str, int, int], None] | None:
    """A ``cross_validate`` callback that counts on after the ``finished`` fits of earlier schemes.

    ``validation`` names the scheme shown before each fit, or is empty for a plain run.
    """
    if progress is None:
        return None
    label = f"{VALIDATION_TITLES[validation]}: " if validation else ""

    def report(model: str, fold: str, done: int, _: int) -> None:
        progress(ProgressUpdate(finished + done, total, f"{label}{model} fold {fold}"))

    return report


def _spatial_plans(
    request: CVRequest, table: SpectraTable
) -> tuple[dict[str, list[Fold]], dict[str, str], dict[str, Any], str]:
    """Random K-fold, spatial block K-fold and leave-location-out plans for the same rows.

    Blocks need map units, so longitude/latitude are projected to the local UTM zone first
    (block size and tolerance then in metres). Leave-location-out deals whole locations to
    the K folds when there are more than K of them (one fit per location would be too many
    for most surveys), and leaves one location out at a time otherwise.

    Returns:
        The plans, their descriptions, the settings for the report, and a note on the
        coordinates for the user.
    """
    other = request.fold_column or request.group_column or request.train_column
    if other:
        raise SpecsoilError(
            "--spatial-blocks runs K-fold (--folds) beside spatial CV; it cannot be combined "
            f"with a fold, group or train column (got {other!r})"
        )
    k, seed = _fold_count(request), request.seed
    coordinates = read_coordinates(table, x=request.x, y=request.y, crs=request.crs)
    projected = coordinates.projected()
    units = projected.units
    x, y = projected.x, projected.y
    size, tolerance = float(request.spatial_blocks or 0.0), float(request.location_tolerance)
    n_blocks = int(spatial_blocks(x, y, block_size=size).max()) + 1
    n_locations = int(location_groups(x, y, tolerance=tolerance).max()) + 1
    plans = {
        "random": kfold_splits(table.n_samples, n_splits=k, random_state=seed),
        "spatial_blocks": spatial_block_splits(
            x, y, block_size=size, n_splits=k, random_state=seed
        ),
        "leave_location_out": location_splits(
            x, y, tolerance=tolerance, n_splits=k, random_state=seed
        ),
    }
    unit = "m" if units == "metre" else f" {units}"
    where = f"in {projected.crs}"
    if projected is not coordinates:
        where += f", projected from {coordinates.crs} to the local UTM zone"
    same_place = f"within {tolerance:g}{unit}" if tolerance > 0 else "at identical coordinates"
    if n_locations <= k:
        location_desc = f"leave one location out ({n_locations} locations; samples {same_place})"
    else:
        location_desc = (
            f"{k}-fold over {n_locations} locations (samples {same_place} share one), seed {seed}"
        )
    if n_locations == table.n_samples:
        location_desc += "; every sample has its own location, so this is a random K-fold"
    descriptions = {
        "random": f"{k}-fold CV, seed {seed}",
        "spatial_blocks": f"{k} folds of {size:g}{unit} square blocks ({n_blocks} hold "
        f"samples) {where}; balanced by sample count, seed {seed}",
        "leave_location_out": location_desc,
    }
    spatial = {
        "columns": list(coordinates.columns),
        "crs": coordinates.crs,
        "projected_crs": projected.crs,
        "units": units,
        "block_size": size,
        "n_blocks": n_blocks,
        "location_tolerance": tolerance,
        "n_locations": n_locations,
        "folds": k,
    }
    note = (
        f"coordinates {coordinates.columns[0]}/{coordinates.columns[1]} in {coordinates.crs}"
        + (f", projected to {projected.crs}" if projected is not coordinates else "")
        + f"; spatial blocks of {size:g}{unit}: {n_blocks} blocks, {n_locations} locations"
    )
    return plans, descriptions, spatial, note


def _resolve_folds(request: CVRequest, table: SpectraTable) -> tuple[list[Fold], str]:
    """The one plan of a non-spatial run: a train, fold or group column, else K-fold."""
    if request.train_column:
        column = request.train_column
        return [train_test_column(table.column(column), column=column)], (
            f"calibration/test split on column {column!r}"
        )
    if request.fold_column:
        column = request.fold_column
        return list(column_folds(table.column(column), column=column)), (
            f"folds from column {column!r}"
        )
    if request.group_column:
        column = request.group_column
        return list(group_splits(table.column(column), column=column)), (
            f"leave-one-group-out on column {column!r}"
        )
    k = _fold_count(request)
    return list(kfold_splits(table.n_samples, n_splits=k, random_state=request.seed)), (
        f"{k}-fold CV, seed {request.seed}"
    )


def _fold_count(request: CVRequest) -> int:
    """K of K-fold: the request's (checked to be at least 2 before the work), else the default."""
    return request.folds if request.folds is not None else DEFAULT_FOLDS
