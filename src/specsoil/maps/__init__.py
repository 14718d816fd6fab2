"""Soil maps: interpolated property maps and models applied to hyperspectral images."""

# Kept here for map-image callers; the parsing lives with the other readers in data.
from specsoil.data import read_wavelengths_file
from specsoil.maps._boundary import boundary_mask, read_boundary, reproject_geometry
from specsoil.maps._grid import Grid, make_grid
from specsoil.maps._image import (
    DEFAULT_NODATA,
    ImageBands,
    ImageMapResult,
    PixelModel,
    map_image,
    read_image_bands,
)
from specsoil.maps._interpolate import (
    METHODS,
    EmpiricalVariogram,
    Method,
    VariogramFit,
    cross_validate_interpolation,
    estimate_variogram,
    fit_variogram,
    idw,
    ordinary_kriging,
)
from specsoil.maps._mapping import MapResult, make_map
from specsoil.maps._outputs import NODATA, plot_map, plot_variogram, write_geotiff, write_html

__all__ = [
    "DEFAULT_NODATA",
    "METHODS",
    "NODATA",
    "EmpiricalVariogram",
    "Grid",
    "ImageBands",
    "ImageMapResult",
    "MapResult",
    "Method",
    "PixelModel",
    "VariogramFit",
    "boundary_mask",
    "cross_validate_interpolation",
    "estimate_variogram",
    "fit_variogram",
    "idw",
    "make_grid",
    "make_map",
    "map_image",
    "ordinary_kriging",
    "plot_map",
    "plot_variogram",
    "read_boundary",
    "read_image_bands",
    "read_wavelengths_file",
    "reproject_geometry",
    "write_geotiff",
    "write_html",
]
