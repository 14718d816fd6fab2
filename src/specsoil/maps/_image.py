"""Apply a spectral model to a hyperspectral image cube, chunk by chunk, into a GeoTIFF.

The cube (GeoTIFF or ENVI, anything GDAL opens through rasterio) is read in windows of whole
rows, so memory stays bounded by one window however large the scene. Each window's pixels
become a :class:`specsoil.data.SpectraTable` and go through the model's own ``predict``, so
they are aligned onto the model's grid exactly as table spectra are. The windows run in this
process by default, or as tasks on a dask.distributed cluster given its scheduler address.

Band wavelengths are the ``wavelengths`` argument (e.g. ``specsoil map-image --wavelengths
FILE``), else what the file says, read by the image readers of ``specsoil.data`` (ENVI
header, band metadata or band descriptions; see ``specsoil.data._image_bands``). An ENVI
``bbl`` (bad band list) drops the bands marked 0.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from specsoil._atomic import atomic_path
from specsoil._errors import SpecsoilError
from specsoil.data import (
    SPECTRA_KINDS,
    ImageTags,
    SpectraKind,
    SpectraTable,
    detect_spectra_kind,
    image_band_wavelengths,
    lower_keys,
    parse_envi_list,
    wavelengths_to_nm,
)
from specsoil.data import to_absorbance as _to_absorbance
from specsoil.maps._deps import require_maps_module
from specsoil.maps._outputs import NODATA
from specsoil.models import SpectralModel, align_spectra

logger = logging.getLogger(__name__)

# Written where a pixel is masked (image nodata, non-finite or zero spectra) or not predicted;
# the same value as the interpolated maps' nodata.
DEFAULT_NODATA = NODATA
# Default window size: the float32 spectra of one window stay near this many bytes. Model
# pipelines work in float64 with several temporaries (~20x this at peak for plsr's band
# averaging), so larger windows cost memory and gain little speed (bench/bench_image.py).
DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024
# Seconds to wait for a dask scheduler to answer.
CONNECT_TIMEOUT_S = 30.0
# Pixels per side of the decimated grid read to decide the spectra kind for the whole image.
_KIND_SAMPLE_SIDE = 64
# GDAL's block cache (MB) while mapping. Its default, 5% of RAM, would let a large scene
# fill gigabytes of cache that one pass over the rows never reuses.
_GDAL_CACHE_MB = 64
# After --scale, no reflectance (0-1 or %) or absorbance reaches this: the values are scaled
# integers that need a scale factor.
_SCALED_INTEGER_ABOVE = 100.0

# align_spectra logs one line per call; once per image is enough (see _quiet_alignment).
_ALIGN_LOGGER = "specsoil.models._spectral_model"


class PixelModel(Protocol):
    """What :func:`map_image` needs from a model: a SpectralModel or an exported OnnxModel."""

    @property
    def name(self) -> str:
        """The model's name, for messages."""
        ...

    @property
    def targets(self) -> list[str]:
        """Predicted properties, one output band each."""
        ...

    @property
    def wavelengths(self) -> NDArray[np.float64]:
        """The model's grid in nm."""
        ...

    def predict(self, table: SpectraTable) -> NDArray[np.float64]:
        """Predictions of shape (table.n_samples, len(targets))."""
        ...


ModelLoader = Callable[[str], PixelModel]


@dataclass(frozen=True, slots=True)
class ImageBands:
    """The spectral bands of an image cube and which of them are used.

    Attributes:
        wavelengths: Band centres in nm, one per band of the file, in file order.
        source: Where the wavelengths came from, for messages.
        indexes: 1-based band numbers to read, sorted by wavelength, bad bands left out.
        nodata: The image's nodata value (first band's), or None.
    """

    wavelengths: NDArray[np.float64]
    source: str
    indexes: tuple[int, ...]
    nodata: float | None

    @property
    def used_wavelengths(self) -> NDArray[np.float64]:
        """Wavelengths of the bands read, strictly ascending."""
        return self.wavelengths[np.asarray(self.indexes, dtype=np.intp) - 1]


