"""``specsoil map-image``: apply a saved model to a hyperspectral image cube, into a GeoTIFF."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from specsoil.cli._common import add_output_flags, console, plan_output_file
from specsoil.data import SPECTRA_KINDS
from specsoil.export import OnnxModel
from specsoil.maps import DEFAULT_NODATA, map_image, read_wavelengths_file
from specsoil.models import SpectralModel


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``map-image``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "map-image",
        help="apply a saved model to a hyperspectral image (GeoTIFF or ENVI) into a GeoTIFF",
        description="Predict every pixel of an image cube, window by window with bounded "
        "memory, and write one float32 band per target with the image's CRS and transform. "
        "Band wavelengths come from the ENVI header (wavelength = {...}, wavelength units), "
        "band metadata 'wavelength', or band descriptions such as '1000 nm'.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="model directory written by train, or a .onnx file written by export",
    )
    parser.add_argument("--image", required=True, help="image cube: GeoTIFF, ENVI .img/.hdr")
    add_output_flags(parser, help="GeoTIFF to write")
    parser.add_argument(
        "--wavelengths",
        metavar="FILE",
        help="text file with one wavelength per band (nm, or µm with a trailing 'um'), "
        "for images whose files do not say",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="factor applied to the stored values first, e.g. 0.0001 for reflectance "
        "stored as integers x 10,000 (default 1)",
    )
    parser.add_argument(
        "--spectra-kind",
        choices=SPECTRA_KINDS,
        help="what the (scaled) values are; detected from a sample of the image when left out",
    )
    parser.add_argument(
        "--chunk-rows",
        type=int,
        metavar="N",
        help="image rows per window (default: about 16 MiB of spectra per window)",
    )
    parser.add_argument(
        "--nodata",
        type=float,
        default=DEFAULT_NODATA,
        help=f"output value of masked pixels (default {DEFAULT_NODATA:g})",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask.distributed scheduler (tcp://host:8786) to run the windows on; "
        "the workers must see the image and model at the same paths",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``specsoil map-image``."""
    image = Path(args.image)
    # An ENVI cube is a header and a data file beside it: neither may be the output.
    siblings = (image.with_suffix(".hdr"), image.with_suffix(".img"))
    out = plan_output_file(args, args.model, image, *siblings, args.wavelengths)
    is_onnx = str(args.model).lower().endswith(".onnx")
    wavelengths = read_wavelengths_file(args.wavelengths) if args.wavelengths else None
    with _progress(args) as progress:
        task = progress.add_task("map-image", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = map_image(
            args.model,
            args.image,
            out,
            loader=OnnxModel.load if is_onnx else SpectralModel.load,
            wavelengths=wavelengths,
            scale=args.scale,
            spectra_kind=args.spectra_kind,
            chunk_rows=args.chunk_rows,
            nodata=args.nodata,
            scheduler=args.scheduler,
            progress=advance,
        )
    where = f"on {result.scheduler}" if result.scheduler else "in-process"
    console().print(
        f"mapped {', '.join(result.targets)} over {result.width} x {result.height} pixels "
        f"({result.n_valid} predicted, {result.n_pixels - result.n_valid} masked as "
        f"{result.nodata:g}) in {result.n_chunks} windows {where}, {result.seconds:.1f} s "
        f"({result.pixels_per_second:,.0f} pixels/s); values taken as {result.spectra_kind} "
        f"({result.kind_reason}); written to {args.out}"
    )
    return 0


def _progress(args: argparse.Namespace) -> Progress:
    return Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=bool(args.quiet),
        transient=True,
    )
