"""``specsoil map``: interpolate lab values or model predictions into a soil property map."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil._atomic import atomic_directory
from specsoil._errors import SpecsoilError
from specsoil.cli._common import (
    add_coordinate_flags,
    add_data_flags,
    console,
    coordinates_from_flags,
    library_filters,
    load_data,
)
from specsoil.data import SpectraTable
from specsoil.evaluate import regression_metrics
from specsoil.models import SpectralModel

logger = logging.getLogger(__name__)

DEFAULT_FOLDS = 10
# Same as specsoil.maps' default; repeated so building the parser does not import gstools.
DEFAULT_NEIGHBOURS = 100


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``map``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "map",
        help="interpolate a property over the samples' area: GeoTIFF, PNG and HTML maps",
        description="Map a soil property by IDW, ordinary kriging (variogram fitted "
        "automatically) or regression-kriging (model predictions plus kriged residuals). "
        "With --model the model's predictions from the spectra are mapped, otherwise the lab "
        "values are. Geographic coordinates are projected to their UTM zone first. Writes "
        "map.tif (value and, for kriging, variance band), map.png, map.html, variogram "
        "plots, cv_predictions.csv and metrics.json (cross-validated map accuracy).",
    )
    add_data_flags(parser, required=True)
    parser.add_argument("--target", required=True, help="property column to map")
    parser.add_argument(
        "--model",
        help="model directory written by train; its predictions from the spectra are mapped",
    )
    add_coordinate_flags(parser)
    parser.add_argument(
        "--method",
        choices=("idw", "kriging", "regression-kriging"),
        default="kriging",
        help="interpolation method (default kriging; regression-kriging needs --model)",
    )
    parser.add_argument(
        "--resolution",
        type=float,
        help="cell size in CRS units, metres for geographic input (default: 200 cells "
        "along the longer side)",
    )
    parser.add_argument(
        "--boundary", help="polygon file (Shapefile, GeoPackage, GeoJSON) to clip the map to"
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=DEFAULT_FOLDS,
        help=f"cross-validation folds for the map accuracy (default {DEFAULT_FOLDS}; 0 skips it)",
    )
    parser.add_argument(
        "--neighbours",
        type=int,
        default=DEFAULT_NEIGHBOURS,
        help="points per local kriging neighbourhood; fewer points are kriged globally "
        f"(default {DEFAULT_NEIGHBOURS})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="directory to write the map files to")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil map``."""
    from specsoil.maps import (
        make_map,
        plot_map,
        plot_variogram,
        read_boundary,
        write_geotiff,
        write_html,
    )

    started = time.perf_counter()
    loaded = load_data(
        args.data,
        spectra_kind=args.spectra_kind,
        drop_invalid=args.drop_invalid,
        **library_filters(args),
    )
    table = loaded.table
    if args.folds < 0 or args.folds == 1:
        raise SpecsoilError(f"--folds must be 0 (no CV) or at least 2; got {args.folds}")
    coordinates = coordinates_from_flags(args, table)
    projected = coordinates.projected()
    lonlat = coordinates.to_crs("EPSG:4326")
    lab = _lab_values(table, args.target, required=args.model is None)
    prediction = None if args.model is None else _predict(args.model, args.target, table)
    if args.method == "regression-kriging":
        if prediction is None:
            raise SpecsoilError(
                "--method regression-kriging needs --model: the model's predictions are the "
                "trend and the lab residuals are kriged"
            )
        if lab is None:
            raise SpecsoilError(
                f"{table.source}: --method regression-kriging needs the lab values of "
                f"{args.target!r} to krige the residuals; the table has no such column"
            )
        values, trend, mapped = lab, prediction, "lab values (trend: model predictions)"
    elif prediction is not None:
        values, trend, mapped = prediction, None, "model predictions"
    elif lab is not None:  # always, without --model: _lab_values required the column
        values, trend, mapped = lab, None, "lab values"
    else:
        raise SpecsoilError(f"{table.source}: nothing to map for {args.target!r}")
    boundary = None if args.boundary is None else read_boundary(args.boundary, crs=projected.crs)
    try:
        result = make_map(
            projected.x,
            projected.y,
            values,
            crs=projected.crs,
            method=args.method,
            trend=trend,
            resolution=args.resolution,
            boundary=boundary,
            folds=args.folds,
            neighbours=args.neighbours,
            random_state=args.seed,
        )
    except SpecsoilError as exc:
        # make_map knows only arrays ("every value is the same"); say which file and column.
        raise SpecsoilError(f"{table.source}: mapping {args.target!r}: {exc}") from None
    observed = np.isfinite(values)
    cv = dict(result.cv)
    cv_predicted = np.asarray(cv.pop("predicted", []), dtype=np.float64)
    metrics: dict[str, Any] = {
        "data": table.source,
        "target": args.target,
        "model": args.model,
        "method": args.method,
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
        "boundary": args.boundary,
        "cv": cv,
        "variograms": {role: fit.summary() for role, fit in result.variograms.items()},
        "seconds": result.seconds,
        "seed": args.seed,
    }
    if cv and prediction is not None and lab is not None and args.method != "regression-kriging":
        # The map is built from predictions, but what matters is how well it gives lab values.
        both = np.isfinite(lab[observed])
        metrics["cv_against_lab"] = {
            k: (int(v) if k == "n" else float(v))
            for k, v in regression_metrics(lab[observed][both], cv_predicted[both]).items()
        }
    label = args.target
    out = Path(args.out)
    with atomic_directory(out) as tmp:
        bands = [result.values]
        names = [f"{label} ({args.method})"]
        if result.variance is not None:
            bands.append(result.variance)
            names.append(f"{label} kriging variance")
        write_geotiff(tmp / "map.tif", result.grid, bands, names=names)
        plot_map(
            tmp / "map.png",
            result.grid,
            result.values,
            points_x=projected.x[observed],
            points_y=projected.y[observed],
            point_values=values[observed],
            label=label,
            title=f"{label}: {args.method} of {mapped.split(' (')[0]}",
            boundary=boundary,
        )
        if result.variance is not None:
            plot_map(
                tmp / "variance.png",
                result.grid,
                result.variance,
                points_x=projected.x[observed],
                points_y=projected.y[observed],
                label=f"{label} kriging variance",
                title=f"{label}: kriging variance",
                boundary=boundary,
            )
        for role, fit in result.variograms.items():
            name = "variogram.png" if role == "values" else f"variogram_{role}.png"
            plot_variogram(
                tmp / name,
                fit,
                title=f"{label}: variogram of the {role}",
                distance_unit="m" if projected.units in ("metre", "meter") else projected.units,
            )
        write_html(
            tmp / "map.html",
            result.grid,
            result.values,
            points_lon=lonlat.x[observed],
            points_lat=lonlat.y[observed],
            point_values=values[observed],
            sample_ids=list(table.sample_ids[observed]),
            label=label,
            random_state=args.seed,
        )
        if cv:
            frame = pd.DataFrame(
                {
                    "sample_id": table.sample_ids[observed].to_numpy(),
                    "x": projected.x[observed],
                    "y": projected.y[observed],
                    "observed": values[observed],
                    "predicted": cv_predicted,
                }
            )
            frame.to_csv(tmp / "cv_predictions.csv", index=False)
        metrics["seconds"]["total"] = time.perf_counter() - started
        (tmp / "metrics.json").write_text(
            json.dumps(_finite(metrics), indent=2, allow_nan=False) + "\n",
            encoding="utf-8",
        )
    _print_summary(metrics, out)
    return 0


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


def _print_summary(metrics: dict[str, Any], out: Path) -> None:
    cv = metrics["cv"]
    grid = metrics["grid"]
    shown = console()
    shown.print(
        f"{metrics['target']}: {metrics['method']} of {metrics['n_points']} points "
        f"({metrics['mapped']}) on a {grid['width']} x {grid['height']} grid of "
        f"{metrics['resolution']:g} ({metrics['crs']})"
    )
    for role, fit in metrics["variograms"].items():
        shown.print(f"variogram of the {role}: {fit['model']} (R² {fit['r2']:.3f})")
    if cv:
        shown.print(
            f"cross-validated ({cv['scheme']}): R² {cv['r2']:.3f}, RMSE {cv['rmse']:.4g}, "
            f"bias {cv['bias']:.3g}"
        )
    if "cv_against_lab" in metrics:
        lab = metrics["cv_against_lab"]
        shown.print(f"  against lab values: R² {lab['r2']:.3f}, RMSE {lab['rmse']:.4g}")
    shown.print(f"map written to {out}/ in {metrics['seconds']['total']:.1f} s")
