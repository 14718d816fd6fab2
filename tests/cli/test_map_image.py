"""``specsoil map-image``: a saved model applied to an image cube from the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402

from specsoil.cli import main  # noqa: E402
from specsoil.data import SpectraTable, read_spectra, to_absorbance  # noqa: E402
from specsoil.models import SpectralModel  # noqa: E402

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"
CRS = "EPSG:32755"
TRANSFORM = Affine(5.0, 0.0, 300_000.0, 0.0, -5.0, 5_800_000.0)
HEIGHT, WIDTH = 6, 10  # 60 pixels: the 60 soils, the last one replaced by nodata


def run_cli(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def table() -> SpectraTable:
    return read_spectra(GEEVES_SMALL, spectra_kind="reflectance")


@pytest.fixture(scope="module")
def model(table) -> SpectralModel:
    return SpectralModel.fit(table, ["clay_pct"], recipe="plsr", params={"max_components": 5})


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory) -> Path:
    return model.save(tmp_path_factory.mktemp("model") / "plsr")


def cube(table: SpectraTable) -> np.ndarray:
    pixels = (10.0 ** -table.X.astype(np.float64)).astype(np.float32)
    pixels[-1] = -1.0
    return np.ascontiguousarray(pixels.T.reshape(-1, HEIGHT, WIDTH))


def write_image(path: Path, values: np.ndarray, *, driver: str, descriptions=None) -> Path:
    with rasterio.open(
        path,
        "w",
        driver=driver,
        width=WIDTH,
        height=HEIGHT,
        count=values.shape[0],
        dtype="float32",
        crs=CRS,
        transform=TRANSFORM,
        nodata=-1.0,
    ) as dataset:
        dataset.write(values)
        for band, text in enumerate(descriptions or [], start=1):
            dataset.set_band_description(band, text)
    return path


def predicted(model, values: np.ndarray, wavelengths) -> np.ndarray:
    pixels = values.reshape(values.shape[0], -1).T[:-1]
    spectra = SpectraTable(
        X=to_absorbance(pixels, "reflectance"),
        wavelengths=np.asarray(wavelengths, dtype=np.float64),
        metadata=pd.DataFrame(index=pd.RangeIndex(pixels.shape[0])),
        source="expected",
    )
    return model.predict(spectra)[:, 0]


def check_output(path: Path, want: np.ndarray) -> None:
    with rasterio.open(path) as dataset:
        assert dataset.crs == rasterio.crs.CRS.from_string(CRS)
        assert dataset.transform == TRANSFORM
        assert dataset.descriptions == ("clay_pct",)
        assert dataset.nodata == -9999.0
        values = dataset.read(1).ravel()
    np.testing.assert_allclose(values[:-1], want, rtol=1e-4, atol=1e-4)
    assert values[-1] == -9999.0


def test_map_image_geotiff(capsys, tmp_path, table, model, model_dir):
    values = cube(table)
    image = write_image(
        tmp_path / "scene.tif",
        values,
        driver="GTiff",
        descriptions=[f"{w:g} nm" for w in table.wavelengths],
    )
    out = tmp_path / "maps" / "clay.tif"
    status, stdout, stderr = run_cli(
        capsys, "map-image", "--model", model_dir, "--image", image, "--out", out,
        "--chunk-rows", 4,
    )  # fmt: skip
    assert status == 0, stderr
    check_output(out, predicted(model, values, table.wavelengths))
    text = stdout  # one line, whatever the terminal: nothing is wrapped
    assert "mapped clay_pct over 10 x 6 pixels (59 predicted, 1 masked as -9999)" in text
    assert "in 2 windows in-process" in text
    assert "pixels/s" in text


def test_map_image_envi_with_wavelengths_file(capsys, tmp_path, table, model, model_dir):
    values = cube(table)
    image = write_image(tmp_path / "scene.img", values, driver="ENVI")
    listing = tmp_path / "bands.txt"
    listing.write_text("\n".join(f"{w / 1000:g}" for w in table.wavelengths) + "\num\n")
    out = tmp_path / "clay.tif"
    status, _, stderr = run_cli(
        capsys, "map-image", "--model", model_dir, "--image", image, "--out", out,
        "--wavelengths", listing, "--spectra-kind", "reflectance",
    )  # fmt: skip
    assert status == 0, stderr
    check_output(out, predicted(model, values, table.wavelengths))


def test_map_image_on_a_dask_cluster(capsys, tmp_path, table, model, model_dir):
    distributed = pytest.importorskip("distributed")
    values = cube(table)
    image = write_image(
        tmp_path / "scene.tif",
        values,
        driver="GTiff",
        descriptions=[f"{w:g}" for w in table.wavelengths],
    )
    out = tmp_path / "clay.tif"
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        status, stdout, stderr = run_cli(
            capsys, "-q", "map-image", "--model", model_dir, "--image", image, "--out", out,
            "--chunk-rows", 2, "--scheduler", cluster.scheduler_address,
        )  # fmt: skip
    assert status == 0, stderr
    assert f"in 3 windows on {cluster.scheduler_address}" in stdout
    check_output(out, predicted(model, values, table.wavelengths))


@pytest.mark.slow  # importing torch for the exporter takes ~6 s
def test_map_image_with_an_onnx_model(capsys, tmp_path, table, model):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from specsoil.export import export_onnx

    onnx_path = export_onnx(model, tmp_path / "plsr.onnx")
    values = cube(table)
    image = write_image(
        tmp_path / "scene.tif",
        values,
        driver="GTiff",
        descriptions=[f"{w:g}" for w in table.wavelengths],
    )
    out = tmp_path / "clay.tif"
    status, _, stderr = run_cli(
        capsys, "map-image", "--model", onnx_path, "--image", image, "--out", out
    )
    assert status == 0, stderr
    # ONNX runs the model in float32: close to, not bit-equal with, the model directory.
    with rasterio.open(out) as dataset:
        got = dataset.read(1).ravel()
    want = predicted(model, values, table.wavelengths)
    np.testing.assert_allclose(got[:-1], want, rtol=1e-3, atol=1e-2)
    assert got[-1] == -9999.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "no band wavelengths found"),
        (("--wavelengths", "short"), "59 wavelengths (given) for 216 bands"),
        (
            ("--wavelengths", "swir"),
            "spectra cover 1000-5990 nm but model 'plsr' needs 350-2500 nm",
        ),
        (("--chunk-rows", "0"), "chunk_rows must be >= 1; got 0"),
        (("--scale", "-1"), "scale must be a positive number; got -1"),
        (("--scale", "1000"), "too large for reflectance or absorbance"),
    ],
)
def test_map_image_bad_input_is_one_line_and_status_2(
    capsys, tmp_path, table, model_dir, extra, message
):
    # Band descriptions give the wavelengths, except in the case that checks their absence.
    descriptions = [f"{w:g} nm" for w in table.wavelengths] if extra else None
    image = write_image(
        tmp_path / "scene.tif", cube(table), driver="GTiff", descriptions=descriptions
    )
    (tmp_path / "short").write_text(" ".join(f"{w:g}" for w in table.wavelengths[:59]))
    swir = np.where(table.wavelengths < 1000, table.wavelengths + 5000, table.wavelengths)
    (tmp_path / "swir").write_text(" ".join(f"{w:g}" for w in np.sort(swir)))
    # "swir" moves the bands below 1000 nm past 2500 nm: the image covers 1000-5990 nm.
    argv = ["map-image", "--model", model_dir, "--image", image, "--out", tmp_path / "o.tif"]
    extra = tuple(str(tmp_path / e) if e in ("short", "swir") else e for e in extra)
    status, stdout, stderr = run_cli(capsys, *argv, *extra)
    assert status == 2
    assert stdout == ""
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.tif").exists()
