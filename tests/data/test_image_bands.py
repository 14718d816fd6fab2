"""Band wavelengths of image cubes from their tags (ENVI header, band metadata, descriptions)."""

from __future__ import annotations

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import (
    ImageTags,
    image_band_wavelengths,
    image_reader_for,
    parse_envi_list,
    read_wavelengths_file,
    wavelengths_to_nm,
)
from specsoil.data._image_bands import wavelengths_from_tags

THREE_BANDS = [{"wavelength": "0.5", "wavelength_units": "Micrometers"}] * 3


def test_envi_header_comes_first():
    tags = ImageTags(
        source="cube.img",
        envi={"wavelength": "{ 0.4, 0.5,\n 0.6 }", "wavelength_units": "micrometers"},
        bands=THREE_BANDS,
        descriptions=["1 nm", "2 nm", "3 nm"],
    )
    found = wavelengths_from_tags(tags)
    assert found is not None
    np.testing.assert_allclose(found[0], [400.0, 500.0, 600.0])
    assert found[1] == "ENVI header"


def test_band_metadata_then_imagery_then_descriptions():
    bands = [{"wavelength": w, "wavelength_units": "nm"} for w in ("700", "800", "900")]
    found = wavelengths_from_tags(ImageTags(source="a.tif", bands=bands))
    assert found is not None
    assert found[1] == "band metadata"
    np.testing.assert_allclose(found[0], [700, 800, 900])
    imagery = [{"central_wavelength_um": w} for w in ("0.7", "0.8")]
    found = wavelengths_from_tags(ImageTags(source="a.tif", bands=[{}, {}], imagery=imagery))
    assert found is not None
    assert found[1] == "band metadata CENTRAL_WAVELENGTH_UM"
    np.testing.assert_allclose(found[0], [700, 800])
    found = wavelengths_from_tags(ImageTags(source="a.tif", descriptions=["1.0 um", "2.2 um"]))
    assert found is not None
    assert found[1] == "band descriptions"
    np.testing.assert_allclose(found[0], [1000.0, 2200.0])
    assert wavelengths_from_tags(ImageTags(source="a.tif", descriptions=["red", None])) is None


def test_units_and_bad_values():
    assert wavelengths_to_nm(np.array([0.4, 2.5]), None, source="x")[0] == pytest.approx(400)
    assert wavelengths_to_nm(np.array([400.0]), "unknown", source="x")[0] == 400
    with pytest.raises(SpecsoilError, match=r"x: wavelength units 'furlongs' are not supported"):
        wavelengths_to_nm(np.array([1.0]), "furlongs", source="x")
    with pytest.raises(SpecsoilError, match=r"cube\.hdr: bbl value 'yes' is not a number"):
        parse_envi_list("{1, yes}", source="cube.hdr", key="bbl")


def test_wavelengths_file(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("0.4, 0.5\n0.6 um\n")
    np.testing.assert_allclose(read_wavelengths_file(path), [400, 500, 600])
    path.write_text("400 five\n")
    with pytest.raises(SpecsoilError, match=r"value 2 \('five'\) is not a wavelength number"):
        read_wavelengths_file(path)


def test_image_readers_recognise_envi_and_tiff(tmp_path):
    data = tmp_path / "cube.img"
    data.write_bytes(bytes(16))
    assert image_reader_for(data) is None  # no header beside it
    (tmp_path / "cube.hdr").write_text("ENVI\nsamples = 1\n")
    envi = image_reader_for(data)
    assert envi is not None
    assert envi.name == "envi-image"
    header = image_reader_for(tmp_path / "cube.hdr")
    assert header is not None
    assert header.name == "envi-image"
    tiff = tmp_path / "cube.tif"
    tiff.write_bytes(b"MM\x00*" + bytes(16))
    found = image_reader_for(tiff)
    assert found is not None
    assert found.name == "geotiff"
    tags = ImageTags(source=str(tiff), descriptions=["500 nm", "600 nm"])
    result = image_band_wavelengths(tiff, tags)
    assert result is not None
    assert result[1] == "band descriptions"
