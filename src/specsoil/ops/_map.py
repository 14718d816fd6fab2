"""The ``map`` operation: interpolate lab values or model predictions into a property map."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil import _output_plan
from specsoil._atomic import atomic_directory
from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable, read_coordinates
from specsoil.evaluate import regression_metrics
from specsoil.models import SpectralModel
from specsoil.ops._inputs import DataSource, OutputRequest, load_source, written_files
from specsoil.ops._progress import ProgressCallback, Stages

if TYPE_CHECKING:
    from specsoil.maps import MapResult

DEFAULT_FOLDS = 10
# Same as specsoil.maps' default; repeated so building a request does not import gstools.
DEFAULT_NEIGHBOURS = 100
MapMethod = Literal["idw", "kriging", "regression-kriging"]
_STAGES = ("load", "interpolate", "write")


class MapRequest(OutputRequest):
    """The property to map, from which values, by which method, and the map folder.

    Attributes:
        source: Spectra with coordinates (and lab values unless ``model`` is given).
        target: The property column to map.
        model: A model folder whose predictions from the spectra are mapped.
        x: Column of longitudes or eastings (default GPS_LONG when present).
        y: Column of latitudes or northings (default GPS_LAT when present).
        crs: Coordinate reference system of ``x``/``y`` (default EPSG:4326).
        method: ``idw``, ``kriging`` or ``regression-kriging`` (needs ``model``).
        resolution: Cell size in CRS units, metres for geographic input (default: 200
            cells along the longer side).
        boundary: Polygon file to clip the map to.
        folds: Cross-validation folds for the map accuracy; 0 skips it.
        neighbours: Points per local kriging neighbourhood.
        seed: Random seed.
    """

    source: DataSource
    target: str
    model: str | None = None
    x: str | None = None
    y: str | None = None
    crs: str | None = None
    method: MapMethod = "kriging"
    resolution: float | None = None
    boundary: str | None = None
    folds: int = DEFAULT_FOLDS
    neighbours: int = DEFAULT_NEIGHBOURS
    seed: int = 0


@dataclass(frozen=True)
class MapOutcome:
    """The map folder and what it says about the map.

    Attributes:
        out: The map folder (map.tif, map.png, map.html, variograms, metrics.json, ...).
        files: Every file written there.
        metrics: What ``metrics.json`` holds (grid, variograms, cross-validated accuracy
            and timings), with NaN where the file has null.
    """

    out: Path
    files: tuple[Path, ...]
    metrics: dict[str, Any]


def run_map(request: MapRequest, *, progress: ProgressCallback | None = None) -> MapOutcome:
    """Interpolate the property over the samples' area and write the map folder atomically.

    Args:
        request: What to map; the output folder is checked before any work.
        progress: Called after loading, interpolating and writing.

    Raises:
        SpecsoilError: For bad input or an output that may not be written.
    """
    from specsoil.maps import make_map, read_boundary

    started = time.perf_counter()
    stages = Stages(progress, _STAGES)
    if request.folds < 0 or request.folds == 1:
        raise SpecsoilError(f"--folds must be 0 (no CV) or at least 2; got {request.folds}")
    out = _output_plan.plan_output_folder(
        request.out,
        kind="map",
        inputs=[request.source.data, request.model, request.boundary, *request.other_inputs],
        overwrite=request.overwrite,
    )
    table = load_source(request.source).table
    coordinates = read_coordinates(table, x=request.x, y=request.y, crs=request.crs)
    projected = coordinates.projected()
    lonlat = coordinates.to_crs("EPSG:4326")
    target = request.target
    lab = _lab_values(table, target, required=request.model is None)
    prediction = None if request.model is None else _predict(request.model, target, table)
    values, trend, mapped = _values_to_map(request, table, lab, prediction)
    boundary = (
        None if request.boundary is None else read_boundary(request.boundary, crs=projected.crs)
    )
    stages.finished("load")
    try:
        result = make_map(
            projected.x,
            projected.y,
            values,
            crs=projected.crs,
            method=request.method,
            trend=trend,
            resolution=request.resolution,
            boundary=boundary,
            folds=request.folds,
            neighbours=request.neighbours,
            random_state=request.seed,
        )
    except SpecsoilError as exc:
        # make_map knows only arrays ("every value is the same"); say which file and column.
        raise SpecsoilError(f"{table.source}: mapping {target!r}: {exc}") from None
    stages.finished("interpolate")
    observed = np.isfinite(values)
    cv = dict(result.cv)
    cv_predicted = np.asarray(cv.pop("predicted", []), dtype=np.float64)
    metrics: dict[str, Any] = {
        "data": table.source,
        "target": target,
        "model": request.model,
        "method": request.method,
        "mapped": mapped,
        "n_points": int(observed.sum()),
        "crs": projected.crs,
        "input_crs": coordinates.crs,
        "coordinate_columns": list(coordinates.columns),
        "resolution": result.grid.resolution,
        "grid": {
            "width": result.grid.width,
            "height": result.grid.height,
            "bounds": list(result.grid.bounds),
            "cells_mapped": int(np.isfinite(result.values).sum()),
        },
        "boundary": request.boundary,
        "cv": cv,
        "variograms": {role: fit.summary() for role, fit in result.variograms.items()},
        "seconds": result.seconds,
        "seed": request.seed,
    }
    if cv and prediction is not None and lab is not None and request.method != "regression-kriging":
        # The map is built from predictions, but what matters is how well it gives lab values.
        both = np.isfinite(lab[observed])
        metrics["cv_against_lab"] = {
            k: (int(v) if k == "n" else float(v))
            for k, v in regression_metrics(lab[observed][both], cv_predicted[both]).items()
        }
    points = _MapPoints(
        x=projected.x[observed],
        y=projected.y[observed],
        lon=lonlat.x[observed],
        lat=lonlat.y[observed],
        values=values[observed],
        sample_ids=table.sample_ids[observed].to_numpy(),
    )
    units = "m" if projected.units in ("metre", "meter") else projected.units
    with atomic_directory(out, kind="map") as tmp:
        _write_map_files(tmp, request, result, points, boundary, mapped, units)
        if cv:
            frame = pd.DataFrame(
                {
                    "sample_id": points.sample_ids,
                    "x": points.x,
                    "y": points.y,
                    "observed": points.values,
                    "predicted": cv_predicted,
                }
            )
            frame.to_csv(tmp / "cv_predictions.csv", index=False)
        metrics["seconds"]["total"] = time.perf_counter() - started
        (tmp / "metrics.json").write_text(
            json.dumps(_finite(metrics), indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
    stages.finished("write")
    return MapOutcome(out=out, files=written_files(out), metrics=metrics)


@dataclass(frozen=True)
class _MapPoints:
    """The samples with a value to map: projected and lon/lat positions, values and ids."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    values: NDArray[np.float64]
    sample_ids: NDArray[Any]


