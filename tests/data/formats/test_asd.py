"""ASD FieldSpec .asd: reflectance, raw DN, header fields, versions 1-8 and bad input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from specsoil._errors import SpecsoilError
from specsoil.data import get_reader, reader_for
from specsoil.data.formats._asd import AsdReader, DetectorSettings, normalised_dn, read_asd

CHANNELS = 2151
TARGET_AT = 484
REFERENCE_HEADER_AT = TARGET_AT + 8 * CHANNELS  # 17692: all real files store float64

# file: (README's target/reference ratio at 1425 nm, serial, acquisition date, header type)
FILES = {
    "v6sample00000.asd": (0.88, "6355", "2009-07-21", "raw"),
    "v7sample00003.asd": (0.87, "6355", "2009-07-21", "reflectance"),
    "v8sample00001.asd": (None, "16371", "2010-04-06", "raw"),
    "v8sample00002.asd": (0.88, "16371", "2010-04-06", "raw"),
    "44231B009-1-FW300000.asd": (0.40, "19082", "2024-10-23", "reflectance"),
    "44231B009-1-FW3R00000.asd": (0.41, "19082", "2024-10-23", "reflectance"),
    "calcite_00000.asd": (0.67, "18454", "2023-05-16", "reflectance"),
    "stibnite_00000.asd": (0.55, "18454", "2023-05-16", "reflectance"),
    "101453MD01.asd": (0.47, "4139", "2012-02-11", "raw"),
}
NO_WHITE_REFERENCE = "v7sample00000.asd"  # reference flag off, header type radiance


def _stored_spectra(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Target and reference DN straight from the byte layout in the instruments README."""
    target = np.frombuffer(raw, "<f8", CHANNELS, TARGET_AT)
    (description_length,) = struct.unpack_from("<h", raw, REFERENCE_HEADER_AT + 18)
    reference_at = REFERENCE_HEADER_AT + 20 + description_length
    return target, np.frombuffer(raw, "<f8", CHANNELS, reference_at)


@pytest.fixture
def asd(instruments):
    return instruments / "asd"