@dataclass(frozen=True, slots=True)
class _ChunkPlan:
    """Everything a window needs besides the model: small and picklable for dask tasks."""

    image: str
    indexes: tuple[int, ...]
    wavelengths: NDArray[np.float64]
    nodata: float | None
    scale: float
    spectra_kind: SpectraKind
    out_nodata: float
    width: int


@dataclass(frozen=True, slots=True)
class ImageMapResult:
    """What :func:`map_image` wrote.

    Attributes:
        out: The GeoTIFF written.
        targets: One band per target, in this order (also the band descriptions).
        width: Pixels per row.
        height: Rows.
        n_valid: Pixels predicted; the others hold ``nodata``.
        n_chunks: Windows processed.
        chunk_rows: Rows per window.
        seconds: Wall time of reading, predicting and writing.
        spectra_kind: What the image values were taken to be (after ``scale``).
        kind_reason: How that was decided.
        wavelength_source: Where the band wavelengths came from.
        nodata: The output nodata value.
        scheduler: The dask scheduler address, or None for in-process.
    """

    out: Path
    targets: list[str]
    width: int
    height: int
    n_valid: int
    n_chunks: int
    chunk_rows: int
    seconds: float
    spectra_kind: SpectraKind
    kind_reason: str
    wavelength_source: str
    nodata: float
    scheduler: str | None = None

    @property
    def n_pixels(self) -> int:
        """Pixels in the image."""
        return self.width * self.height

    @property
    def pixels_per_second(self) -> float:
        """Throughput over all pixels, masked ones included."""
        return self.n_pixels / self.seconds if self.seconds > 0 else float("inf")


def require_rasterio(what: str) -> Any:
    """Import and return rasterio, or raise a clear error naming the extra to install."""
    return require_maps_module("rasterio", what)


def read_image_bands(image: str | Path, *, wavelengths: ArrayLike | None = None) -> ImageBands:
    """Find the band wavelengths of an image cube and the bands to use.

    Args:
        image: A GeoTIFF, ENVI ``.img``/``.hdr`` pair or any raster GDAL opens.
        wavelengths: Band centres in nm (or µm, converted), one per band, overriding what
            the file says.

    Returns:
        The bands, sorted by wavelength, with ENVI bad bands left out.

    Raises:
        SpecsoilError: If the file cannot be opened, says nothing about wavelengths, or
            they do not match the band count or repeat.
    """
    rasterio = require_rasterio("reading image cubes")
    path = _image_file(image)
    try:
        with rasterio.open(path) as dataset:
            return _image_bands(dataset, path, wavelengths)
    except rasterio.errors.RasterioIOError as exc:
        raise SpecsoilError(f"{path}: cannot open the image ({exc})") from None


