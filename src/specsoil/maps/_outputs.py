"""Map outputs: GeoTIFF (value and variance bands), PNG with colour bar, folium HTML, variogram."""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from specsoil._atomic import atomic_path, atomic_write_text
from specsoil.maps._deps import require_maps_module
from specsoil.maps._grid import Grid
from specsoil.maps._interpolate import VariogramFit

NODATA = -9999.0
COLORMAP = "viridis"
# The interactive map carries every sample as a marker; beyond this it gets too heavy for a
# browser, so a random subset is shown (the raster layer always covers everything).
MAX_HTML_MARKERS = 5000


def _rasterio() -> Any:
    return require_maps_module("rasterio", "GeoTIFF output")


def write_geotiff(
    path: str | Path,
    grid: Grid,
    bands: Sequence[NDArray[np.float64]],
    *,
    names: Sequence[str],
) -> Path:
    """Write float32 bands to a GeoTIFF with the grid's CRS, transform and a nodata value.

    Cells that are NaN (outside the boundary) are written as ``NODATA``.

    Args:
        path: The ``.tif`` to write (atomically).
        grid: The grid the bands lie on.
        bands: Arrays of shape ``grid.shape``.
        names: One description per band (shown by ``gdalinfo`` and QGIS).
    """
    rasterio = _rasterio()
    if len(bands) != len(names):
        raise ValueError(f"{len(bands)} bands but {len(names)} names")
    stack = np.stack([np.where(np.isfinite(b), b, NODATA) for b in bands]).astype(np.float32)
    if stack.shape[1:] != grid.shape:
        raise ValueError(f"bands have shape {stack.shape[1:]}; the grid is {grid.shape}")
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": len(bands),
        "dtype": "float32",
        "crs": grid.crs,
        "transform": grid.transform(),
        "nodata": NODATA,
        "compress": "deflate",
        "predictor": 3,  # floating-point predictor: smaller files for smooth surfaces
    }
    # Tiles need multiples of 16; small grids stay striped.
    if grid.width >= 256 and grid.height >= 256:
        profile |= {"tiled": True, "blockxsize": 256, "blockysize": 256}
    final = Path(path)
    with atomic_path(final) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(stack)
        for index, name in enumerate(names, start=1):
            dst.set_band_description(index, name)
    return final


def _crs_label(crs: str) -> tuple[str, str]:
    try:
        from pyproj import CRS

        parsed = CRS.from_user_input(crs)
        unit = parsed.axis_info[0].unit_name if parsed.axis_info else ""
    except Exception:  # labels only; an unknown CRS was rejected long before
        unit = ""
    if unit in ("metre", "meter"):
        return f"easting (m, {crs})", f"northing (m, {crs})"
    if unit.startswith("degree"):
        return f"longitude ({crs})", f"latitude ({crs})"
    return f"x ({crs})", f"y ({crs})"


def plot_map(
    path: str | Path,
    grid: Grid,
    values: NDArray[np.float64],
    *,
    points_x: NDArray[np.float64],
    points_y: NDArray[np.float64],
    point_values: NDArray[np.float64] | None = None,
    label: str,
    title: str,
    boundary: Any = None,
) -> Path:
    """Save a PNG of the map with a colour bar, the sample points and the boundary outline.

    Args:
        path: The ``.png`` to write (atomically).
        grid: The grid ``values`` lies on.
        values: The mapped band, shape ``grid.shape``; NaN cells are left blank.
        points_x: Sample eastings, shape (n,).
        points_y: Sample northings, shape (n,).
        point_values: Values at the samples (drawn on the same colour scale), or None to draw
            them as plain markers.
        label: Colour bar label (property and unit).
        title: Plot title.
        boundary: A shapely (Multi)Polygon in the grid's CRS, drawn as an outline.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One colour scale for the map and the samples; kriging smooths, so the samples
    # usually span a wider range than the map and would otherwise be clipped.
    shown = [values[np.isfinite(values)]]
    if point_values is not None:
        shown.append(point_values[np.isfinite(point_values)])
    finite = np.concatenate(shown)
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    west, south, east, north = grid.bounds
    aspect = grid.height / max(grid.width, 1)
    fig, ax = plt.subplots(figsize=(7.5, max(3.5, min(9.0, 6.5 * aspect + 1.0))))
    try:
        image = ax.imshow(
            np.ma.masked_invalid(values),
            extent=(west, east, south, north),
            origin="upper",
            cmap=COLORMAP,
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
        )
        if point_values is None:
            ax.scatter(points_x, points_y, s=8, c="white", edgecolors="black", linewidths=0.4)
        else:
            ax.scatter(
                points_x,
                points_y,
                s=12,
                c=point_values,
                cmap=COLORMAP,
                vmin=vmin,
                vmax=vmax,
                edgecolors="black",
                linewidths=0.4,
            )
        if boundary is not None:
            polygons = getattr(boundary, "geoms", [boundary])
            for polygon in polygons:
                bx, by = polygon.exterior.xy
                ax.plot(bx, by, color="black", linewidth=1.0)
        fig.colorbar(image, ax=ax, label=label, shrink=0.85)
        xlabel, ylabel = _crs_label(grid.crs)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.tick_params(axis="x", labelrotation=30)
        fig.tight_layout()
        final = Path(path)
        with atomic_path(final) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return final


def plot_variogram(
    path: str | Path, fit: VariogramFit, *, title: str, distance_unit: str = "CRS units"
) -> Path:
    """Save the empirical variogram with every fitted candidate; the chosen one in bold.

    Args:
        path: The ``.png`` to write (atomically).
        fit: The fitted variogram.
        title: Plot title.
        distance_unit: Unit of the lag axis (``"m"`` for projected CRSs).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    empirical = fit.empirical
    lags = np.linspace(0.0, float(empirical.bin_centres.max()) * 1.05, 200)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    try:
        sizes = 15 + 60 * empirical.counts / empirical.counts.max()
        ax.scatter(
            empirical.bin_centres,
            empirical.gamma,
            s=sizes,
            color="black",
            zorder=3,
            label=f"empirical ({empirical.n_points} points)",
        )
        for name, (model, r2) in fit.candidates.items():
            best = name == fit.model_name
            ax.plot(
                lags,
                model.variogram(lags),
                linewidth=2.2 if best else 0.9,
                linestyle="-" if best else "--",
                label=f"{name} R²={r2:.3f}" + (" (used)" if best else ""),
            )
        ax.set_xlabel(f"lag distance ({distance_unit})")
        ax.set_ylabel("semivariance")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        final = Path(path)
        with atomic_path(final) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return final


