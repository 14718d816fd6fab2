"""ENVI spectral library reader on the USGS splib07 library in shared/data/instruments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import read_scan, reader_for


@pytest.fixture(scope="module")
def usgs(instruments):
    return read_scan(instruments / "envi_sli" / "s07_AV95_envi.sli")


def test_usgs_library_drops_the_wavelength_and_bandpass_records(usgs):
    assert usgs.n_spectra == 3137  # 3139 rows less the two records
    assert usgs.kind == "reflectance"
    assert usgs.axis_unit == "um"
    names = list(usgs.metadata["spectrum_name"])
    assert names[0].startswith("Acmite NMNH133746 Pyroxene")
    assert names[-1].startswith("Willow_Dead FluvTailSite_A")
    assert any("row(s) 1 equal the header's wavelength list" in n for n in usgs.notes)
    assert any("row(s) 2 equal the header's fwhm list" in n for n in usgs.notes)
    # SPECPR "error bars to preceding" rows are kept, marked as what they are.
    types = usgs.metadata["record_type"]
    assert (types == "error-bars").sum() == 680
    assert types[1] == "error-bars"
    assert names[1].startswith("error bars to preceding")


def test_values_match_the_file_and_ignore_value_is_nan(instruments, usgs):
    stored = np.fromfile(instruments / "envi_sli" / "s07_AV95_envi.sli", "<f4").reshape(3139, 224)
    spectra = stored[2:].astype(np.float64)
    header_wavelengths = stored[0].astype(np.float64)
    # The AVIRIS overlaps (0.6643-0.687 and 1.25236-1.26899 um) were cut: kept points match.
    columns = [
        int(np.flatnonzero(np.isclose(header_wavelengths, w, rtol=1e-6))[0]) for w in usgs.axis
    ]
    expected = spectra[:, columns]
    sentinel = expected <= -1e20  # -1.23e34 and its convolved neighbours
    assert np.array_equal(np.isnan(usgs.values), sentinel)
    np.testing.assert_array_equal(usgs.values[~sentinel], expected[~sentinel])
    assert np.all(np.diff(usgs.axis) > 0)
    assert sum("overlap" in n for n in usgs.notes) == 2


def small_library(
    folder: Path, *, order: str = "<", hdr: bool = True, extra: bytes = b"", offset: int = 0
) -> Path:
    values = np.array([[0.1, 0.2, -9999.0], [0.4, 0.5, 0.6]], dtype=order + "f4")
    path = folder / "lib.sli"
    path.write_bytes(b"\x07" * offset + values.tobytes() + extra)
    if hdr:
        (folder / "lib.hdr").write_text(
            f"ENVI\nsamples = 3\nlines = 2\nbands = 1\nheader offset = {offset}\n"
            "file type = ENVI Spectral Library\ndata type = 4\ninterleave = bsq\n"
            f"byte order = {1 if order == '>' else 0}\nwavelength units = Nanometers\n"
            "data ignore value = -9999\nz plot titles = {Wavelength, Reflectance}\n"
            "spectra names = {\n soil one,\n soil two}\nwavelength = {\n 500, 600,\n 700}\n"
        )
    return path


@pytest.mark.parametrize(("order", "offset"), [("<", 0), (">", 0), ("<", 16)])
def test_byte_order_offset_names_and_ignore_value(tmp_path, order, offset):
    path = small_library(tmp_path, order=order, offset=offset)
    assert reader_for(path).name == "envi-sli"
    raw = read_scan(path)
    assert list(raw.metadata["spectrum_name"]) == ["soil one", "soil two"]
    np.testing.assert_allclose(raw.axis, [500, 600, 700])
    assert raw.axis_unit == "nm"
    assert np.isnan(raw.values[0, 2])
    np.testing.assert_allclose(raw.values[1], [0.4, 0.5, 0.6], rtol=1e-6)


class TestBadInput:
    def test_missing_header(self, tmp_path):
        path = small_library(tmp_path, hdr=False)
        with pytest.raises(SpecsoilError, match=r"lib\.sli: no ENVI header beside it"):
            read_scan(path)

    def test_size_mismatch_names_the_byte_offset(self, tmp_path):
        path = small_library(tmp_path, extra=b"\x00\x00\x00\x00")
        with pytest.raises(
            SpecsoilError, match=r"28 bytes, .* = 24; the data go on at byte offset 24"
        ):
            read_scan(path)

    def test_truncated_usgs_copy(self, instruments, tmp_path):
        source = instruments / "envi_sli"
        (tmp_path / "cut.hdr").write_bytes((source / "s07_AV95_envi.hdr").read_bytes())
        (tmp_path / "cut.sli").write_bytes((source / "s07_AV95_envi.sli").read_bytes()[:100_000])
        with pytest.raises(
            SpecsoilError, match=r"cut\.sli: 100000 bytes.* end at byte offset 100000"
        ):
            read_scan(tmp_path / "cut.sli")

    def test_unclosed_brace_names_the_line(self, tmp_path):
        path = small_library(tmp_path)
        header = tmp_path / "lib.hdr"
        header.write_text(header.read_text().replace(" 700}", " 700"))
        with pytest.raises(SpecsoilError, match=r"lib\.hdr: line 16: the '\{' of 'wavelength'"):
            read_scan(path)
