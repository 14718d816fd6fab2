"""Wall time of ``specsoil map``'s interpolation for 20,000 points, by method.

Samples ``--points`` locations over a 100 km x 100 km UTM area from a gstools random field
with a known variogram (exponential, sill 4 with nugget 0.5, range 8 km), then times each
method through ``specsoil.maps.make_map`` on the default grid (200 x 200 cells of 500 m),
with the 10-fold cross-validation, plus writing the outputs (GeoTIFF, PNG, HTML). The map's
error against the true field at the cell centres is reported next to the CV error.

How 20,000 points are kriged: the empirical variogram uses a random subset of 2,000 points
(2 M pairs instead of 200 M), and kriging uses a moving neighbourhood: the targets are cut
into tiles and each tile is kriged (gstools ``Ordinary``) from the 100 points nearest its
centre, so each cell costs O(100²) instead of a 20,000 x 20,000 system.

Regression-kriging needs a model's predictions: here the "prediction" is the field's
large-scale part plus noise, standing in for a spectral model's output.

    .venv/bin/python bench/bench_map.py                   # 20,000 points
    .venv/bin/python bench/bench_map.py --update-docs     # also write docs/benchmarks.md
    .venv/bin/python bench/bench_map.py --geeves-demo geeves_xy.csv   # README demo data

``--geeves-demo`` instead writes the bundled geeves table with synthetic coordinates (see
``write_geeves_demo``) for the README's map figure, and exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _markdown import update_section

UTM = "EPSG:32755"
ORIGIN = (500_000.0, 6_000_000.0)  # a UTM zone 55S corner, south-east Australia
SIDE = 100_000.0


def synthesise(points: int, seed: int) -> dict[str, np.ndarray]:
    """Points, their values and a stand-in trend from a field with a known variogram."""
    import gstools as gs

    rng = np.random.default_rng(seed)
    x = ORIGIN[0] + rng.uniform(0, SIDE, points)
    y = ORIGIN[1] + rng.uniform(0, SIDE, points)
    smooth = gs.SRF(gs.Gaussian(dim=2, var=3.0, len_scale=20_000.0), mean=25.0, seed=seed)
    rough = gs.SRF(gs.Exponential(dim=2, var=1.0, len_scale=8_000.0), seed=seed + 1)
    return {"x": x, "y": y, "smooth": smooth, "rough": rough, "rng": rng}


def field_at(data: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The true field (without the nugget) at any location."""
    return data["smooth"]((x, y)) + data["rough"]((x, y))


def run(points: int, seed: int, methods: list[str], folds: int) -> list[tuple[str, ...]]:
    from specsoil.maps import make_map, plot_map, write_geotiff, write_html

    data = synthesise(points, seed)
    x, y, rng = data["x"], data["y"], data["rng"]
    truth = field_at(data, x, y)
    observed = truth + rng.normal(0, 0.5**0.5, points)  # nugget 0.5: measurement error
    trend = data["smooth"]((x, y)) + rng.normal(0, 0.3, points)
    lon = 147.0 + (x - ORIGIN[0]) / 91_000.0  # display only: the HTML wants lon/lat
    lat = -36.0 + (y - ORIGIN[1]) / 111_000.0
    rows = []
    for method in methods:
        started = time.perf_counter()
        result = make_map(
            x,
            y,
            observed,
            crs=UTM,
            method=method,  # type: ignore[arg-type]
            trend=trend if method == "regression-kriging" else None,
            folds=folds,
            random_state=seed,
        )
        compute = time.perf_counter() - started
        cx, cy = result.grid.cell_centres()
        true_map = field_at(data, cx, cy).reshape(result.grid.shape)
        map_rmse = float(np.sqrt(np.nanmean((result.values - true_map) ** 2)))
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            bands = [result.values] + ([result.variance] if result.variance is not None else [])
            write_geotiff(
                Path(tmp) / "map.tif", result.grid, bands, names=["v", "var"][: len(bands)]
            )
            plot_map(
                Path(tmp) / "map.png",
                result.grid,
                result.values,
                points_x=x,
                points_y=y,
                point_values=observed,
                label="v",
                title=method,
            )
            write_html(
                Path(tmp) / "map.html",
                result.grid,
                result.values,
                points_lon=lon,
                points_lat=lat,
                point_values=observed,
                sample_ids=[str(i) for i in range(points)],
                label="v",
            )
        outputs = time.perf_counter() - started
        s = result.seconds
        fit = result.variograms.get("values") or result.variograms.get("residuals")
        rows.append(
            (
                method,
                f"{points:,}",
                f"{result.grid.width} x {result.grid.height}",
                f"{s.get('variogram', 0.0):.1f}",
                f"{s['interpolate']:.1f}",
                f"{s.get('cv', 0.0):.1f}",
                f"{outputs:.1f}",
                f"{compute + outputs:.1f}",
                f"{result.cv['r2']:.3f}" if result.cv else "-",
                f"{result.cv['rmse']:.3f}" if result.cv else "-",
                f"{map_rmse:.3f}",
                fit.model_name if fit else "-",
            )
        )
        print(rows[-1], file=sys.stderr)
    return rows


