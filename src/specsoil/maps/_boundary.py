"""Boundary polygons (Shapefile, GeoPackage, GeoJSON) that clip a map grid."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.maps._deps import require_maps_module
from specsoil.maps._grid import Grid

logger = logging.getLogger(__name__)


def _require(module: str) -> Any:
    return require_maps_module(module, "boundaries")


def read_boundary(path: str | Path, *, crs: str) -> Any:
    """Read every polygon in a vector file, dissolve them and reproject to ``crs``.

    A file without a CRS (e.g. a Shapefile without its ``.prj``) is taken to be in ``crs``
    already, with a warning in the log.

    Args:
        path: Shapefile, GeoPackage or GeoJSON (anything GDAL/OGR reads).
        crs: The CRS of the map grid, e.g. ``"EPSG:32755"``.

    Returns:
        One shapely (Multi)Polygon in ``crs``.

    Raises:
        SpecsoilError: If the file is missing or unreadable, or holds no polygon.
    """
    pyogrio = _require("pyogrio")
    shapely = _require("shapely")
    source = Path(path)
    if not source.exists():
        raise SpecsoilError(f"{source}: boundary file not found")
    try:
        meta, _, wkb, _ = pyogrio.raw.read(source, read_geometry=True, columns=[])
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, ...
        raise SpecsoilError(f"{source}: cannot read the boundary ({exc})") from None
    try:
        decoded = shapely.from_wkb(wkb)
    except shapely.errors.GEOSException as exc:  # e.g. a ring that does not close
        raise SpecsoilError(f"{source}: cannot read the boundary ({exc})") from None
    geometries = [g for g in decoded if g is not None and not g.is_empty]
    polygons = [g for g in geometries if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        kinds = sorted({g.geom_type for g in geometries}) or ["nothing"]
        raise SpecsoilError(f"{source}: the boundary must hold polygons; found {kinds}")
    # make_valid turns a spike or a collapsed ring into a stray line or point next to the
    # polygon; only the polygonal parts bound an area.
    parts = shapely.get_parts([shapely.make_valid(g) for g in polygons])
    geometry = shapely.union_all([p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")])
    if geometry.is_empty:
        raise SpecsoilError(f"{source}: the boundary polygons enclose no area")
    source_crs = meta.get("crs")
    if not source_crs:
        logger.warning("%s: the boundary has no CRS; assuming the points' CRS %s", source, crs)
        return geometry
    return reproject_geometry(geometry, source_crs, crs)


def reproject_geometry(geometry: Any, source_crs: str, target_crs: str) -> Any:
    """Reproject a shapely geometry between CRSs (x = easting/longitude, always)."""
    pyproj = _require("pyproj")
    shapely = _require("shapely")
    transformer = pyproj.Transformer.from_crs(source_crs, target_crs, always_xy=True)
    if transformer.source_crs == transformer.target_crs:
        return geometry

    def convert(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        xs, ys = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([xs, ys])

    return shapely.transform(geometry, convert)


def boundary_mask(geometry: Any, grid: Grid) -> NDArray[np.bool_]:
    """True for the cells whose centre lies inside ``geometry``; shape ``grid.shape``.

    Raises:
        SpecsoilError: If the boundary covers none of the grid's cells.
    """
    features = _require("rasterio.features")
    inside: NDArray[np.bool_] = features.geometry_mask(
        [geometry], out_shape=grid.shape, transform=grid.transform(), invert=True
    )
    if not inside.any():
        raise SpecsoilError(
            f"the boundary covers none of the map grid (grid bounds {grid.bounds} in "
            f"{grid.crs}); check that it is the right file and CRS"
        )
    return inside
