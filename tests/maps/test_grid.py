"""Tests for the map grid: extent, snapping, default resolution and size limits."""

from __future__ import annotations

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.maps import make_grid


class TestMakeGrid:
    def test_covers_every_point_with_snapped_edges(self):
        rng = np.random.default_rng(0)
        x = rng.uniform(500_123.0, 510_456.0, 50)
        y = rng.uniform(6_000_321.0, 6_004_987.0, 50)
        grid = make_grid(x, y, crs="EPSG:32755", resolution=250.0)
        west, south, east, north = grid.bounds
        assert west <= x.min()
        assert east > x.max()
        assert south < y.min()
        assert north >= y.max()
        assert west % 250 == 0
        assert north % 250 == 0
        assert grid.shape == (grid.height, grid.width)
        # every point falls in a cell of the grid
        cols = np.floor((x - west) / grid.resolution)
        rows = np.floor((north - y) / grid.resolution)
        assert cols.max() < grid.width
        assert rows.max() < grid.height

    def test_cell_centres_match_transform(self):
        grid = make_grid(np.array([0.0, 1000.0]), np.array([0.0, 500.0]), crs="EPSG:3857")
        cx, cy = grid.cell_centres()
        assert cx.size == grid.width * grid.height
        transform = grid.transform()
        x0, y0 = transform @ (0.5, 0.5)  # centre of the top-left cell
        assert (cx[0], cy[0]) == pytest.approx((x0, y0))
        x1, y1 = transform @ (grid.width - 0.5, grid.height - 0.5)
        assert (cx[-1], cy[-1]) == pytest.approx((x1, y1))

    @pytest.mark.parametrize(("span", "expected"), [(20_000.0, 100.0), (37_000.0, 200.0)])
    def test_default_resolution_is_a_round_number(self, span, expected):
        grid = make_grid(np.array([0.0, span]), np.array([0.0, span / 2]), crs="EPSG:32755")
        assert grid.resolution == expected

    @pytest.mark.parametrize("resolution", [0.0, -5.0, float("nan")])
    def test_rejects_bad_resolution(self, resolution):
        with pytest.raises(SpecsoilError, match="--resolution"):
            make_grid(
                np.array([0.0, 10.0]),
                np.array([0.0, 10.0]),
                crs="EPSG:32755",
                resolution=resolution,
            )

    def test_rejects_huge_grid(self):
        with pytest.raises(SpecsoilError, match="coarser resolution"):
            make_grid(np.array([0.0, 1e6]), np.array([0.0, 1e6]), crs="EPSG:32755", resolution=1.0)

    def test_single_location_needs_resolution(self):
        with pytest.raises(SpecsoilError, match="give --resolution"):
            make_grid(np.array([5.0, 5.0]), np.array([7.0, 7.0]), crs="EPSG:32755")
        grid = make_grid(
            np.array([5.0, 5.0]), np.array([7.0, 7.0]), crs="EPSG:32755", resolution=1.0
        )
        assert grid.width >= 1
        assert grid.height >= 1