def map_image(
    model: PixelModel | str | Path,
    image: str | Path,
    out: str | Path,
    *,
    loader: ModelLoader | None = None,
    wavelengths: ArrayLike | None = None,
    scale: float = 1.0,
    spectra_kind: SpectraKind | None = None,
    chunk_rows: int | None = None,
    nodata: float = DEFAULT_NODATA,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImageMapResult:
    """Predict every pixel of an image cube and write one GeoTIFF band per target.

    Pixels are masked (written as ``nodata``) where any band equals the image's nodata
    value or is not finite, where every band is zero, and, for reflectance, where a band is
    not positive (it has no absorbance). The other pixels go through ``model.predict`` on a
    SpectraTable per window, so they are resampled onto the model's grid exactly as table
    spectra are. The output has the image's CRS and transform, float32, and is written to a
    temporary file renamed onto ``out`` at the end.

    Args:
        model: A fitted model (SpectralModel, OnnxModel, ...) or the path of one, opened
            with ``loader``.
        image: The image cube (GeoTIFF, ENVI or anything GDAL reads), with band wavelengths
            (see the module docstring for the forms accepted).
        out: The GeoTIFF to write.
        loader: Opens a model path (default :meth:`SpectralModel.load`); on a cluster each
            worker process calls it once and keeps the model.
        wavelengths: Band centres overriding the file's, one per band.
        scale: Factor applied to the stored values first, e.g. 0.0001 for reflectance
            stored as integers x 10,000.
        spectra_kind: What the scaled values are; detected from a sample of the image when
            None (as for tables).
        chunk_rows: Rows per window; None picks ~16 MiB of float32 spectra per window, on
            the image's or the model's grid, whichever has more bands.
        nodata: Output value for masked pixels.
        scheduler: A dask.distributed scheduler address (``tcp://host:8786``): windows then
            run as tasks there. The workers must see ``image`` at the same path.
        progress: Called with (rows done, rows in all) after each window.

    Returns:
        What was written and how long it took.

    Raises:
        SpecsoilError: If the image has no usable wavelengths, does not cover the model's
            range, holds values that are not spectra, or an argument is out of range.
    """
    rasterio = require_rasterio("specsoil map-image")
    started = time.perf_counter()
    if not (math.isfinite(scale) and scale > 0):
        raise SpecsoilError(f"scale must be a positive number; got {scale}")
    if chunk_rows is not None and chunk_rows < 1:
        raise SpecsoilError(f"chunk_rows must be >= 1; got {chunk_rows}")
    if spectra_kind is not None and spectra_kind not in SPECTRA_KINDS:
        raise SpecsoilError(
            f"spectra_kind must be one of {list(SPECTRA_KINDS)}; got {spectra_kind!r}"
        )
    model_path: str | None = None
    if isinstance(model, (str, Path)):
        model_path = str(Path(model).resolve())
        loader = loader or SpectralModel.load
        model = loader(model_path)
    image_path = _image_file(image).resolve()
    out_path = Path(out)
    try:
        dataset = rasterio.open(image_path)
    except rasterio.errors.RasterioIOError as exc:
        raise SpecsoilError(f"{image}: cannot open the image ({exc})") from None
    with dataset, rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB):
        if dataset.crs is None:
            logger.warning("%s has no CRS: the map will not be georeferenced", image)
        bands = _image_bands(dataset, Path(image), wavelengths)
        _check_coverage(bands, model, source=str(image))
        kind, reason = _decide_kind(dataset, bands, scale, spectra_kind, source=str(image))
        # Size windows by the wider of the two grids: spectra are resampled onto the model's.
        n_bands = max(len(bands.indexes), int(np.asarray(model.wavelengths).size))
        rows = chunk_rows or _default_chunk_rows(dataset.width, n_bands)
        rows = min(rows, dataset.height)
        plan = _ChunkPlan(
            image=str(image_path),
            indexes=bands.indexes,
            wavelengths=bands.used_wavelengths,
            nodata=bands.nodata,
            scale=float(scale),
            spectra_kind=kind,
            out_nodata=float(nodata),
            width=dataset.width,
        )
        profile = _output_profile(dataset, n_targets=len(model.targets), rows=rows, nodata=nodata)
        starts = list(range(0, dataset.height, rows))
        logger.info(
            "image %s: %d x %d pixels, %d of %d bands (%g-%g nm, from %s), %s; "
            "%d windows of %d rows",
            image,
            dataset.width,
            dataset.height,
            len(bands.indexes),
            dataset.count,
            plan.wavelengths[0],
            plan.wavelengths[-1],
            bands.source,
            kind,
            len(starts),
            rows,
        )
        with atomic_path(out_path) as tmp, rasterio.open(tmp, "w", **profile) as target:
            for band, name in enumerate(model.targets, start=1):
                target.set_band_description(band, name)
            target.update_tags(
                specsoil_model=model.name,
                specsoil_image=str(image),
                specsoil_spectra_kind=kind,
                specsoil_scale=f"{scale:g}",
            )
            n_valid = 0
            done = 0
            height = dataset.height
            if scheduler is None:
                with _quiet_alignment():
                    for start in starts:
                        count = min(rows, height - start)
                        predicted, valid = _predict_window(dataset, model, plan, start, count)
                        _write_window(target, predicted, start)
                        n_valid += valid
                        done += count
                        if progress is not None:
                            progress(done, height)
            else:
                for start, predicted, valid in _run_on_cluster(
                    scheduler, model, model_path, loader, plan, starts, rows, height
                ):
                    _write_window(target, predicted, start)
                    n_valid += valid
                    done += predicted.shape[1]
                    if progress is not None:
                        progress(done, height)
        width, height = dataset.width, dataset.height
    return ImageMapResult(
        out=out_path,
        targets=list(model.targets),
        width=width,
        height=height,
        n_valid=n_valid,
        n_chunks=len(starts),
        chunk_rows=rows,
        seconds=time.perf_counter() - started,
        spectra_kind=kind,
        kind_reason=reason,
        wavelength_source=bands.source,
        nodata=float(nodata),
        scheduler=scheduler,
    )


