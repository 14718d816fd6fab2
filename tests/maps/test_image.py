"""``map_image``: a spectral model applied to GeoTIFF and ENVI image cubes, window by window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402

from specsoil._errors import SpecsoilError  # noqa: E402
from specsoil.data import SpectraTable, read_spectra, to_absorbance  # noqa: E402
from specsoil.maps import (  # noqa: E402
    map_image,
    read_image_bands,
    read_wavelengths_file,
)
from specsoil.models import SpectralModel  # noqa: E402

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"
TARGETS = ["clay_pct", "total_carbon_pct"]
CRS = "EPSG:32755"  # WGS 84 / UTM 55S: projected, southern hemisphere
TRANSFORM = Affine(2.0, 0.0, 600_000.0, 0.0, -2.0, 6_100_000.0)
HEIGHT, WIDTH = 7, 9


@pytest.fixture(scope="module")
def table() -> SpectraTable:
    return read_spectra(GEEVES_SMALL, spectra_kind="reflectance")


@pytest.fixture(scope="module")
def model(table) -> SpectralModel:
    return SpectralModel.fit(table, TARGETS, recipe="plsr", params={"max_components": 6})


def reflectance_cube(table: SpectraTable) -> np.ndarray:
    """(bands, HEIGHT, WIDTH) reflectance: the 60 soils, then 3 pixels to be masked."""
    reflectance = (10.0 ** -table.X.astype(np.float64)).astype(np.float32)  # (60, bands)
    pixels = np.empty((HEIGHT * WIDTH, reflectance.shape[1]), dtype=np.float32)
    pixels[:60] = reflectance
    pixels[60] = -1.0  # nodata value in every band
    pixels[61] = reflectance[0]
    pixels[61, 4] = np.nan  # one missing band
    pixels[62] = 0.0  # fill outside the footprint
    return pixels.T.reshape(-1, HEIGHT, WIDTH)


def write_geotiff(path: Path, cube: np.ndarray, descriptions: list[str] | None, **extra) -> Path:
    profile = {
        "driver": "GTiff",
        "width": WIDTH,
        "height": HEIGHT,
        "count": cube.shape[0],
        "dtype": cube.dtype.name,
        "crs": CRS,
        "transform": TRANSFORM,
        **extra,
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(cube)
        for band, text in enumerate(descriptions or [], start=1):
            dataset.set_band_description(band, text)
    return path


def write_envi(path: Path, cube: np.ndarray, envi_tags: dict[str, str], **extra) -> Path:
    profile = {
        "driver": "ENVI",
        "width": WIDTH,
        "height": HEIGHT,
        "count": cube.shape[0],
        "dtype": cube.dtype.name,
        "crs": CRS,
        "transform": TRANSFORM,
        **extra,
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(cube)
        dataset.update_tags(ns="ENVI", **envi_tags)
    return path


def envi_list(values) -> str:
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


def expected(model, cube: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
    """SpectralModel.predict on the 60 valid pixels' spectra, as a table would give them."""
    pixels = cube.reshape(cube.shape[0], -1).T[:60].astype(np.float32)
    table = SpectraTable(
        X=to_absorbance(pixels, "reflectance"),
        wavelengths=np.asarray(wavelengths, dtype=np.float64),
        metadata=pd.DataFrame(index=pd.RangeIndex(60)),
        source="expected",
    )
    return model.predict(table)


def read_output(path: Path):
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.profile, dataset.descriptions


def check_map(path: Path, model, want: np.ndarray, nodata: float = -9999.0) -> None:
    values, profile, descriptions = read_output(path)
    assert values.shape == (len(TARGETS), HEIGHT, WIDTH)
    assert profile["dtype"] == "float32"
    assert profile["nodata"] == nodata
    assert rasterio.crs.CRS.from_user_input(profile["crs"]) == rasterio.crs.CRS.from_string(CRS)
    assert profile["transform"] == TRANSFORM
    assert list(descriptions) == TARGETS
    pixels = values.reshape(len(TARGETS), -1).T
    np.testing.assert_allclose(pixels[:60], want, rtol=1e-4, atol=1e-4)
    assert (pixels[60:] == nodata).all()


