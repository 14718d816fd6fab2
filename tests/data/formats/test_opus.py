"""Bruker OPUS: block choice, reference export, metadata, single-channel fallback, bad input."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from specsoil._errors import SpecsoilError
from specsoil.data import get_reader, reader_for
from specsoil.data.formats._opus import _acquired, read_opus

AB, AB_STATUS, RFL, RFL_STATUS = 0x100F, 0x101F, 0x300F, 0x301F
SC_SAMPLE, SC_SAMPLE_STATUS = 0x0407, 0x0417
UNKNOWN_DATA, UNKNOWN_STATUS = 0x780F, 0x781F  # data type 30: no reader wants it

# file: (kind, points, first and last wavenumber from the README, instrument, serial, acquired)
FILES = {
    "BF_lo_01_soil_cal.1": (
        "absorbance",
        1716,
        3997.4,
        499.7,
        "Alpha",
        "2 00639",
        "2015-11-06T14:38:14+01:00",
    ),
    "617262_1TP_C-1_A5.0": (
        "absorbance",
        3578,
        7497.7,
        599.7,
        "INVENIO-R",
        "445",
        "2021-02-05T11:44:26+01:00",
    ),
    "629266_1TP_A-1_C1.0": (
        "absorbance",
        3578,
        7498.0,
        599.8,
        "VERTEX 70",
        "1401",
        "2019-06-12T13:17:16+02:00",
    ),
    "test_spectra.0": (
        "reflectance",
        4819,
        7498.3,
        599.9,
        "TENSOR II",
        "1057",
        "2020-05-11T09:09:55+12:00",
    ),
    "MMP_2107_Test1.001": (
        "absorbance",
        1899,
        11540.0,
        3948.0,
        "Tango",
        "200265",
        "2021-11-09T15:57:28+01:00",
    ),
    "235157XS01.0": (
        "absorbance",
        3578,
        7498.0,
        599.8,
        "VERTEX 70",
        "915",
        "2015-07-14T14:52:39-05:00",
    ),
    "141009_001-01_0-6.0": (
        "absorbance",
        1154,
        12489.6,
        3594.9,
        "Matrix-I",
        "676",
        "2014-10-30T17:47:44-05:00",
    ),
}


def _directory(raw: bytes) -> list[tuple[int, int, int, int]]:
    """(entry offset, type code without flag bits, length in words, offset) per entry."""
    directory, _, count = struct.unpack_from("<iii", raw, 12)
    entries = []
    for index in range(count):
        code, length, offset = struct.unpack_from("<iii", raw, directory + 12 * index)
        entries.append((directory + 12 * index, code & 0x3FFFFF, length, offset))
    return entries


def _retype(raw: bytes, old: int, new: int) -> bytes:
    """Change every directory entry of type ``old`` to ``new`` (keeping the flag bits)."""
    edited = bytearray(raw)
    for entry, code, _, _ in _directory(raw):
        if code == old:
            flags = struct.unpack_from("<i", raw, entry)[0] & ~0x3FFFFF
            struct.pack_into("<i", edited, entry, flags | new)
    return bytes(edited)


@pytest.fixture
def opus(instruments):
    return instruments / "opus"


class TestRealFiles:
    def test_matches_the_reference_export_exactly(self, opus):
        spectra = read_opus(opus / "141009_001-01_0-6.0")
        reference = pd.read_csv(opus / "141009_001-01_0-6.csv")
        assert_array_equal(spectra.axis, reference["wavenumber_cm1"].to_numpy())
        assert_array_equal(spectra.values[0], reference["AB"].to_numpy())

    @pytest.mark.parametrize("name", sorted(FILES))
    def test_block_axis_and_metadata(self, opus, name):
        kind, points, first, last, instrument, serial, acquired = FILES[name]
        spectra = read_opus(opus / name)
        assert spectra.kind == kind
        assert spectra.axis_unit == "cm-1"
        assert spectra.values.shape == (1, points)
        assert spectra.axis[0] == pytest.approx(first, abs=0.05)
        assert spectra.axis[-1] == pytest.approx(last, abs=0.05)
        assert np.isfinite(spectra.values).all()
        row = spectra.metadata.iloc[0]
        assert (row["instrument"], row["serial_number"], row["acquired"]) == (
            instrument,
            serial,
            acquired,
        )
        assert row["file_format"] == "opus"
        block = "AB" if kind == "absorbance" else "RFL"
        assert row["opus_block"] == block
        assert spectra.notes[0].startswith(f"read the {block} block")

    def test_mir_and_nir_files_convert_to_wavelengths(self, opus):
        nir = read_opus(opus / "MMP_2107_Test1.001").wavelengths_nm()
        mir = read_opus(opus / "BF_lo_01_soil_cal.1").wavelengths_nm()
        assert nir[0] == pytest.approx(1e7 / 11540.0)
        assert mir[-1] == pytest.approx(1e7 / 499.6746, rel=1e-6)

    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("617262_1TP_C-1_A5.0", "617262\u20181TP C-1;;;soil;soil"),  # byte 0x91
            ("629266_1TP_A-1_C1.0", "629266\u20191TP A-1;;;soil;soil"),  # byte 0x92
            ("141009_001-01_0-6.0", "Test"),
        ],
    )
    def test_sample_name_decodes_windows_bytes(self, opus, name, expected):
        assert read_opus(opus / name).metadata.iloc[0]["spectrum_name"] == expected

    @pytest.mark.parametrize("name", ["629266_1TP_A-1_C1.0", "BF_lo_01_soil_cal.1"])
    def test_duplicated_ab_reads_the_last_block(self, opus, name):
        raw = (opus / name).read_bytes()
        blocks = [(length, offset) for _, code, length, offset in _directory(raw) if code == AB]
        assert len(blocks) == 2
        spectra = read_opus(opus / name)
        points = spectra.values.shape[1]
        first, last = (np.frombuffer(raw, "<f4", points, offset) for _, offset in blocks)
        assert_array_equal(spectra.values[0], last)
        assert not np.array_equal(first, last)
        assert "the last of 2 AB blocks" in spectra.notes[0]

    def test_recognised_by_content_whatever_the_extension(self, opus, variant):
        path = variant(
            opus / "MMP_2107_Test1.001", (opus / "MMP_2107_Test1.001").read_bytes(), "x.17"
        )
        assert reader_for(path) is get_reader("opus")
        assert get_reader("opus").read(path).kind == "absorbance"


class TestSingleChannelFallback:
    def test_diffuse_reflectance_ratio_matches_the_absorbance(self, opus, variant):
        source = opus / "235157XS01.0"
        raw = _retype(_retype(source.read_bytes(), AB, UNKNOWN_DATA), AB_STATUS, UNKNOWN_STATUS)
        spectra = read_opus(variant(source, raw))
        assert spectra.kind == "reflectance"  # PLF=AB, but the detector is "HTS XT Diffuse"
        assert "ScSm" in spectra.notes[0]
        assert "DTC=" in spectra.notes[0]
        assert spectra.metadata.iloc[0]["opus_block"] == "ScSm/ScRf"
        # OPUS computed AB = -log10(ScSm/ScRf): the ratio gives it back to float32 precision.
        absorbance = read_opus(source).values[0]
        assert_allclose(-np.log10(spectra.values[0]), absorbance, atol=1e-6)

    def test_reflectance_ratio_matches_the_rfl_block(self, opus, variant):
        source = opus / "test_spectra.0"
        raw = _retype(_retype(source.read_bytes(), RFL, UNKNOWN_DATA), RFL_STATUS, UNKNOWN_STATUS)
        spectra = read_opus(variant(source, raw))
        assert spectra.kind == "reflectance"
        assert "PLF=RFL" in spectra.notes[0]
        # ScRf has 4825 points, ScSm 4819: the reference is interpolated onto the sample.
        assert_allclose(spectra.values[0], read_opus(source).values[0], atol=1e-6)

    def test_no_usable_block(self, opus, variant):
        source = opus / "235157XS01.0"
        raw = source.read_bytes()
        for old, new in ((AB, UNKNOWN_DATA), (AB_STATUS, UNKNOWN_STATUS)):
            raw = _retype(raw, old, new)
        raw = _retype(raw, SC_SAMPLE, UNKNOWN_DATA)
        path = variant(source, raw)
        with pytest.raises(SpecsoilError) as error:
            read_opus(path)
        message = str(error.value)
        assert str(path) in message
        assert "byte 24: no usable block" in message
        assert "'ScRf'" in message


def _status_parameter(path, key):
    """Byte offset of parameter ``key`` in the AB data-status block."""
    raw = path.read_bytes()
    status = next(offset for _, code, _, offset in _directory(raw) if code == AB_STATUS)
    return raw.index(key, status)


class TestBadInput:
    def test_wrong_magic(self, opus, patched, refused):
        path = patched(opus / "235157XS01.0", 0, "4s", b"\x0a\x0a\xfe\xff")
        refused(read_opus, path, r"byte 0: expected the OPUS magic")

    @pytest.mark.parametrize("cut", [4, 20, 100, 30_000, 150_000, 295_000])
    def test_truncated(self, opus, truncated, refused, cut):
        refused(read_opus, truncated(opus / "235157XS01.0", cut))

    def test_directory_entry_pointing_outside_the_file(self, opus, patched, refused):
        source = opus / "235157XS01.0"
        entry = _directory(source.read_bytes())[5][0]
        path = patched(source, entry + 8, "i", 10_000_000)
        refused(read_opus, path, rf"byte {entry}: directory entry 5 points to")

    def test_corrupt_block_count(self, opus, patched, refused):
        path = patched(opus / "235157XS01.0", 20, "i", 100_000)
        refused(read_opus, path, r"byte 12: expected a directory offset")

    def test_point_count_larger_than_the_block(self, opus, patched, refused):
        source = opus / "141009_001-01_0-6.0"
        path = patched(source, _status_parameter(source, b"NPT") + 8, "i", 99_999)
        refused(read_opus, path, r"claims NPT=99999 points")

    def test_parameter_running_past_its_block(self, opus, patched, refused):
        source = opus / "141009_001-01_0-6.0"
        npt = _status_parameter(source, b"NPT")
        refused(read_opus, patched(source, npt + 6, "h", 30_000), rf"byte {npt}: .*'NPT' claims")


class TestAgainstBrukeropus:
    """brukeropus (MIT) as an independent check; see docs/readers.md for why it is not wrapped."""

    @pytest.mark.parametrize("name", sorted(FILES))
    def test_same_block_values_and_axis(self, opus, name):
        brukeropus = pytest.importorskip("brukeropus")
        other = brukeropus.read_opus(str(opus / name))
        block = other.a if FILES[name][0] == "absorbance" else other.r
        spectra = read_opus(opus / name)
        assert_array_equal(spectra.values[0], block.y)
        assert_allclose(spectra.axis, block.x, rtol=1e-12)


class TestAcquisitionTime:
    @pytest.mark.parametrize(
        ("date", "time", "expected"),
        [
            ("30/10/2014", "17:47:44.618 (GMT-5)", "2014-10-30T17:47:44-05:00"),
            ("01/02/2020", "08:00:00.000 (GMT+5:30)", "2020-02-01T08:00:00+05:30"),
            ("01/02/2020", "08:00:00.000 (GMT+99)", "2020-02-01T08:00:00"),
            ("01/02/2020", "08:00:00", "2020-02-01T08:00:00"),
            ("31/02/2020", "08:00:00", None),
        ],
    )
    def test_dat_and_tim(self, date, time, expected):
        assert _acquired({"DAT": date, "TIM": time}) == expected
