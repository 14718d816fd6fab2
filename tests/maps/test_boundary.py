"""Tests for reading boundary polygons and clipping map grids to them."""

from __future__ import annotations

import json

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from specsoil._errors import SpecsoilError
from specsoil.maps import boundary_mask, make_grid, make_map, read_boundary

UTM = "EPSG:32755"
# a square of 146.00-146.10 E, 35.00-35.10 S, in lon/lat
SQUARE = [(146.0, -35.1), (146.1, -35.1), (146.1, -35.0), (146.0, -35.0), (146.0, -35.1)]


def _geojson(path, coordinates, kind="Polygon", crs=None):
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": kind, "coordinates": coordinates},
    }
    collection = {"type": "FeatureCollection", "features": [feature]}
    if crs:
        collection["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(collection))
    return path


def _utm(lon, lat):
    return Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(lon, lat)


class TestReadBoundary:
    def test_geojson_is_reprojected_to_the_grid_crs(self, tmp_path):
        path = _geojson(tmp_path / "b.geojson", [SQUARE])
        polygon = read_boundary(path, crs=UTM)
        expected = shapely.Polygon([_utm(*p) for p in SQUARE])
        assert polygon.geom_type == "Polygon"
        assert polygon.symmetric_difference(expected).area < 1e-6 * expected.area
        assert 1.0e8 < polygon.area < 1.2e8  # ~ 9.1 km x 11.1 km

    def test_geopackage_layers_are_dissolved(self, tmp_path):
        west = shapely.box(0, 0, 1000, 1000)
        east = shapely.box(1000, 0, 2000, 1000)
        path = tmp_path / "b.gpkg"
        pyogrio.raw.write(
            path,
            geometry=shapely.to_wkb([west, east]),
            field_data=[np.array([1, 2])],
            fields=["id"],
            geometry_type="Polygon",
            crs=UTM,
            driver="GPKG",
        )
        polygon = read_boundary(path, crs=UTM)
        assert polygon.area == pytest.approx(2.0e6)

    @pytest.mark.filterwarnings("ignore:'crs' was not provided")
    def test_shapefile_without_crs_is_taken_as_the_points_crs(self, tmp_path, caplog):
        path = tmp_path / "b.shp"
        pyogrio.raw.write(
            path,
            geometry=shapely.to_wkb([shapely.box(0, 0, 10, 10)]),
            field_data=[np.array([1])],
            fields=["id"],
            geometry_type="Polygon",
            driver="ESRI Shapefile",
        )
        polygon = read_boundary(path, crs=UTM)
        assert polygon.area == pytest.approx(100.0)
        assert "no CRS" in caplog.text

    def test_stray_lines_of_a_repaired_polygon_are_dropped(self, tmp_path):
        # a ring with a spike: make_valid returns the square plus the spike as a LineString
        spiked = [(146.0, -35.1), (146.1, -35.1), (146.1, -35.0), (146.1, -34.9)]
        spiked += [(146.1, -35.0), (146.0, -35.0), (146.0, -35.1)]
        polygon = read_boundary(_geojson(tmp_path / "spike.geojson", [spiked]), crs=UTM)
        assert polygon.geom_type == "Polygon"  # plot_map draws exteriors: lines have none
        expected = shapely.Polygon([_utm(*p) for p in SQUARE])
        assert polygon.symmetric_difference(expected).area < 1e-6 * expected.area

    @pytest.mark.filterwarnings("ignore:Non closed ring detected")
    def test_errors(self, tmp_path):
        with pytest.raises(SpecsoilError, match="not found"):
            read_boundary(tmp_path / "missing.geojson", crs=UTM)
        line = _geojson(tmp_path / "line.geojson", [[146.0, -35.0], [146.1, -35.1]], "LineString")
        with pytest.raises(SpecsoilError, match="must hold polygons"):
            read_boundary(line, crs=UTM)
        flat_ring = [(146.0, -35.0), (146.1, -35.0), (146.05, -35.0), (146.0, -35.0)]
        flat = _geojson(tmp_path / "flat.geojson", [flat_ring])
        with pytest.raises(SpecsoilError, match="enclose no area"):
            read_boundary(flat, crs=UTM)
        unclosed = _geojson(tmp_path / "open.geojson", [[*SQUARE[:-1], (146.0, -35.05)]])
        with pytest.raises(SpecsoilError, match=r"open\.geojson: cannot read the boundary"):
            read_boundary(unclosed, crs=UTM)
        junk = tmp_path / "junk.geojson"
        junk.write_text("not a geojson")
        with pytest.raises(SpecsoilError, match="cannot read the boundary"):
            read_boundary(junk, crs=UTM)


class TestBoundaryMask:
    def test_cells_inside_the_polygon(self):
        grid = make_grid(np.array([0.0, 100.0]), np.array([0.0, 100.0]), crs=UTM, resolution=10.0)
        # the hypotenuse passes between cell centres, so "centre inside" is unambiguous
        triangle = shapely.Polygon([(0, 0), (112, 0), (0, 112)])
        inside = boundary_mask(triangle, grid)
        cx, cy = grid.cell_centres()
        expected = shapely.contains_xy(triangle, cx, cy).reshape(grid.shape)
        assert np.array_equal(inside, expected)
        assert 0 < inside.sum() < inside.size

    def test_disjoint_boundary_is_refused(self):
        grid = make_grid(np.array([0.0, 100.0]), np.array([0.0, 100.0]), crs=UTM, resolution=10.0)
        with pytest.raises(SpecsoilError, match="covers none of the map grid"):
            boundary_mask(shapely.box(1e5, 1e5, 1e5 + 10, 1e5 + 10), grid)


class TestClippedMap:
    def test_map_is_nan_outside_and_filled_inside(self, tmp_path):
        rng = np.random.default_rng(0)
        lon, lat = rng.uniform(146.0, 146.1, 80), rng.uniform(-35.1, -35.0, 80)
        x, y = _utm(lon, lat)
        values = 10 + np.sin(x / 2000) + np.cos(y / 3000)
        # clip to the western half of the sampled square
        half = [(146.0, -35.1), (146.05, -35.1), (146.05, -35.0), (146.0, -35.0), (146.0, -35.1)]
        boundary = read_boundary(_geojson(tmp_path / "half.geojson", [half]), crs=UTM)
        result = make_map(
            x, y, values, crs=UTM, method="kriging", resolution=250.0, boundary=boundary, folds=0
        )
        cx, cy = result.grid.cell_centres()
        inside = shapely.contains_xy(boundary, cx, cy).reshape(result.grid.shape)
        assert np.isfinite(result.values[inside]).all()
        assert np.isnan(result.values[~inside]).all()
        assert result.variance is not None
        assert np.isnan(result.variance[~inside]).all()
        assert 0.4 < inside.mean() < 0.6