def _image_file(image: str | Path) -> Path:
    """The file to open: an ENVI ``.hdr`` stands for its data file (GDAL opens only that)."""
    path = Path(image)
    if path.suffix.lower() == ".hdr":
        for suffix in ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw"):
            data = path.with_suffix(suffix)
            if data.is_file():
                return data
        raise SpecsoilError(f"{path}: ENVI header without its data file (same name, .img)")
    if not path.exists():
        raise SpecsoilError(f"{path}: no such image file")
    return path


# --- wavelengths ---------------------------------------------------------------------------


def _image_bands(dataset: Any, path: Path, given: ArrayLike | None) -> ImageBands:
    count = int(dataset.count)
    envi = lower_keys(dataset.tags(ns="ENVI"))
    if given is not None:
        values = np.asarray(given, dtype=np.float64).ravel()
        wavelengths, source = wavelengths_to_nm(values, None, source=str(path)), "given"
    else:
        found = image_band_wavelengths(path, _image_tags(dataset, envi, path))
        if found is None:
            raise SpecsoilError(
                f"{path}: no band wavelengths found; the image needs an ENVI header "
                "'wavelength = {...}', band metadata 'wavelength', or band descriptions "
                "that are wavelengths (e.g. '1000 nm'); or give them with --wavelengths FILE"
            )
        wavelengths, source = found
    if wavelengths.size != count:
        raise SpecsoilError(
            f"{path}: {wavelengths.size} wavelengths ({source}) for {count} bands; "
            "expected one per band"
        )
    if not np.isfinite(wavelengths).all() or (wavelengths <= 0).any():
        raise SpecsoilError(f"{path}: wavelengths ({source}) must be positive numbers")
    keep = np.ones(count, dtype=bool)
    if "bbl" in envi:
        flags = parse_envi_list(envi["bbl"], source=str(path), key="bbl")
        if flags.size == count:
            keep = flags != 0
    if not keep.any():
        raise SpecsoilError(f"{path}: the ENVI bad band list 'bbl' marks every band as bad")
    order = np.flatnonzero(keep)[np.argsort(wavelengths[keep], kind="stable")]
    ordered = wavelengths[order]
    repeats = ordered[1:][np.diff(ordered) <= 0]
    if repeats.size:
        raise SpecsoilError(
            f"{path}: band wavelengths ({source}) repeat: {sorted(set(repeats.tolist()))[:5]} "
            "nm; each band needs its own wavelength"
        )
    nodata = dataset.nodatavals[0] if dataset.nodatavals else None
    return ImageBands(
        wavelengths=wavelengths,
        source=source,
        indexes=tuple(int(i) + 1 for i in order),
        nodata=None if nodata is None else float(nodata),
    )


