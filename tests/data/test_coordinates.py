"""Coordinates: defaults, CRS handling (southern hemisphere) and clear errors for bad values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import Coordinates, SpectraTable, normalise_crs, read_coordinates, utm_crs

pyproj = pytest.importorskip("pyproj")

# Sites around Hobart / central Victoria: UTM zone 55S (central meridian 147°E).
LON = np.array([147.0, 147.33, 146.8, 145.5, 148.2])
LAT = np.array([-37.0, -42.88, -41.4, -36.7, -38.1])


def _table(columns: dict[str, object], source: str = "plots.csv") -> SpectraTable:
    metadata = pd.DataFrame(columns)
    metadata.insert(0, "sample_id", [f"S{i + 1}" for i in range(len(metadata))])
    n = len(metadata)
    return SpectraTable(
        X=np.zeros((n, 3), dtype=np.float32),
        wavelengths=np.array([500.0, 600.0, 700.0]),
        metadata=metadata,
        source=source,
    )


def _mga55() -> tuple[np.ndarray, np.ndarray]:
    """The sites in GDA94 / MGA zone 55 (EPSG:28355), computed with pyproj."""
    transformer = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:28355", always_xy=True)
    easting, northing = transformer.transform(LON, LAT)
    return np.asarray(easting), np.asarray(northing)


def test_defaults_to_gps_columns_in_wgs84() -> None:
    coordinates = read_coordinates(_table({"GPS_LONG": LON, "GPS_LAT": LAT}))
    assert coordinates.crs == "EPSG:4326"
    assert coordinates.columns == ("GPS_LONG", "GPS_LAT")
    assert coordinates.is_geographic
    np.testing.assert_array_equal(coordinates.x, LON)
    np.testing.assert_array_equal(coordinates.y, LAT)
    assert coordinates.xy.shape == (5, 2)


def test_missing_default_columns_say_which_flags_to_use() -> None:
    with pytest.raises(SpecsoilError, match=r"plots\.csv: no coordinate columns.*--x COL --y COL"):
        read_coordinates(_table({"lon": LON, "lat": LAT}))


def test_one_flag_without_the_other_is_refused() -> None:
    with pytest.raises(SpecsoilError, match="--x was given without --y"):
        read_coordinates(_table({"lon": LON, "lat": LAT}), x="lon")


def test_unknown_column_is_named() -> None:
    with pytest.raises(SpecsoilError, match="no column 'easting'"):
        read_coordinates(_table({"lon": LON, "lat": LAT}), x="easting", y="lat")


@pytest.mark.parametrize("code", [32755, "32755", "epsg:32755", "EPSG:32755"])
def test_crs_is_normalised(code: str | int) -> None:
    assert normalise_crs(code) == "EPSG:32755"


def test_unknown_crs_is_refused() -> None:
    with pytest.raises(SpecsoilError, match=r"unknown coordinate reference system 'EPSG:999999'"):
        read_coordinates(_table({"lon": LON, "lat": LAT}), x="lon", y="lat", crs="EPSG:999999")


def test_southern_utm_round_trip_with_pyproj() -> None:
    wgs84 = read_coordinates(_table({"GPS_LONG": LON, "GPS_LAT": LAT}))
    utm = wgs84.to_crs("EPSG:32755")
    assert utm.crs == "EPSG:32755"
    assert not utm.is_geographic
    assert utm.units == "metre"
    # On the central meridian the easting is the false easting; south of the equator the
    # northing counts down from the 10,000 km false northing.
    assert utm.x[0] == pytest.approx(500_000.0, abs=1e-6)
    assert np.all((utm.y > 5_000_000.0) & (utm.y < 10_000_000.0))
    back = utm.to_crs(4326)
    np.testing.assert_allclose(back.x, LON, atol=1e-9)
    np.testing.assert_allclose(back.y, LAT, atol=1e-9)


def test_projected_picks_the_local_southern_utm_zone() -> None:
    utm = read_coordinates(_table({"GPS_LONG": LON, "GPS_LAT": LAT})).projected()
    assert utm.crs == "EPSG:32755"
    assert utm.projected() is utm  # already projected: unchanged


def test_utm_zone_across_the_antimeridian() -> None:
    coordinates = Coordinates(
        x=np.array([179.9, -179.9, 179.95]),
        y=np.array([-17.0, -17.1, -16.9]),
        crs="EPSG:4326",
        columns=("lon", "lat"),
    )
    assert coordinates.projected().crs in {"EPSG:32760", "EPSG:32701"}
    assert utm_crs(-3.7, 40.4) == "EPSG:32630"


def test_projected_mga_columns_read_and_reproject() -> None:
    easting, northing = _mga55()
    table = _table({"easting": easting, "northing": northing})
    mga = read_coordinates(table, x="easting", y="northing", crs=28355)
    assert mga.crs == "EPSG:28355"
    assert mga.columns == ("easting", "northing")
    assert not mga.is_geographic
    back = mga.to_crs("EPSG:4326")
    # GDA94 and WGS84 differ by under 2 m in Australia; pyproj's default transformation
    # between them is the null one, so this round trip is exact up to rounding.
    np.testing.assert_allclose(back.x, LON, atol=1e-7)
    np.testing.assert_allclose(back.y, LAT, atol=1e-7)


def test_swapped_eastings_and_northings_are_detected() -> None:
    easting, northing = _mga55()
    table = _table({"easting": easting, "northing": northing})
    with pytest.raises(
        SpecsoilError, match=r"outside the area of use of EPSG:28355.*use --x easting --y northing"
    ):
        read_coordinates(table, x="northing", y="easting", crs=28355)


def test_degrees_given_with_a_projected_crs_get_a_hint() -> None:
    table = _table({"lon": LON, "lat": LAT})
    with pytest.raises(SpecsoilError, match=r"look like longitude/latitude.*--crs EPSG:4326"):
        read_coordinates(table, x="lon", y="lat", crs="EPSG:32755")


def test_swapped_lat_lon_values_are_detected() -> None:
    # The file's GPS_LONG column holds latitudes and GPS_LAT longitudes.
    table = _table({"GPS_LONG": LAT, "GPS_LAT": LON})
    with pytest.raises(
        SpecsoilError,
        match=r"latitude column 'GPS_LAT' holds values beyond ±90°.*data row 1 \(sample 'S1'\)"
        r".*look swapped; use --x GPS_LAT --y GPS_LONG",
    ):
        read_coordinates(table)


def test_swapped_lat_lon_flags_are_detected() -> None:
    table = _table({"GPS_LONG": LON, "GPS_LAT": LAT})
    with pytest.raises(SpecsoilError, match=r"look swapped; use --x GPS_LONG --y GPS_LAT"):
        read_coordinates(table, x="GPS_LAT", y="GPS_LONG")


def test_nan_row_is_named() -> None:
    lat = LAT.copy()
    lat[2] = np.nan
    with pytest.raises(
        SpecsoilError,
        match=r"plots\.csv: latitude \(y\) column 'GPS_LAT': 1 value\(s\) missing.*"
        r"data row 3 \(sample 'S3'\).*is empty",
    ):
        read_coordinates(_table({"GPS_LONG": LON, "GPS_LAT": lat}))


def test_text_value_is_named() -> None:
    lon = LON.astype(object)
    lon[4] = "147 E"
    with pytest.raises(SpecsoilError, match=r"data row 5 \(sample 'S5'\): '147 E' is not a number"):
        read_coordinates(_table({"GPS_LONG": lon, "GPS_LAT": LAT}))


def test_out_of_range_latitude_is_named() -> None:
    lat = LAT.copy()
    lat[1] = -95.0
    lon = LON.copy()
    lon[1] = 170.0  # a longitude beyond 90° rules out a plain swap
    with pytest.raises(
        SpecsoilError, match=r"latitude column 'GPS_LAT' must lie within ±90°.*data row 2"
    ):
        read_coordinates(_table({"GPS_LONG": lon, "GPS_LAT": lat}))


def test_out_of_range_longitude_is_named() -> None:
    lon = LON.copy()
    lon[3] = 200.0
    with pytest.raises(SpecsoilError, match=r"longitude column 'GPS_LONG'.*data row 4"):
        read_coordinates(_table({"GPS_LONG": lon, "GPS_LAT": LAT}))


def test_metres_without_a_crs_suggest_one() -> None:
    easting, northing = _mga55()
    table = _table({"GPS_LONG": easting, "GPS_LAT": northing})
    with pytest.raises(SpecsoilError, match=r"look like projected coordinates.*--crs EPSG:N"):
        read_coordinates(table)


def test_subset_keeps_the_crs() -> None:
    coordinates = read_coordinates(_table({"GPS_LONG": LON, "GPS_LAT": LAT}))
    part = coordinates.subset([3, 1])
    np.testing.assert_array_equal(part.x, LON[[3, 1]])
    assert part.crs == coordinates.crs
    assert part.columns == coordinates.columns
