"""Throughput (pixels per second) and peak memory of ``map_image`` on a hyperspectral cube.

Synthesises an ENVI cube (BIL, float32 reflectance, 350-2500 nm every 5 nm like an airborne
imaging spectrometer; a strip of zero fill outside the footprint) whose pixels are noisy
mixtures of the bundled geeves soils, fits PLSR models on geeves, and maps the cube in a
fresh process per configuration: in-process with the default and with small windows, a
model on geeves' 1 nm grid (every window is resampled onto it), and a dask LocalCluster of
worker processes. Peak memory is the process's RSS high-water mark above a process that only
imports the same modules and loads a model (for dask: the driver's, workers excluded).

    .venv/bin/python bench/bench_image.py                  # 256 x 256 pixels, ~1.5 min
    .venv/bin/python bench/bench_image.py --height 512 --update-docs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

IMAGE_WAVELENGTHS = np.arange(350.0, 2500.1, 5.0)
TARGET = "clay_pct"
# (label, model directory name, extra map_image keyword arguments, use a dask cluster)
CONFIGS: tuple[tuple[str, str, dict[str, int], bool], ...] = (
    ("PLSR on the image grid, in-process, default windows", "plsr_image", {}, False),
    ("PLSR on the image grid, in-process, 8-row windows", "plsr_image", {"chunk_rows": 8}, False),
    ("PLSR on geeves' 1 nm grid (each window resampled), in-process", "plsr_1nm", {}, False),
    ("PLSR on the image grid, dask LocalCluster 2 worker processes", "plsr_image", {}, True),
)


def peak_rss_kb() -> int:
    """Peak resident memory of this process in KiB (VmHWM; see bench_read.py)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def synthesise(path: Path, height: int, width: int, seed: int = 0) -> None:
    """Write the ENVI cube window by window (never the whole cube in memory)."""
    import rasterio
    from affine import Affine

    from specsoil.data import load_dataset
    from specsoil.preprocess import Resample

    table = load_dataset("geeves")
    library = Resample(table.wavelengths, target_wavelengths=IMAGE_WAVELENGTHS).fit_transform(
        10.0 ** -table.X.astype(np.float64)
    )
    rng = np.random.default_rng(seed)
    profile = {
        "driver": "ENVI",
        "interleave": "bil",
        "width": width,
        "height": height,
        "count": IMAGE_WAVELENGTHS.size,
        "dtype": "float32",
        "crs": "EPSG:32755",
        "transform": Affine(1.0, 0.0, 500_000.0, 0.0, -1.0, 6_000_000.0),
        "nodata": 0.0,
    }
    fill = max(1, width // 20)  # zero fill on the left edge: outside the scene footprint
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.update_tags(
            ns="ENVI",
            wavelength="{" + ", ".join(f"{w:g}" for w in IMAGE_WAVELENGTHS) + "}",
            wavelength_units="Nanometers",
        )
        for start in range(0, height, 64):
            rows = min(64, height - start)
            n = rows * width
            a, b = rng.integers(0, library.shape[0], (2, n))
            share = rng.uniform(0, 1, (n, 1))
            pixels = share * library[a] + (1 - share) * library[b]
            pixels *= rng.normal(1.0, 0.01, (n, IMAGE_WAVELENGTHS.size))
            cube = pixels.astype(np.float32).T.reshape(-1, rows, width)
            cube[:, :, :fill] = 0.0
            window = rasterio.windows.Window(0, start, width, rows)
            dataset.write(cube, window=window)


def fit_models(workdir: Path) -> None:
    from specsoil.data import SpectraTable, load_dataset
    from specsoil.models import SpectralModel
    from specsoil.preprocess import Resample

    table = load_dataset("geeves")
    SpectralModel.fit(table, [TARGET], recipe="plsr").save(workdir / "plsr_1nm")
    on_grid = SpectraTable(
        X=Resample(table.wavelengths, target_wavelengths=IMAGE_WAVELENGTHS)
        .fit_transform(table.X)
        .astype(np.float32),
        wavelengths=IMAGE_WAVELENGTHS,
        metadata=table.metadata,
        source=table.source,
        spectra_kind=table.spectra_kind,
    )
    SpectralModel.fit(on_grid, [TARGET], recipe="plsr").save(workdir / "plsr_image")


def child(config: int, workdir: str) -> None:
    """Run one configuration in this (fresh) process and print its result(s) as JSON.

    The dask configuration prints two: the first image on a fresh cluster (workers import
    specsoil and load the model) and a second image on the same, now warm, cluster.
    """
    from specsoil.maps import map_image
    from specsoil.models import SpectralModel

    root = Path(workdir)
    if config < 0:  # baseline: the imports and a loaded model, no mapping
        SpectralModel.load(root / "plsr_1nm")
        print(json.dumps([{"peak_kb": peak_rss_kb()}]))
        return
    _, model_name, kwargs, on_dask = CONFIGS[config]
    out = root / f"out{config}.tif"
    results = []
    if on_dask:
        from distributed import LocalCluster

        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            for _ in ("cold", "warm"):
                results.append(
                    map_image(
                        root / model_name,
                        root / "cube.img",
                        out,
                        scheduler=cluster.scheduler_address,
                        **kwargs,  # type: ignore[arg-type]
                    )
                )
    else:
        model = SpectralModel.load(root / model_name)
        results.append(map_image(model, root / "cube.img", out, **kwargs))  # type: ignore[arg-type]
    peak_kb = peak_rss_kb()
    print(
        json.dumps(
            [
                {
                    "seconds": result.seconds,
                    "pixels_per_second": result.pixels_per_second,
                    "chunk_rows": result.chunk_rows,
                    "n_chunks": result.n_chunks,
                    "n_valid": result.n_valid,
                    "peak_kb": peak_kb,
                }
                for result in results
            ]
        )
    )


def run_child(config: int, workdir: Path) -> list[dict[str, float]]:
    argv = [sys.executable, __file__, "--child", str(config), str(workdir)]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    result = subprocess.run(argv, check=True, capture_output=True, text=True, env=env)
    parsed: list[dict[str, float]] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--update-docs", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1])
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench_image_"))
    try:
        started = time.perf_counter()
        synthesise(workdir / "cube.img", args.height, args.width)
        fit_models(workdir)
        cube_mib = (workdir / "cube.img").stat().st_size / 2**20
        print(f"cube {cube_mib:.0f} MiB, models fitted in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)  # fmt: skip
        baseline_kb = run_child(-1, workdir)[0]["peak_kb"]
        rows = []
        for index, (label, _, _, on_dask) in enumerate(CONFIGS):
            runs = run_child(index, workdir)
            labels = [f"{label}, first image (cold)", f"{label}, second image (warm)"]
            for name, run in zip(labels if on_dask else [label], runs, strict=True):
                extra_mib = (run["peak_kb"] - baseline_kb) / 1024
                rows.append(
                    (
                        name,
                        f"{int(run['chunk_rows'])} x {int(run['n_chunks'])}",
                        f"{run['seconds']:.1f}",
                        f"{run['pixels_per_second']:,.0f}",
                        f"{extra_mib:.0f}",
                    )
                )
                print(rows[-1], file=sys.stderr)
        lines = [
            f"ENVI cube {args.width} x {args.height} pixels x {IMAGE_WAVELENGTHS.size} bands "
            f"(350-2500 nm every 5 nm), float32 BIL, {cube_mib:.0f} MiB, 5% zero fill; "
            f"target {TARGET!r}. {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, BLAS on 1 thread. Seconds are map_image's "
            "own (read, predict, write the GeoTIFF); pixels/s counts every pixel.",
            "",
            "| configuration | window rows x windows | seconds | pixels/s | "
            "peak MiB above baseline |",
            "|---|---:|---:|---:|---:|",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
        body = "\n".join(lines)
        print(body)
        if args.update_docs:
            from _markdown import update_section

            command = "python bench/bench_image.py " + " ".join(sys.argv[1:])
            update_section(
                "bench_image",
                "## Hyperspectral image throughput (bench/bench_image.py)\n\n"
                f"Command: `{command}`. Each configuration runs in a fresh process; peak "
                "memory is its RSS high-water mark above a process that only imports the same "
                "modules and loads a model (dask: the driver's, workers excluded; the cold run "
                "includes the workers importing specsoil and loading the model).\n\n" + body,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