def _image_tags(dataset: Any, envi: Mapping[str, str], path: Path) -> ImageTags:
    """What GDAL says about the bands, for the image readers of ``specsoil.data``."""
    count = int(dataset.count)
    return ImageTags(
        source=str(path),
        envi=envi,
        bands=[lower_keys(dataset.tags(b)) for b in range(1, count + 1)],
        imagery=[lower_keys(dataset.tags(b, ns="IMAGERY")) for b in range(1, count + 1)],
        descriptions=list(dataset.descriptions),
    )


# --- checks before the first window ----------------------------------------------------------


def _check_coverage(bands: ImageBands, model: PixelModel, *, source: str) -> None:
    """Fail before any window is read if the image cannot be aligned onto the model's grid."""
    grid = bands.used_wavelengths
    probe = SpectraTable(
        X=np.ones((1, grid.size), dtype=np.float32),
        wavelengths=grid,
        metadata=pd.DataFrame(index=pd.RangeIndex(1)),
        source=f"{source} ({bands.source})",
    )
    # Not quiet: its "resampling ..." line, said once here, holds for every window.
    align_spectra(probe, np.asarray(model.wavelengths, dtype=np.float64), model_name=model.name)


def _decide_kind(
    dataset: Any,
    bands: ImageBands,
    scale: float,
    declared: SpectraKind | None,
    *,
    source: str,
) -> tuple[SpectraKind, str]:
    """One spectra kind for the whole image, from a decimated sample when not declared."""
    height = min(dataset.height, _KIND_SAMPLE_SIDE)
    width = min(dataset.width, _KIND_SAMPLE_SIDE)
    # A decimated read: GDAL picks every n-th pixel, so this costs at most 64 x 64 spectra.
    sample = dataset.read(list(bands.indexes), out_shape=(len(bands.indexes), height, width))
    spectra = sample.reshape(len(bands.indexes), -1).T.astype(np.float32)
    bad = _masked(spectra, bands.nodata, None)
    spectra = spectra[~bad] * np.float32(scale)
    if spectra.size == 0:
        if declared is None:
            raise SpecsoilError(
                f"{source}: no valid pixel in a sample of the image to tell reflectance from "
                "absorbance; give the kind with --spectra-kind"
            )
        return declared, "declared"
    high = float(spectra.max())
    if high > _SCALED_INTEGER_ABOVE:
        raise SpecsoilError(
            f"{source}: values reach {high:g} after scale {scale:g}, too large for "
            "reflectance or absorbance; for reflectance stored as integers x 10,000 pass "
            "--scale 0.0001"
        )
    positive = (spectra > 0).all(axis=1)
    if declared is not None:
        kind, reason = declared, "declared"
    else:
        # Reflectance images often hold a few values <= 0 in noisy (water vapour) bands;
        # those would read as "negative, so absorbance" to the table heuristic.
        usable = spectra[positive] if positive.mean() >= 0.5 else spectra
        kind, reason = detect_spectra_kind(usable, bands.used_wavelengths)
        reason = f"detected from {usable.shape[0]} sampled pixels: {reason}"
    if kind != "absorbance" and not positive.all():
        _warn_non_positive(spectra, positive, bands, source)
    return kind, reason


def _warn_non_positive(
    spectra: NDArray[np.float32], positive: NDArray[np.bool_], bands: ImageBands, source: str
) -> None:
    """Say which bands will mask pixels: reflectance <= 0 has no absorbance."""
    share = (spectra <= 0).mean(axis=0)
    worst = np.argsort(share)[::-1][:5]
    listed = ", ".join(
        f"{bands.used_wavelengths[i]:g} nm ({share[i]:.0%})" for i in worst if share[i] > 0
    )
    logger.warning(
        "%s: %.0f%% of sampled pixels have a band <= 0 and will be masked (no absorbance "
        "of reflectance <= 0); most often %s. Mark such bands bad in the ENVI header (bbl)",
        source,
        100 * (1 - positive.mean()),
        listed,
    )