class TestRealFiles:
    @pytest.mark.parametrize("name", sorted(FILES))
    def test_reflectance_is_target_over_white_reference(self, asd, name):
        spectra = read_asd(asd / name)
        target, reference = _stored_spectra((asd / name).read_bytes())
        assert spectra.kind == "reflectance"
        assert spectra.values.shape == (1, CHANNELS)
        # One set of detector settings per file, so the normalisations cancel exactly.
        assert_allclose(spectra.values[0], target / reference, rtol=1e-12)

    @pytest.mark.parametrize("name", sorted(name for name in FILES if FILES[name][0]))
    def test_ratio_at_1425_nm_matches_the_readme(self, asd, name):
        expected = FILES[name][0]
        spectra = read_asd(asd / name)
        assert spectra.values[0, 1425 - 350] == pytest.approx(expected, abs=0.006)

    @pytest.mark.parametrize("name", sorted(FILES))
    def test_axis_and_metadata(self, asd, name):
        _, serial, date, header_type = FILES[name]
        spectra = read_asd(asd / name)
        assert spectra.axis_unit == "nm"
        assert_array_equal(spectra.axis, np.arange(350.0, 2501.0))
        row = spectra.metadata.iloc[0]
        assert row["serial_number"] == serial
        assert row["acquired"].startswith(date)
        assert row["instrument"] == "ASD FieldSpec FR"
        assert row["asd_data_type"] == header_type
        assert row["white_reference"]
        assert row["file_format"] == f"asd v{(asd / name).read_bytes()[2] - ord('0')}"
        assert row["source_file"] == str(asd / name)
        assert row["spectrum_name"] == name.removesuffix(".asd")

    def test_header_fields_of_a_2024_file(self, asd):
        row = read_asd(asd / "44231B009-1-FW300000.asd").metadata.iloc[0]
        assert row["acquired"] == "2024-10-23T16:58:34"
        assert row["integration_time_ms"] == 17.0
        assert (row["dark_count"], row["reference_count"], row["sample_count"]) == (100, 25, 10)
        assert (row["splice1_nm"], row["splice2_nm"]) == (1000.0, 1800.0)
        assert row["calibration_series"] == "ABSOLUTE"
        assert row["reference_time"] == "2024-10-23T16:52:17"

    def test_v7_calibration_series_are_listed(self, asd):
        spectra = read_asd(asd / NO_WHITE_REFERENCE, asd_quantity="raw")
        assert spectra.metadata.iloc[0]["calibration_series"] == "BASE,LAMP,FIBER"

    def test_repeat_scans_share_the_white_reference(self, asd):
        first = asd / "44231B009-1-FW300000.asd"
        second = asd / "44231B009-1-FW3R00000.asd"
        _, reference_a = _stored_spectra(first.read_bytes())
        _, reference_b = _stored_spectra(second.read_bytes())
        assert_array_equal(reference_a, reference_b)
        difference = read_asd(first).values - read_asd(second).values
        assert np.median(np.abs(difference)) < 0.02

    @pytest.mark.parametrize("name", [*sorted(FILES), NO_WHITE_REFERENCE])
    def test_raw_gives_the_stored_dn(self, asd, name):
        spectra = read_asd(asd / name, asd_quantity="raw")
        target, _ = _stored_spectra((asd / name).read_bytes())
        assert spectra.kind == "dn"
        assert_array_equal(spectra.values[0], target)

    def test_no_white_reference_is_never_reflectance(self, asd):
        path = asd / NO_WHITE_REFERENCE
        with pytest.raises(SpecsoilError) as error:
            read_asd(path)
        message = str(error.value)
        assert str(path) in message
        assert f"byte {REFERENCE_HEADER_AT}" in message
        assert "asd_quantity='raw'" in message
        raw = read_asd(path, asd_quantity="raw")
        assert raw.kind == "dn"
        assert any("calibration series" in note for note in raw.notes)

    def test_registry_finds_the_reader_by_content(self, asd):
        path = asd / "calcite_00000.asd"
        assert reader_for(path) is get_reader("asd")
        assert AsdReader(asd_quantity="raw").read(path).kind == "dn"

    def test_unknown_quantity_is_refused(self, asd):
        with pytest.raises(SpecsoilError, match="asd_quantity"):
            read_asd(asd / "calcite_00000.asd", asd_quantity="radiance")  # type: ignore[arg-type]


class TestVersions:
    """Versions 1-5 differ from 6 only in the sections they stop at; built from v6's bytes."""

    @pytest.mark.parametrize("version", [2, 3, 4, 5])
    def test_versions_2_to_5_have_a_reference(self, asd, variant, version):
        source = asd / "v6sample00000.asd"
        raw = bytearray(source.read_bytes())
        raw[:3] = f"as{version}".encode()
        end = REFERENCE_HEADER_AT + 20 + 8 * CHANNELS  # empty description
        path = variant(source, bytes(raw[:end]), f"v{version}.asd")
        assert_array_equal(read_asd(path).values, read_asd(source).values)
        assert read_asd(path).metadata.iloc[0]["file_format"] == f"asd v{version}"

    def test_version_1_holds_no_reference(self, asd, variant):
        source = asd / "v6sample00000.asd"
        raw = bytearray(source.read_bytes()[:REFERENCE_HEADER_AT])
        raw[:3] = b"ASD"
        path = variant(source, bytes(raw), "v1.asd")
        assert read_asd(path, asd_quantity="raw").kind == "dn"
        with pytest.raises(SpecsoilError, match="has no reference section"):
            read_asd(path)

    def test_float32_data_format(self, asd, variant):
        source = asd / "v6sample00000.asd"
        raw = source.read_bytes()
        target = np.frombuffer(raw, "<f8", CHANNELS, TARGET_AT)
        header = bytearray(raw[:TARGET_AT])
        header[:3] = b"ASD"
        header[199] = 0  # float32
        path = variant(source, bytes(header) + target.astype("<f4").tobytes(), "f4.asd")
        spectra = read_asd(path, asd_quantity="raw")
        assert_allclose(spectra.values[0], target, rtol=1e-6)