def test_geotiff_with_wavelength_descriptions_matches_predict(tmp_path, table, model):
    cube = reflectance_cube(table)
    image = write_geotiff(
        tmp_path / "cube.tif", cube, [f"{w:g} nm" for w in table.wavelengths], nodata=-1.0
    )
    result = map_image(model, image, tmp_path / "clay.tif", chunk_rows=2)
    check_map(tmp_path / "clay.tif", model, expected(model, cube, table.wavelengths))
    assert result.n_chunks == 4  # 2 + 2 + 2 + 1 rows
    assert result.n_valid == 60
    assert result.spectra_kind == "reflectance"
    assert result.wavelength_source == "band descriptions"
    assert result.n_pixels == HEIGHT * WIDTH
    assert result.pixels_per_second > 0


def test_envi_in_micrometres_on_another_grid_is_resampled_like_a_table(tmp_path, table, model):
    # Every other band, in micrometres, band order shuffled: sorted and resampled onto the
    # model's 10 nm grid as align_spectra does for table spectra.
    cube = reflectance_cube(table)[::2]
    wavelengths = table.wavelengths[::2]
    if wavelengths[-1] != table.wavelengths[-1]:
        cube = np.concatenate([cube, reflectance_cube(table)[-1:]])
        wavelengths = np.append(wavelengths, table.wavelengths[-1])
    order = np.random.default_rng(1).permutation(wavelengths.size)
    image = write_envi(
        tmp_path / "cube.img",
        cube[order],
        {"wavelength": envi_list(wavelengths[order] / 1000), "wavelength_units": "Micrometers"},
        nodata=-1.0,
    )
    bands = read_image_bands(image)
    assert bands.source == "ENVI header"
    np.testing.assert_allclose(bands.used_wavelengths, wavelengths)
    result = map_image(model, image, tmp_path / "out.tif", chunk_rows=3)
    check_map(tmp_path / "out.tif", model, expected(model, cube, wavelengths))
    assert result.n_valid == 60


def test_geotiff_band_tags_in_micrometres(tmp_path, table, model):
    cube = reflectance_cube(table)
    image = write_geotiff(tmp_path / "cube.tif", cube, None, nodata=-1.0)
    with rasterio.open(image, "r+") as dataset:
        for band, w in enumerate(table.wavelengths, start=1):
            dataset.update_tags(band, WAVELENGTH=f"{w / 1000:g}", wavelength_units="micrometers")
    bands = read_image_bands(image)
    assert bands.source == "band metadata"
    np.testing.assert_allclose(bands.used_wavelengths, table.wavelengths)
    map_image(model, image, tmp_path / "out.tif")
    check_map(tmp_path / "out.tif", model, expected(model, cube, table.wavelengths))


def test_envi_header_stands_for_its_data_file_and_missing_files_are_named(tmp_path, table):
    image = write_envi(
        tmp_path / "cube.img", reflectance_cube(table), {"wavelength": envi_list(table.wavelengths)}
    )
    assert read_image_bands(tmp_path / "cube.hdr").source == "ENVI header"
    assert image.with_suffix(".hdr").is_file()
    (tmp_path / "lonely.hdr").write_text("ENVI\n")
    with pytest.raises(SpecsoilError, match="ENVI header without its data file"):
        read_image_bands(tmp_path / "lonely.hdr")
    with pytest.raises(SpecsoilError, match=r"missing\.tif: no such image file"):
        read_image_bands(tmp_path / "missing.tif")


def test_envi_bad_bands_are_left_out(tmp_path, table, model):
    cube = reflectance_cube(table).copy()
    bbl = np.ones(cube.shape[0], dtype=int)
    bbl[100:105] = 0
    cube[100:105] = 7.0  # garbage in the bad bands must not reach the model
    image = write_envi(
        tmp_path / "cube.img",
        cube,
        {"wavelength": envi_list(table.wavelengths), "bbl": envi_list(bbl)},
        nodata=-1.0,
    )
    bands = read_image_bands(image)
    assert len(bands.indexes) == cube.shape[0] - 5
    map_image(model, image, tmp_path / "out.tif", spectra_kind="reflectance")
    keep = bbl == 1
    check_map(tmp_path / "out.tif", model, expected(model, cube[keep], table.wavelengths[keep]))