def write_geeves_demo(path: Path, seed: int = 0) -> None:
    """Write the bundled geeves table with synthetic, spatially structured coordinates.

    geeves has no coordinates. To show a map with real spectra and lab values, each soil is
    given a location in a 20 x 15 km area near Wagga Wagga (NSW) such that its clay content's
    rank follows the rank of a smooth random field (plus noise) at that location: the clay
    values are real, their spatial arrangement is invented. Columns GPS_LONG/GPS_LAT
    (EPSG:4326) come first; the spectra are written as absorbance.
    """
    import gstools as gs
    import pandas as pd

    from specsoil.data import load_dataset

    table = load_dataset("geeves")
    rng = np.random.default_rng(seed)
    n = table.n_samples
    east = rng.uniform(0, 20_000, n)
    north = rng.uniform(0, 15_000, n)
    srf = gs.SRF(gs.Gaussian(dim=2, var=1.0, len_scale=4_000.0), seed=seed)
    score = srf((east, north)) + rng.normal(0, 0.35, n)
    clay = table.metadata["clay_pct"].to_numpy()
    located = np.empty(n, dtype=np.intp)
    located[np.argsort(clay, kind="stable")] = np.argsort(score, kind="stable")
    lon = 147.30 + east[located] / 91_000.0
    lat = -35.20 + north[located] / 111_000.0
    meta = table.metadata.copy()
    meta.insert(1, "GPS_LONG", np.round(lon, 6))
    meta.insert(2, "GPS_LAT", np.round(lat, 6))
    spectra = pd.DataFrame(table.X, columns=[f"{w:g}" for w in table.wavelengths])
    pd.concat([meta, spectra], axis=1).to_csv(path, index=False, float_format="%.6g")
    print(f"wrote {path}: {n} geeves soils with synthetic coordinates", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--method", action="append", choices=["idw", "kriging", "regression-kriging"]
    )
    parser.add_argument("--update-docs", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument(
        "--geeves-demo",
        type=Path,
        metavar="CSV",
        help="write geeves with synthetic coordinates (for the README map) and exit",
    )
    args = parser.parse_args()
    if args.geeves_demo:
        write_geeves_demo(args.geeves_demo, args.seed)
        return
    logging.basicConfig(level=logging.WARNING)
    methods = args.method or ["idw", "kriging", "regression-kriging"]
    rows = run(args.points, args.seed, methods, args.folds)
    lines = [
        f"{args.points:,} points from a random field with a known variogram over 100 x 100 km "
        f"(UTM), default grid of 500 m cells, {args.folds}-fold CV. {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}. Kriging: empirical "
        "variogram on a random 2,000-point subset, 5 models fitted, best R² kept; moving "
        "neighbourhood of the 100 nearest points per tile (gstools Ordinary, one BLAS "
        "thread). 'map RMSE' is the map's error against the true field at the cell centres "
        "(the field without its 0.71-sd measurement noise).",
        "",
        "| method | points | grid | variogram s | interpolate s | CV s | outputs s | total s "
        "| CV R² | CV RMSE | map RMSE | variogram model |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    body = "\n".join(lines)
    print(body)
    if args.update_docs:
        command = "python bench/bench_map.py " + " ".join(sys.argv[1:])
        update_section(
            "bench_map",
            f"## Mapping 20,000 points (bench/bench_map.py)\n\nCommand: `{command}`.\n\n" + body,
        )


if __name__ == "__main__":
    main()
