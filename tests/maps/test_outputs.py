"""Tests for map outputs: GeoTIFF georeference read back through GDAL, PNG and HTML."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer

from specsoil.maps import (
    NODATA,
    fit_variogram,
    make_grid,
    plot_map,
    plot_variogram,
    write_geotiff,
    write_html,
)

UTM = "EPSG:32755"


@pytest.fixture
def grid_and_bands():
    rng = np.random.default_rng(0)
    x = rng.uniform(400_000, 410_000, 40)
    y = rng.uniform(6_120_000, 6_126_000, 40)
    grid = make_grid(x, y, crs=UTM, resolution=500.0)
    values = np.arange(grid.width * grid.height, dtype=np.float64).reshape(grid.shape)
    values[0, 0] = np.nan  # outside the boundary
    variance = np.full(grid.shape, 0.25)
    return x, y, grid, values, variance


class TestWriteGeotiff:
    def test_gdal_reads_crs_georeference_nodata_and_bands(self, tmp_path, grid_and_bands):
        x, y, grid, values, variance = grid_and_bands
        path = write_geotiff(
            tmp_path / "map.tif", grid, [values, variance], names=["clay", "clay kriging variance"]
        )
        with rasterio.open(path) as src:
            assert src.driver == "GTiff"
            assert src.crs.to_epsg() == 32755
            assert src.count == 2
            assert src.dtypes == ("float32", "float32")
            assert (src.width, src.height) == (grid.width, grid.height)
            assert src.nodata == NODATA
            assert src.descriptions == ("clay", "clay kriging variance")
            assert tuple(src.bounds) == pytest.approx(grid.bounds)
            assert src.res == (500.0, 500.0)
            band = src.read(1, masked=True)
            assert band.mask[0, 0]
            assert band.mask.sum() == 1
            assert np.allclose(band.filled(np.nan)[~np.isnan(values)], values[~np.isnan(values)])
            assert np.allclose(src.read(2), 0.25)
            # the pixel holding a sample is where the grid says it is
            row, col = src.index(x[0], y[0])
            assert (row, col) == (int((grid.north - y[0]) // 500), int((x[0] - grid.west) // 500))
        assert not list(tmp_path.glob(".*.tmp"))  # written atomically

    def test_band_shape_is_checked(self, tmp_path, grid_and_bands):
        _, _, grid, values, _ = grid_and_bands
        with pytest.raises(ValueError, match="grid"):
            write_geotiff(tmp_path / "m.tif", grid, [values[:, :-1]], names=["v"])
        assert not (tmp_path / "m.tif").exists()


class TestPlots:
    def test_map_png(self, tmp_path, grid_and_bands):
        x, y, grid, values, _ = grid_and_bands
        boundary = shapely.box(*grid.bounds).buffer(-100)
        path = plot_map(
            tmp_path / "map.png",
            grid,
            values,
            points_x=x,
            points_y=y,
            point_values=np.linspace(0, 1, x.size),
            label="clay (%)",
            title="clay",
            boundary=boundary,
        )
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 10_000

    def test_variogram_png(self, tmp_path):
        rng = np.random.default_rng(1)
        x, y = rng.uniform(0, 100, 100), rng.uniform(0, 100, 100)
        fit = fit_variogram(x, y, np.sin(x / 20) + rng.normal(0, 0.1, 100))
        path = plot_variogram(tmp_path / "v.png", fit, title="v", distance_unit="m")
        assert path.read_bytes()[:4] == b"\x89PNG"


class TestWriteHtml:
    def test_leaflet_map_with_layer_and_samples(self, tmp_path, grid_and_bands):
        x, y, grid, values, _ = grid_and_bands
        lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(x, y)
        point_values = np.linspace(10, 50, x.size)
        point_values[1] = np.nan
        ids = [f"S<{i}>" for i in range(x.size)]
        path = write_html(
            tmp_path / "map.html",
            grid,
            values,
            points_lon=lon,
            points_lat=lat,
            point_values=point_values,
            sample_ids=ids,
            label="clay",
        )
        text = path.read_text()
        assert "leaflet" in text.lower()
        assert "L.imageOverlay" in text
        assert "data:image/png;base64" in text
        assert text.count("L.circleMarker") == x.size
        assert "S&lt;0&gt;" in text
        assert "clay: 10" in text
        assert "clay: -" in text  # a sample without a value
        # the overlay lies where the grid is, in lon/lat
        found = re.search(r'L\.imageOverlay\(\s*"[^"]*",\s*(\[\[[^\]]*\],\s*\[[^\]]*\]\])', text)
        (south, west), (north, east) = json.loads(found.group(1))
        to_lonlat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
        lons, lats = to_lonlat.transform(
            [grid.bounds[0], grid.bounds[2], grid.bounds[0], grid.bounds[2]],
            [grid.bounds[1], grid.bounds[1], grid.bounds[3], grid.bounds[3]],
        )
        # the web-mercator image spans the UTM grid's corners (to within a fraction of a cell)
        # (cells are 500 m of a 10 x 6 km grid: 3% of the span is about half a cell)
        dlon, dlat = 0.03 * (max(lons) - min(lons)), 0.03 * (max(lats) - min(lats))
        assert west == pytest.approx(min(lons), abs=dlon)
        assert east == pytest.approx(max(lons), abs=dlon)
        assert south == pytest.approx(min(lats), abs=dlat)
        assert north == pytest.approx(max(lats), abs=dlat)
