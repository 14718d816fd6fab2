"""Sample coordinates: reading, validating and reprojecting them (pyproj, always x then y).

Coordinates are longitude/latitude in WGS84 by default, read from ``GPS_LONG``/``GPS_LAT``
when those columns exist, or projected x/y in any CRS that pyproj knows, named by an EPSG
code. Every problem a user can cause (a missing or non-numeric value, a latitude beyond 90°,
longitude and latitude columns given the wrong way round, a CRS that pyproj does not know,
points far outside the area a projected CRS is defined for) raises a ``SpecsoilError``
that names the file, the data row and the column.

pyproj is an optional dependency (the ``maps`` extra): it is imported only where a CRS has
to be parsed or coordinates reprojected, so plain WGS84 coordinates can be read without it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._table import SpectraTable

if TYPE_CHECKING:
    from pyproj import CRS

__all__ = [
    "DEFAULT_COORDINATE_COLUMNS",
    "WGS84",
    "Coordinates",
    "normalise_crs",
    "read_coordinates",
    "utm_crs",
]

WGS84 = "EPSG:4326"
# The LUCAS topsoil survey names; used when the user names no columns.
DEFAULT_COORDINATE_COLUMNS = ("GPS_LONG", "GPS_LAT")

# How far (degrees) points may lie outside a projected CRS's published area of use before
# we call it an error: UTM zones are 6° wide and surveys often straddle a zone edge, so only
# points far away (swapped columns, degrees given as metres, the wrong zone) are refused.
_AREA_OF_USE_MARGIN_DEG = 5.0
# At most this many offending rows are listed in one error message.
_ROWS_SHOWN = 5


def _require_pyproj() -> Any:
    """Import pyproj, or say which extra installs it."""
    try:
        import pyproj
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise SpecsoilError(
            "coordinate reference systems need pyproj: pip install 'specsoil[maps]'"
        ) from error
    return pyproj


def _parse_crs(crs: str | int) -> CRS:
    """Parse an EPSG code or any pyproj user input into a CRS, with a clear error."""
    pyproj = _require_pyproj()
    text = str(crs).strip()
    if text.isdigit():  # a bare code such as 32755 means EPSG:32755
        text = f"EPSG:{text}"
    try:
        parsed: CRS = pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError as error:
        raise SpecsoilError(
            f"unknown coordinate reference system {crs!r}; expected an EPSG code such as "
            f"EPSG:4326 (longitude/latitude) or EPSG:32755 (UTM zone 55S)"
        ) from error
    return parsed


def normalise_crs(crs: str | int) -> str:
    """Return the canonical name of ``crs``: ``"EPSG:N"`` when it has an EPSG code.

    Args:
        crs: An EPSG code (``4326``, ``"4326"``, ``"epsg:4326"``) or anything pyproj parses.

    Raises:
        SpecsoilError: If pyproj does not know the CRS, or pyproj is not installed.
    """
    if str(crs).strip().upper() in {WGS84, "4326"}:
        return WGS84  # the default needs no pyproj
    parsed = _parse_crs(crs)
    code = parsed.to_epsg()
    return f"EPSG:{code}" if code is not None else str(parsed.to_string())


def _is_geographic(crs: str) -> bool:
    if crs == WGS84:
        return True
    return bool(_parse_crs(crs).is_geographic)


def utm_crs(longitude: float, latitude: float) -> str:
    """The WGS84 UTM zone (``"EPSG:326NN"`` north, ``"EPSG:327NN"`` south) of a point.

    Uses the regular 6° zones (the Norway and Svalbard exceptions are ignored: any zone is
    a valid projection there, only slightly less conformal).
    """
    zone = math.floor((longitude + 180.0) / 6.0) % 60 + 1
    return f"EPSG:{32700 + zone if latitude < 0 else 32600 + zone}"


@dataclass(frozen=True, eq=False)
class Coordinates:
    """Sample positions in one coordinate reference system, one per table row.

    Attributes:
        x: Easting, or longitude for geographic CRSs, shape (n_samples,).
        y: Northing, or latitude for geographic CRSs, shape (n_samples,).
        crs: Normalised CRS name, e.g. ``"EPSG:4326"`` or ``"EPSG:32755"``.
        columns: The table columns the values came from (x column, y column).
    """

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    crs: str
    columns: tuple[str, str]

    def __post_init__(self) -> None:
        if self.x.shape != self.y.shape or self.x.ndim != 1:
            raise ValueError(
                f"x and y must be 1-D and the same length; got {self.x.shape} and {self.y.shape}"
            )

    @property
    def n_samples(self) -> int:
        """Number of positions."""
        return int(self.x.shape[0])

    @property
    def xy(self) -> NDArray[np.float64]:
        """Positions as one (n_samples, 2) array of x, y."""
        return np.column_stack([self.x, self.y])

    @property
    def is_geographic(self) -> bool:
        """True for longitude/latitude in degrees, False for projected x/y."""
        return _is_geographic(self.crs)

    @property
    def units(self) -> str:
        """Unit name of the x axis (``"degree"``, ``"metre"``, ...)."""
        if self.crs == WGS84:
            return "degree"
        return str(_parse_crs(self.crs).axis_info[0].unit_name)

    def subset(self, rows: NDArray[np.intp] | list[int]) -> Coordinates:
        """Return the positions of ``rows`` (0-based), as ``SpectraTable.subset`` does."""
        index = np.asarray(rows, dtype=np.intp)
        return Coordinates(x=self.x[index], y=self.y[index], crs=self.crs, columns=self.columns)

    def to_crs(self, crs: str | int) -> Coordinates:
        """Reproject into ``crs`` (pyproj, x then y whatever the CRS's axis order).

        Raises:
            SpecsoilError: If pyproj does not know ``crs`` or a point cannot be projected
                into it (it lies outside the projection's domain).
        """
        target = normalise_crs(crs)
        if target == self.crs:
            return self
        pyproj = _require_pyproj()
        transformer = pyproj.Transformer.from_crs(self.crs, target, always_xy=True)
        x, y = transformer.transform(self.x, self.y)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        bad = ~(np.isfinite(x) & np.isfinite(y))
        if bad.any():
            rows = ", ".join(str(int(r) + 1) for r in np.flatnonzero(bad)[:_ROWS_SHOWN])
            raise SpecsoilError(
                f"coordinates in columns {self.columns[0]!r}/{self.columns[1]!r} cannot be "
                f"projected from {self.crs} to {target}: {int(bad.sum())} point(s) fall "
                f"outside its domain (data rows {rows})"
            )
        return Coordinates(x=x, y=y, crs=target, columns=self.columns)

    def projected(self) -> Coordinates:
        """Project geographic coordinates into the local UTM zone; projected ones are unchanged.

        The zone is the one containing the centre of the points (circular mean longitude,
        so a survey across the antimeridian gets a sensible zone); the hemisphere follows
        the mean latitude. Distances are then in metres.
        """
        if not self.is_geographic:
            return self
        lon = np.deg2rad(self.x)
        centre_lon = float(np.rad2deg(np.arctan2(np.sin(lon).mean(), np.cos(lon).mean())))
        return self.to_crs(utm_crs(centre_lon, float(np.mean(self.y))))


def _rows_text(mask: NDArray[np.bool_], ids: pd.Series) -> str:
    """Name the first offending rows: ``data row 3 (sample 'S3'), ...``."""
    rows = np.flatnonzero(mask)
    shown = [f"data row {r + 1} (sample {ids.iloc[r]!r})" for r in rows[:_ROWS_SHOWN]]
    more = f" and {len(rows) - _ROWS_SHOWN} more" if len(rows) > _ROWS_SHOWN else ""
    return ", ".join(shown) + more


def _numeric_column(table: SpectraTable, name: str, role: str) -> NDArray[np.float64]:
    raw = table.column(name)
    values = pd.to_numeric(raw, errors="coerce")
    missing = values.isna().to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        shown = raw.iloc[first]
        what = "is empty" if pd.isna(shown) or str(shown).strip() == "" else "is not a number"
        raise SpecsoilError(
            f"{table.source}: {role} column {name!r}: {int(missing.sum())} value(s) missing or "
            f"not numbers, first at data row {first + 1} "
            f"(sample {table.sample_ids.iloc[first]!r}): {shown!r} {what}; "
            "every sample needs coordinates"
        )
    out = values.to_numpy(dtype=np.float64)
    infinite = ~np.isfinite(out)
    if infinite.any():
        raise SpecsoilError(
            f"{table.source}: {role} column {name!r}: infinite value at "
            f"{_rows_text(infinite, table.sample_ids)}"
        )
    return out


def _looks_like(name: str, *hints: str) -> bool:
    """True when a word of the column name starts with a hint (``GPS_LAT``, ``latitude``)."""
    words = re.split(r"[^a-z]+", name.lower())
    return any(word.startswith(hint) for word in words for hint in hints)


def _check_geographic(
    table: SpectraTable, x: NDArray[np.float64], y: NDArray[np.float64], columns: tuple[str, str]
) -> None:
    x_name, y_name = columns
    if _looks_like(x_name, "lat") and _looks_like(y_name, "lon", "lng"):
        raise SpecsoilError(
            f"{table.source}: the x (longitude) column is {x_name!r} and the y (latitude) column "
            f"is {y_name!r}: they look swapped; use --x {y_name} --y {x_name}"
        )
    lon_bad = np.abs(x) > 180.0
    lat_bad = np.abs(y) > 90.0
    if not (lon_bad.any() or lat_bad.any()):
        return
    if lat_bad.any() and not lon_bad.any() and np.all(np.abs(x) <= 90.0):
        raise SpecsoilError(
            f"{table.source}: latitude column {y_name!r} holds values beyond ±90° "
            f"({_rows_text(lat_bad, table.sample_ids)}) while longitude column {x_name!r} "
            f"stays within ±90°: the columns look swapped; use --x {y_name} --y {x_name}"
        )
    hint = ""
    if np.median(np.abs(np.concatenate([x, y]))) > 1000.0:
        hint = (
            "; these look like projected coordinates in metres: name their CRS with "
            "--crs EPSG:N (e.g. EPSG:32755 for UTM zone 55S)"
        )
    if lat_bad.any():
        raise SpecsoilError(
            f"{table.source}: latitude column {y_name!r} must lie within ±90°; out of range at "
            f"{_rows_text(lat_bad, table.sample_ids)}{hint}"
        )
    raise SpecsoilError(
        f"{table.source}: longitude column {x_name!r} must lie within ±180°; out of range at "
        f"{_rows_text(lon_bad, table.sample_ids)}{hint}"
    )


def _outside_area(
    crs: CRS, x: NDArray[np.float64], y: NDArray[np.float64]
) -> NDArray[np.bool_] | None:
    """Rows whose points fall (well) outside the CRS's area of use; None when it has none."""
    area = crs.area_of_use
    if area is None:
        return None
    pyproj = _require_pyproj()
    transformer = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
    with np.errstate(invalid="ignore"):
        lon, lat = transformer.transform(x, y)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    margin = _AREA_OF_USE_MARGIN_DEG
    west, south, east, north = area.bounds
    if west > east:  # the area crosses the antimeridian
        in_lon = (lon >= west - margin) | (lon <= east + margin)
    else:
        in_lon = (lon >= west - margin) & (lon <= east + margin)
    inside = np.isfinite(lon) & np.isfinite(lat) & in_lon
    inside &= (lat >= south - margin) & (lat <= north + margin)
    return np.asarray(~inside)


def _check_projected(
    table: SpectraTable,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    columns: tuple[str, str],
    crs: CRS,
    crs_name: str,
) -> None:
    outside = _outside_area(crs, x, y)
    if outside is None or not outside.any():
        return
    x_name, y_name = columns
    swapped = _outside_area(crs, y, x)
    if swapped is not None and not swapped.any():
        hint = f"; the columns look swapped: use --x {y_name} --y {x_name}"
    elif np.all(np.abs(x) <= 180.0) and np.all(np.abs(y) <= 90.0):
        hint = "; they look like longitude/latitude in degrees: use --crs EPSG:4326"
    else:
        hint = "; check the CRS and that x is the easting column and y the northing"
    area = crs.area_of_use
    where = f" ({area.name})" if area is not None else ""
    raise SpecsoilError(
        f"{table.source}: coordinates {x_name!r}/{y_name!r} fall outside the area of use of "
        f"{crs_name}{where} at {_rows_text(outside, table.sample_ids)}{hint}"
    )


def read_coordinates(
    table: SpectraTable,
    *,
    x: str | None = None,
    y: str | None = None,
    crs: str | int | None = None,
) -> Coordinates:
    """Read and check the position of every sample in ``table``.

    Args:
        table: The spectra table; coordinates are metadata columns.
        x: Column of eastings or longitudes; default ``GPS_LONG`` when it exists.
        y: Column of northings or latitudes; default ``GPS_LAT`` when it exists.
        crs: The CRS of the values, an EPSG code; default EPSG:4326 (WGS84 lon/lat).

    Returns:
        The coordinates, in ``crs`` (normalised to ``"EPSG:N"``).

    Raises:
        SpecsoilError: If a column is missing, a value is missing or not a number,
            longitude/latitude are out of range or swapped, the CRS is unknown, or
            projected points fall far outside the CRS's area of use. The message
            names the file, column and data row.
    """
    if (x is None) != (y is None):
        given, flag = ("--x", "--y") if x is not None else ("--y", "--x")
        raise SpecsoilError(
            f"{table.source}: {given} was given without {flag}; name both coordinate columns"
        )
    if x is None or y is None:
        x, y = DEFAULT_COORDINATE_COLUMNS
        available = list(table.metadata.columns)
        if x not in available or y not in available:
            raise SpecsoilError(
                f"{table.source}: no coordinate columns: {x}/{y} not found; name them with "
                f"--x COL --y COL (and --crs EPSG:N for projected x/y); columns: {available}"
            )
    if x == y:
        raise SpecsoilError(f"{table.source}: --x and --y both name column {x!r}")
    columns = (x, y)
    crs_name = normalise_crs(crs if crs is not None else WGS84)
    x_values = _numeric_column(table, x, "x" if crs is not None else "longitude (x)")
    y_values = _numeric_column(table, y, "y" if crs is not None else "latitude (y)")
    if _is_geographic(crs_name):
        _check_geographic(table, x_values, y_values, columns)
    else:
        _check_projected(table, x_values, y_values, columns, _parse_crs(crs_name), crs_name)
    return Coordinates(x=x_values, y=y_values, crs=crs_name, columns=columns)