def _to_web_mercator(grid: Grid, values: NDArray[np.float64]) -> tuple[NDArray[np.float64], Any]:
    """Reproject a band to EPSG:3857, the CRS Leaflet draws image overlays in."""
    _rasterio()  # a clear error when the extra is missing
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    west, south, east, north = grid.bounds
    with warnings.catch_warnings():  # rasterio's own Affine `*` (it, not us, is deprecated)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        transform, width, height = calculate_default_transform(
            grid.crs, "EPSG:3857", grid.width, grid.height, west, south, east, north
        )
    out = np.full((height, width), np.nan, dtype=np.float64)
    reproject(
        source=np.where(np.isfinite(values), values, np.nan),
        destination=out,
        src_transform=grid.transform(),
        src_crs=grid.crs,
        dst_transform=transform,
        dst_crs="EPSG:3857",
        src_nodata=np.nan,
        dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )
    return out, transform


def write_html(
    path: str | Path,
    grid: Grid,
    values: NDArray[np.float64],
    *,
    points_lon: NDArray[np.float64],
    points_lat: NDArray[np.float64],
    point_values: NDArray[np.float64],
    sample_ids: Sequence[str],
    label: str,
    random_state: int = 0,
) -> Path:
    """Save an interactive folium (Leaflet) map: the layer plus the samples with their values.

    Args:
        path: The ``.html`` to write (atomically).
        grid: The grid ``values`` lies on (any CRS; reprojected for display).
        values: The mapped band, shape ``grid.shape``.
        points_lon: Sample longitudes (EPSG:4326), shape (n,).
        points_lat: Sample latitudes (EPSG:4326), shape (n,).
        point_values: Values shown in the markers' popups, shape (n,); NaN shows "-".
        sample_ids: Sample identifiers for the popups.
        label: Property name for the legend and popups.
        random_state: Seed for the marker subset when there are more than
            ``MAX_HTML_MARKERS`` samples.
    """
    folium = require_maps_module("folium", "HTML maps")
    from branca.colormap import LinearColormap  # installed with folium
    from matplotlib import colormaps

    Transformer = require_maps_module("pyproj", "HTML maps").Transformer

    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    mercator, transform = _to_web_mercator(grid, values)
    cmap = colormaps[COLORMAP]
    scaled = (mercator - vmin) / (vmax - vmin or 1.0)
    rgba = cmap(np.nan_to_num(scaled, nan=0.0))  # (h, w, 4) floats in 0..1
    rgba[..., 3] = np.where(np.isfinite(mercator), 0.75, 0.0)  # transparent outside
    height, width = mercator.shape
    to_lonlat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    west, north = transform @ (0, 0)
    east, south = transform @ (width, height)
    (lon_w, lon_e), (lat_s, lat_n) = to_lonlat.transform([west, east], [south, north])
    fmap = folium.Map(tiles="OpenStreetMap", control_scale=True)
    folium.raster_layers.ImageOverlay(
        image=(rgba * 255).astype(np.uint8),
        bounds=[[lat_s, lon_w], [lat_n, lon_e]],
        name=f"{label} (interpolated)",
        interactive=False,
        zindex=1,
    ).add_to(fmap)
    colours = [
        "#{:02x}{:02x}{:02x}".format(*(int(255 * c) for c in cmap(t)[:3]))
        for t in np.linspace(0, 1, 9)
    ]
    legend = LinearColormap(colours, vmin=vmin, vmax=vmax, caption=label)
    legend.add_to(fmap)
    samples = folium.FeatureGroup(name="samples")
    shown = np.arange(points_lon.size)
    if shown.size > MAX_HTML_MARKERS:
        rng = np.random.default_rng(random_state)
        shown = np.sort(rng.choice(shown.size, MAX_HTML_MARKERS, replace=False))
    for i in shown.tolist():
        value = point_values[i]
        text = "-" if not np.isfinite(value) else f"{value:.4g}"
        folium.CircleMarker(
            location=[float(points_lat[i]), float(points_lon[i])],
            radius=4,
            weight=1,
            color="black",
            fill=True,
            fill_color=legend(value) if np.isfinite(value) else "#ffffff",
            fill_opacity=0.9,
            popup=folium.Popup(
                f"<b>{html.escape(str(sample_ids[i]))}</b><br>{html.escape(label)}: {text}",
                max_width=250,
            ),
        ).add_to(samples)
    samples.add_to(fmap)
    folium.LayerControl().add_to(fmap)
    fmap.fit_bounds([[lat_s, lon_w], [lat_n, lon_e]])
    final = Path(path)
    atomic_write_text(final, fmap.get_root().render())
    return final