def _values_to_map(
    request: MapRequest,
    table: SpectraTable,
    lab: NDArray[np.float64] | None,
    prediction: NDArray[np.float64] | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None, str]:
    """The values to interpolate, the trend (regression-kriging) and a note on what they are."""
    if request.method == "regression-kriging":
        if prediction is None:
            raise SpecsoilError(
                "--method regression-kriging needs --model: the model's predictions are the "
                "trend and the lab residuals are kriged"
            )
        if lab is None:
            raise SpecsoilError(
                f"{table.source}: --method regression-kriging needs the lab values of "
                f"{request.target!r} to krige the residuals; the table has no such column"
            )
        return lab, prediction, "lab values (trend: model predictions)"
    if prediction is not None:
        return prediction, None, "model predictions"
    if lab is not None:  # always, without a model: _lab_values required the column
        return lab, None, "lab values"
    raise SpecsoilError(f"{table.source}: nothing to map for {request.target!r}")


def _write_map_files(
    folder: Path,
    request: MapRequest,
    result: MapResult,
    points: _MapPoints,
    boundary: Any,
    mapped: str,
    units: str,
) -> None:
    """Write the GeoTIFF, the PNG maps, the variogram plots and the HTML map to ``folder``."""
    from specsoil.maps import plot_map, plot_variogram, write_geotiff, write_html

    label, method = request.target, request.method
    bands = [result.values]
    names = [f"{label} ({method})"]
    if result.variance is not None:
        bands.append(result.variance)
        names.append(f"{label} kriging variance")
    write_geotiff(folder / "map.tif", result.grid, bands, names=names)
    plot_map(
        folder / "map.png",
        result.grid,
        result.values,
        points_x=points.x,
        points_y=points.y,
        point_values=points.values,
        label=label,
        title=f"{label}: {method} of {mapped.split(' (')[0]}",
        boundary=boundary,
    )
    if result.variance is not None:
        plot_map(
            folder / "variance.png",
            result.grid,
            result.variance,
            points_x=points.x,
            points_y=points.y,
            label=f"{label} kriging variance",
            title=f"{label}: kriging variance",
            boundary=boundary,
        )
    for role, fit in result.variograms.items():
        name = "variogram.png" if role == "values" else f"variogram_{role}.png"
        plot_variogram(
            folder / name, fit, title=f"{label}: variogram of the {role}", distance_unit=units
        )
    write_html(
        folder / "map.html",
        result.grid,
        result.values,
        points_lon=points.lon,
        points_lat=points.lat,
        point_values=points.values,
        sample_ids=list(points.sample_ids),
        label=label,
        random_state=request.seed,
    )


def _lab_values(table: SpectraTable, target: str, *, required: bool) -> NDArray[np.float64] | None:
    """The lab values of ``target``, or None when the column is absent and not required."""
    if target not in table.metadata.columns:
        if not required:
            return None
        raise SpecsoilError(
            f"{table.source}: no column {target!r} to map; numeric columns: "
            f"{table.numeric_columns()}"
        )
    return table.targets([target])[:, 0]


def _predict(model_dir: str, target: str, table: SpectraTable) -> NDArray[np.float64]:
    model = SpectralModel.load(model_dir)
    if target not in model.targets:
        raise SpecsoilError(
            f"{model_dir}: the model predicts {model.targets}, not {target!r}; "
            "choose --target among them"
        )
    return model.predict(table)[:, model.targets.index(target)]


def _finite(value: Any) -> Any:
    """JSON-ready copy: numpy scalars become Python numbers and NaN/inf become null."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