class TestNormalisation:
    def test_vnir_per_ms_and_swir_at_unity_gain(self):
        wavelengths = np.array([999.0, 1000.0, 1001.0, 1800.0, 1801.0])
        settings = DetectorSettings(17.0, 4096.0, 1024.0, 2000.0, 2100.0, 1000.0, 1800.0)
        out = normalised_dn(np.full(5, 34.0), wavelengths, settings)
        assert_allclose(out, [2.0, 2.0, 68.0, 68.0, 17.0])

    def test_ratio_is_unchanged_by_a_change_of_settings(self):
        # A reference taken at twice the integration time and gain reads twice the DN;
        # normalising each by its own settings gives back the true ratio.
        wavelengths = np.arange(350.0, 2501.0)
        target_settings = DetectorSettings(17.0, 2048.0, 2048.0, 0.0, 0.0, 1000.0, 1800.0)
        reference_settings = DetectorSettings(34.0, 1024.0, 1024.0, 0.0, 0.0, 1000.0, 1800.0)
        reference_dn = np.full(wavelengths.size, 2000.0)
        target_dn = 0.5 * reference_dn / 2.0  # reflectance 0.5, half the exposure
        ratio = normalised_dn(target_dn, wavelengths, target_settings) / normalised_dn(
            reference_dn, wavelengths, reference_settings
        )
        assert_allclose(ratio, 0.5)


class TestBadInput:
    def test_wrong_magic(self, asd, patched, refused):
        path = patched(asd / "calcite_00000.asd", 0, "3s", b"xyz")
        refused(read_asd, path, r"byte 0: expected an ASD version tag")

    @pytest.mark.parametrize(
        "cut",
        [3, 200, 483, TARGET_AT + 1000, REFERENCE_HEADER_AT + 10, REFERENCE_HEADER_AT + 5000],
    )
    def test_truncated(self, asd, truncated, refused, cut):
        refused(read_asd, truncated(asd / "v7sample00003.asd", cut), "truncated")

    def test_truncated_in_the_trailing_sections(self, asd, truncated, refused):
        source = asd / "v7sample00000.asd"  # three calibration series after the reference
        path = truncated(source, source.stat().st_size - 20_000)
        refused(lambda p: read_asd(p, asd_quantity="raw"), path, "calibration series")

    @pytest.mark.parametrize(
        ("offset", "fmt", "value", "pattern"),
        [
            (199, "B", 7, r"byte 199: expected data format"),
            (204, "H", 0, r"byte 191: expected a wavelength axis"),
            (REFERENCE_HEADER_AT, "H", 0x1234, rf"byte {REFERENCE_HEADER_AT}: .*reference flag"),
            (REFERENCE_HEADER_AT + 18, "h", -3, r"non-negative length for the reference desc"),
        ],
    )
    def test_corrupt_header_fields(self, asd, patched, refused, offset, fmt, value, pattern):
        refused(read_asd, patched(asd / "calcite_00000.asd", offset, fmt, value), pattern)


class TestSniff:
    def test_a_text_export_starting_with_asd_is_not_taken_for_a_binary(self, tmp_path):
        path = tmp_path / "export.txt"
        path.write_text("ASD ASCII Export\n" + "Wavelength\tReflectance\n" * 20)
        assert not AsdReader().sniff(path.read_bytes()[:4096], path)

    def test_a_real_file_is_recognised_without_its_suffix(self, asd, variant):
        path = variant(asd / "101453MD01.asd", (asd / "101453MD01.asd").read_bytes(), "scan")
        assert reader_for(path) is get_reader("asd")