def test_scaled_integers_need_scale(tmp_path, table, model):
    reflectance = reflectance_cube(table)
    scaled = np.rint(np.nan_to_num(reflectance, nan=0.0).clip(0, None) * 10_000).astype("uint16")
    scaled[:, 60 // WIDTH, 60 % WIDTH] = 65535  # the nodata pixel
    image = write_geotiff(
        tmp_path / "cube.tif", scaled, [f"{w:g}" for w in table.wavelengths], nodata=65535
    )
    with pytest.raises(SpecsoilError, match=r"--scale 0\.0001"):
        map_image(model, image, tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()
    result = map_image(model, image, tmp_path / "out.tif", scale=1e-4, nodata=-1.0)
    want = expected(model, scaled.astype(np.float32) * np.float32(1e-4), table.wavelengths)
    values, profile, _ = read_output(tmp_path / "out.tif")
    assert profile["nodata"] == -1.0
    pixels = values.reshape(len(TARGETS), -1).T
    np.testing.assert_allclose(pixels[:60], want, rtol=1e-4, atol=1e-4)
    # Pixel 61 had one band zeroed by the cast: reflectance 0 has no absorbance -> masked.
    assert (pixels[60:] == -1.0).all()
    assert result.n_valid == 60


def test_negative_noise_in_a_band_still_reads_as_reflectance(tmp_path, table, model, caplog):
    cube = reflectance_cube(table).copy()
    cube[150, :3, :] = -0.2  # a noisy water-vapour band below zero in 27 of 63 pixels
    image = write_geotiff(
        tmp_path / "cube.tif", cube, [f"{w:g}" for w in table.wavelengths], nodata=-1.0
    )
    result = map_image(model, image, tmp_path / "out.tif")
    assert result.spectra_kind == "reflectance"
    assert result.n_valid == 60 - 27
    assert "have a band <= 0 and will be masked" in caplog.text
    assert f"{table.wavelengths[150]:g} nm" in caplog.text


def test_image_without_wavelengths_is_refused(tmp_path, table, model):
    image = write_geotiff(tmp_path / "cube.tif", reflectance_cube(table), None)
    with pytest.raises(SpecsoilError, match=r"no band wavelengths found.*--wavelengths"):
        map_image(model, image, tmp_path / "out.tif")
    # ... unless they are given.
    result = map_image(model, image, tmp_path / "out.tif", wavelengths=table.wavelengths)
    assert result.wavelength_source == "given"
    # No nodata value declared, but the -1 pixel is still masked: negative reflectance has
    # no absorbance (and it must not turn the detected kind into absorbance).
    assert result.spectra_kind == "reflectance"
    assert result.n_valid == 60


def test_range_not_covered_is_refused_before_writing(tmp_path, table, model):
    cube = reflectance_cube(table)[70:]  # 1050-2500 nm; the model needs 350-2500 nm
    image = write_geotiff(
        tmp_path / "cube.tif", cube, [f"{w:g} nm" for w in table.wavelengths[70:]]
    )
    with pytest.raises(SpecsoilError, match=r"cover 1050-2500 nm but model 'plsr' needs 350"):
        map_image(model, image, tmp_path / "out.tif")
    assert list(tmp_path.iterdir()) == [image]


def test_wrong_number_of_wavelengths_and_units(tmp_path, table, model):
    cube = reflectance_cube(table)
    image = write_geotiff(tmp_path / "cube.tif", cube, None)
    with pytest.raises(SpecsoilError, match=r"215 wavelengths \(given\) for 216 bands"):
        read_image_bands(image, wavelengths=table.wavelengths[1:])
    envi = write_envi(
        tmp_path / "cube.img",
        cube,
        {"wavelength": envi_list(table.wavelengths), "wavelength_units": "Wavenumber"},
    )
    with pytest.raises(SpecsoilError, match="units 'Wavenumber' are not supported"):
        read_image_bands(envi)
    repeated = np.array(table.wavelengths)
    repeated[3] = repeated[2]
    with pytest.raises(SpecsoilError, match="repeat"):
        read_image_bands(image, wavelengths=repeated)


def test_failure_mid_image_leaves_no_output(tmp_path, table, model):
    class FailsOnSecondWindow:
        name, targets, wavelengths = model.name, model.targets, model.wavelengths
        calls = 0

        def predict(self, table):
            self.calls += 1
            if self.calls == 2:
                raise SpecsoilError("boom")
            return model.predict(table)

    image = write_geotiff(
        tmp_path / "cube.tif", reflectance_cube(table), [f"{w:g}" for w in table.wavelengths]
    )
    (tmp_path / "out.tif").write_bytes(b"previous")
    with pytest.raises(SpecsoilError, match="boom"):
        map_image(FailsOnSecondWindow(), image, tmp_path / "out.tif", chunk_rows=2)
    assert (tmp_path / "out.tif").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.tif", "out.tif"]


def test_memory_stays_bounded_by_the_window(tmp_path, table, model, monkeypatch):
    """Every read is one window (or the small kind sample), never the whole cube."""
    image = write_geotiff(
        tmp_path / "cube.tif", reflectance_cube(table), [f"{w:g}" for w in table.wavelengths]
    )
    heights = []
    original = rasterio.io.DatasetReader.read

    def spy(self, *args, **kwargs):
        values = original(self, *args, **kwargs)
        if "window" in kwargs:
            heights.append(values.shape[1])
        return values

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    map_image(model, image, tmp_path / "out.tif", chunk_rows=3)
    assert heights == [3, 3, 1]


def test_dask_cluster_gives_the_same_map(tmp_path, table, model):
    distributed = pytest.importorskip("distributed")
    cube = reflectance_cube(table)
    image = write_envi(
        tmp_path / "cube.img", cube, {"wavelength": envi_list(table.wavelengths)}, nodata=-1.0
    )
    model_dir = model.save(tmp_path / "model")
    local = map_image(model, image, tmp_path / "local.tif", chunk_rows=2)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        # A model directory, loaded lazily by the worker; and a model object, shipped to it.
        by_path = map_image(
            model_dir,
            image,
            tmp_path / "dask.tif",
            chunk_rows=2,
            scheduler=cluster.scheduler_address,
        )
        by_object = map_image(
            model, image, tmp_path / "dask2.tif", chunk_rows=1, scheduler=cluster.scheduler_address
        )
    want, _, _ = read_output(tmp_path / "local.tif")
    for name, result in (("dask.tif", by_path), ("dask2.tif", by_object)):
        got, profile, descriptions = read_output(tmp_path / name)
        np.testing.assert_array_equal(got, want)
        assert rasterio.crs.CRS.from_user_input(profile["crs"]) == rasterio.crs.CRS.from_string(CRS)
        assert list(descriptions) == TARGETS
        assert result.n_valid == local.n_valid == 60
        assert result.scheduler == cluster.scheduler_address
    check_map(tmp_path / "dask.tif", model, expected(model, cube, table.wavelengths))


def test_unreachable_scheduler_is_a_clear_error(tmp_path, table, model, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("specsoil.maps._image.CONNECT_TIMEOUT_S", 1.0)
    image = write_geotiff(
        tmp_path / "cube.tif", reflectance_cube(table), [f"{w:g}" for w in table.wavelengths]
    )
    with pytest.raises(SpecsoilError, match="cannot reach the dask scheduler"):
        map_image(model, image, tmp_path / "out.tif", scheduler="tcp://127.0.0.1:1")
    with pytest.raises(SpecsoilError, match="missing port number"):
        map_image(model, image, tmp_path / "out.tif", scheduler="localhost")
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("400\n410\n420\n", [400.0, 410.0, 420.0]),
        ("0.4, 0.41, 0.42", [400.0, 410.0, 420.0]),
        ("{0.4, 0.41, 0.42} um", [400.0, 410.0, 420.0]),
        ("4 5 6 nm", [4.0, 5.0, 6.0]),
    ],
)
def test_read_wavelengths_file(tmp_path, text, want):
    path = tmp_path / "wavelengths.txt"
    path.write_text(text)
    np.testing.assert_allclose(read_wavelengths_file(path), want)


def test_read_wavelengths_file_errors(tmp_path):
    path = tmp_path / "wavelengths.txt"
    path.write_text("400, 41O, 420")
    with pytest.raises(SpecsoilError, match=r"value 2 \('41O'\) is not a wavelength"):
        read_wavelengths_file(path)
    with pytest.raises(SpecsoilError, match="cannot read"):
        read_wavelengths_file(tmp_path / "missing.txt")
