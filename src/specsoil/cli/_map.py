"""``specsoil map``: interpolate lab values or model predictions into a soil property map."""

from __future__ import annotations

import argparse
from typing import Any

from specsoil.cli._common import (
    add_coordinate_flags,
    add_data_flags,
    add_output_flags,
    console,
    data_source,
)
from specsoil.ops import MapRequest, run_map
from specsoil.ops._map import DEFAULT_FOLDS, DEFAULT_NEIGHBOURS


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
    add_output_flags(parser, help="directory to write the map files to")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil map``."""
    request = MapRequest(
        source=data_source(args),
        target=args.target,
        model=args.model,
        x=args.x,
        y=args.y,
        crs=args.crs,
        method=args.method,
        resolution=args.resolution,
        boundary=args.boundary,
        folds=args.folds,
        neighbours=args.neighbours,
        seed=args.seed,
        out=args.out,
        overwrite=args.overwrite,
    )
    outcome = run_map(request)
    _print_summary(outcome.metrics, args.out)
    return 0


def _print_summary(metrics: dict[str, Any], out: str) -> None:
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