def _default_chunk_rows(width: int, n_bands: int) -> int:
    return max(1, DEFAULT_CHUNK_BYTES // max(1, width * n_bands * 4))


def _output_profile(dataset: Any, *, n_targets: int, rows: int, nodata: float) -> dict[str, Any]:
    # Strips that divide the window height: every window writes whole strips, so no strip
    # is compressed twice and windows may arrive in any order (dask).
    strip = math.gcd(rows, 64)
    return {
        "driver": "GTiff",
        "width": dataset.width,
        "height": dataset.height,
        "count": n_targets,
        "dtype": "float32",
        "crs": dataset.crs,
        "transform": dataset.transform,
        "nodata": nodata,
        "blockysize": strip,
        "compress": "deflate",
        "predictor": 3,
        "BIGTIFF": "IF_SAFER",
    }


# --- one window ------------------------------------------------------------------------------


def _masked(
    spectra: NDArray[np.floating[Any]], nodata: float | None, kind: SpectraKind | None
) -> NDArray[np.bool_]:
    """Pixels (rows of ``spectra``) that cannot be predicted."""
    bad = ~np.isfinite(spectra).all(axis=1)
    if nodata is not None and math.isfinite(nodata):
        bad |= (spectra == spectra.dtype.type(nodata)).any(axis=1)
    bad |= (spectra == 0).all(axis=1)  # fill outside the scene footprint
    if kind is not None and kind != "absorbance":
        bad |= (spectra <= 0).any(axis=1)  # no log10(1/R)
    return np.asarray(bad, dtype=np.bool_)


def _predict_window(
    dataset: Any, model: PixelModel, plan: _ChunkPlan, start: int, count: int
) -> tuple[NDArray[np.float32], int]:
    """Predict rows ``start`` to ``start + count``: (n_targets, count, width) and valid pixels."""
    from rasterio.windows import Window

    window = Window(0, start, plan.width, count)
    cube = dataset.read(list(plan.indexes), window=window)  # (bands, count, width)
    spectra = np.ascontiguousarray(cube.reshape(cube.shape[0], -1).T, dtype=np.float32)
    del cube
    bad = _masked(spectra, plan.nodata, plan.spectra_kind)
    n_targets = len(model.targets)
    out = np.full((n_targets, count * plan.width), plan.out_nodata, dtype=np.float32)
    valid = np.flatnonzero(~bad)
    if valid.size:
        # All valid (the usual case inside a scene): no second copy of the window.
        pixels = spectra if valid.size == spectra.shape[0] else spectra[valid]
        del spectra
        if plan.scale != 1.0:
            pixels *= np.float32(plan.scale)
        _to_absorbance(pixels, plan.spectra_kind, out=pixels)
        table = SpectraTable(
            X=pixels,
            wavelengths=plan.wavelengths,
            metadata=pd.DataFrame(index=pd.RangeIndex(valid.size)),
            source=f"{plan.image} rows {start + 1}-{start + count}",
            spectra_kind=plan.spectra_kind,
        )
        predicted = np.asarray(model.predict(table), dtype=np.float64).T  # (n_targets, n_valid)
        predicted = np.where(np.isfinite(predicted), predicted, plan.out_nodata)
        out[:, valid] = predicted
    return out.reshape(n_targets, count, plan.width), int(valid.size)


def _write_window(target: Any, predicted: NDArray[np.float32], start: int) -> None:
    from rasterio.windows import Window

    window = Window(0, start, predicted.shape[2], predicted.shape[1])
    target.write(predicted, window=window)


# --- dask.distributed --------------------------------------------------------------------------

# Models loaded by worker processes: one load per process and model. The key holds the
# file's inode and mtime, so a model retrained at the same path is loaded afresh.
_WORKER_MODELS: dict[tuple[str, str, int, int], PixelModel] = {}
_WORKER_MODELS_LOCK = threading.Lock()


def _worker_model(path: str, loader: ModelLoader) -> PixelModel:
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise SpecsoilError(
            f"{path}: a dask worker cannot see the model ({exc.strerror}); workers need the "
            "model and the image at the same paths as this machine"
        ) from None
    name = f"{getattr(loader, '__module__', '')}.{getattr(loader, '__qualname__', loader)}"
    key = (name, path, stat.st_ino, stat.st_mtime_ns)
    with _WORKER_MODELS_LOCK:
        if key not in _WORKER_MODELS:
            _WORKER_MODELS[key] = loader(path)
        return _WORKER_MODELS[key]


def _cluster_task(
    model: PixelModel | None,
    model_path: str | None,
    loader: ModelLoader | None,
    plan: _ChunkPlan,
    start: int,
    count: int,
) -> tuple[int, NDArray[np.float32], int]:
    """One window on a dask worker: open the image there, predict, return the rows."""
    import rasterio

    if model is None:
        if model_path is None or loader is None:
            raise ValueError("a cluster task needs a model or a model path and loader")
        model = _worker_model(model_path, loader)
    if not os.path.exists(plan.image):
        raise SpecsoilError(
            f"{plan.image}: a dask worker cannot see the image; workers need the model and "
            "the image at the same paths as this machine"
        )
    with (
        rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB),
        rasterio.open(plan.image) as dataset,
        _quiet_alignment(),
    ):
        predicted, valid = _predict_window(dataset, model, plan, start, count)
    return start, predicted, valid


