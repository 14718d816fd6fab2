"""The raster grid a map is interpolated on: extent, resolution, CRS and affine transform."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError

# Cells along the longer side when no resolution is given: fine enough to show structure,
# small enough that kriging a few thousand points takes seconds.
DEFAULT_CELLS = 200
# A grid beyond this would take minutes to krige and hundreds of MB to hold.
MAX_CELLS = 25_000_000


@dataclass(frozen=True, slots=True)
class Grid:
    """A north-up raster grid in a projected (or geographic) CRS.

    Attributes:
        west: X of the grid's left edge, in CRS units.
        north: Y of the grid's top edge, in CRS units.
        resolution: Cell size in CRS units (metres for projected CRSs); square cells.
        width: Number of columns.
        height: Number of rows (row 0 is the northern one).
        crs: The CRS of ``west``/``north``, e.g. ``"EPSG:32755"``.
    """

    west: float
    north: float
    resolution: float
    width: int
    height: int
    crs: str

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), the shape of a band."""
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the grid's outer edges."""
        return (
            self.west,
            self.north - self.height * self.resolution,
            self.west + self.width * self.resolution,
            self.north,
        )

    def transform(self) -> object:
        """The rasterio ``Affine`` transform from (col, row) to (x, y) of the cell corner."""
        from rasterio.transform import Affine

        # Built directly: rasterio's from_origin multiplies Affines with the deprecated `*`.
        return Affine(self.resolution, 0.0, self.west, 0.0, -self.resolution, self.north)

    def cell_centres(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Cell-centre coordinates, flattened in row-major (north to south) order.

        Returns:
            x and y, each shape (height * width,).
        """
        xs = self.west + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.north - (np.arange(self.height) + 0.5) * self.resolution
        xx, yy = np.meshgrid(xs, ys)  # (height, width)
        return xx.ravel(), yy.ravel()


def make_grid(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    crs: str,
    resolution: float | None = None,
    bounds: tuple[float, float, float, float] | None = None,
) -> Grid:
    """A grid covering the points' extent (or ``bounds``) at ``resolution``.

    The extent is snapped outwards to whole cells, so every point lies inside a cell.

    Args:
        x: Point eastings (or longitudes), shape (n_points,).
        y: Point northings (or latitudes), shape (n_points,).
        crs: CRS of the coordinates.
        resolution: Cell size in CRS units; default: the longer side over
            ``DEFAULT_CELLS``.
        bounds: (west, south, east, north) to cover instead of the points' extent.

    Raises:
        SpecsoilError: If the resolution is not positive or the grid would be too large.
    """
    if bounds is None:
        if x.size == 0:
            raise SpecsoilError("cannot build a map grid: there are no points")
        bounds = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
    west, south, east, north = bounds
    span = max(east - west, north - south)
    if resolution is None:
        if span <= 0:
            raise SpecsoilError("all points share one location; give --resolution for the grid")
        resolution = _nice(span / DEFAULT_CELLS)
    if not math.isfinite(resolution) or resolution <= 0:
        raise SpecsoilError(f"--resolution must be a positive number; got {resolution}")
    # Snap to multiples of the resolution so neighbouring maps at the same resolution align.
    west = math.floor(west / resolution) * resolution
    north = math.ceil(north / resolution) * resolution
    width = max(1, math.ceil((east - west) / resolution) + (east % resolution == 0))
    height = max(1, math.ceil((north - south) / resolution) + (south % resolution == 0))
    if width * height > MAX_CELLS:
        raise SpecsoilError(
            f"--resolution {resolution:g} gives a {width} x {height} grid "
            f"({width * height:,} cells, more than {MAX_CELLS:,}); choose a coarser resolution"
        )
    return Grid(
        west=float(west),
        north=float(north),
        resolution=float(resolution),
        width=int(width),
        height=int(height),
        crs=crs,
    )


def _nice(step: float) -> float:
    """Round a cell size to the nearest 1, 2 or 5 times a power of ten (on a log scale)."""
    power = 10.0 ** math.floor(math.log10(step))
    return min((m * power for m in (1.0, 2.0, 5.0, 10.0)), key=lambda c: abs(math.log(c / step)))