def _run_on_cluster(
    address: str,
    model: PixelModel,
    model_path: str | None,
    loader: ModelLoader | None,
    plan: _ChunkPlan,
    starts: Sequence[int],
    rows: int,
    height: int,
) -> Iterator[tuple[int, NDArray[np.float32], int]]:
    """Run the windows as dask tasks; yield them as they finish, a bounded number in flight."""
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise SpecsoilError(
            "--scheduler needs dask.distributed, which is not installed; install it with: "
            "pip install 'specsoil[distributed]'"
        ) from exc
    try:
        client = Client(address, set_as_default=False, timeout=CONNECT_TIMEOUT_S)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as exc:  # ValueError: a malformed address ("host" alone)
        raise SpecsoilError(f"cannot reach the dask scheduler at {address!r} ({exc})") from None
    with client:
        # A model on disk is loaded by each worker; one in memory is shipped once to all.
        shipped: Any = None
        if model_path is None:
            shipped = client.scatter(model, broadcast=True)  # type: ignore[no-untyped-call]
        n_threads = max(1, sum(client.nthreads().values()))  # type: ignore[no-untyped-call]
        # Two windows per worker thread keep every worker busy while bounding what waits
        # here to be written.
        in_flight = 2 * n_threads
        pending = iter(starts)

        def submit(start: int) -> Any:
            return client.submit(
                _cluster_task,
                shipped,
                model_path,
                loader,
                plan,
                start,
                min(rows, height - start),
                pure=False,
            )

        first = [submit(s) for s in itertools.islice(pending, in_flight)]
        queue = as_completed(first, loop=client.loop)  # type: ignore[no-untyped-call]
        for future in queue:
            result: tuple[int, NDArray[np.float32], int] = future.result()
            future.release()
            following = next(pending, None)
            if following is not None:
                queue.add(submit(following))  # type: ignore[no-untyped-call]
            yield result


# --- logging -----------------------------------------------------------------------------------

_QUIET = threading.local()


class _AlignmentFilter(logging.Filter):
    """Drops align_spectra's records in threads inside :func:`_quiet_alignment`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_QUIET, "on", False)


_ALIGNMENT_FILTER = _AlignmentFilter()


@contextlib.contextmanager
def _quiet_alignment() -> Iterator[None]:
    """Silence the "resampling ..." line that every window would repeat.

    A thread-local flag read by a filter, not a logger level: dask runs windows in several
    threads of one process, and a level set by one would leak into the others.
    """
    logging.getLogger(_ALIGN_LOGGER).addFilter(_ALIGNMENT_FILTER)  # no-op when already there
    previous = getattr(_QUIET, "on", False)
    _QUIET.on = True
    try:
        yield
    finally:
        _QUIET.on = previous
