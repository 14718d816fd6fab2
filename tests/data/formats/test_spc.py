"""Galactic SPC: reference exports, multifiles, explicit X, kinds, old format, bad input."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from specsoil._errors import SpecsoilError
from specsoil.data import get_reader, reader_for
from specsoil.data.formats._spc import read_spc

# file: (kind, axis unit, rows, points)
FILES = {
    "nir.spc": ("kubelka-munk", "nm", 20, 700),
    "Ft-ir.spc": ("transmittance-percent", "cm-1", 1, 1776),
    "20170410EDL_L01_cell01_c1.spc": ("counts", "raman-shift-cm-1", 1, 1732),
}


@pytest.fixture
def spc(instruments):
    return instruments / "spc"


class TestRealFiles:
    @pytest.mark.parametrize("name", sorted(FILES))
    def test_kind_axis_and_shape(self, spc, name):
        kind, unit, rows, points = FILES[name]
        spectra = read_spc(spc / name)
        assert (spectra.kind, spectra.axis_unit, spectra.values.shape) == (
            kind,
            unit,
            (rows, points),
        )
        assert reader_for(spc / name) is get_reader("spc")
        assert (spectra.metadata["file_format"] == "spc").all()

    def test_explicit_x_matches_the_reference_exactly(self, spc):
        spectra = read_spc(spc / "20170410EDL_L01_cell01_c1.spc")
        reference = pd.read_csv(spc / "20170410EDL_L01_cell01_c1.csv")
        assert_array_equal(spectra.axis, reference["raman_shift_cm1"].to_numpy())
        assert_array_equal(spectra.values[0], reference["intensity"].to_numpy())

    def test_integer_scaled_single_file_matches_the_reference(self, spc):
        spectra = read_spc(spc / "Ft-ir.spc")
        reference = pd.read_csv(spc / "Ft-ir.csv")
        assert_allclose(spectra.axis, reference["x"].to_numpy(), rtol=0, atol=1e-9)
        # The export prints 12 significant digits.
        assert_allclose(spectra.values[0], reference["y"].to_numpy(), rtol=1e-11, atol=1e-10)
        row = spectra.metadata.iloc[0]
        assert row["comment"] == "FT-IR Spectrum Example"
        assert row["acquired"] == "1995-04-18T09:20:00"

    def test_multifile_with_mixed_exponents_matches_the_reference(self, spc):
        raw = (spc / "nir.spc").read_bytes()
        first_exponent = struct.unpack_from("<b", raw, 512 + 1)[0]
        second_exponent = struct.unpack_from("<b", raw, 512 + 32 + 4 * 700 + 1)[0]
        assert (first_exponent, second_exponent) == (4, -128)  # scaled int32, then float32
        spectra = read_spc(spc / "nir.spc")
        reference = pd.read_csv(spc / "nir.csv")
        assert_array_equal(spectra.axis, reference["x"].to_numpy())
        expected = reference[[f"y_sub{index}" for index in range(20)]].to_numpy().T
        assert_allclose(spectra.values, expected, rtol=1e-10, atol=1e-11)
        assert list(spectra.metadata["spectrum_name"]) == [f"nir[{index}]" for index in range(20)]
        assert "multifile: 20 subfiles" in spectra.notes[0]


class TestHeaderCodes:
    @pytest.mark.parametrize(
        ("y_code", "kind"),
        [
            (0, "unknown"),
            (2, "absorbance"),
            (3, "kubelka-munk"),
            (4, "counts"),
            (10, "absorbance"),
            (128, "transmittance-percent"),  # Ft-ir's values run to 95
            (129, "reflectance-percent"),
        ],
    )
    def test_kind_from_fytype(self, spc, patched, y_code, kind):
        spectra = read_spc(patched(spc / "Ft-ir.spc", 29, "B", y_code))
        assert spectra.kind == kind
        assert any("Y unit code" in note for note in spectra.notes) == (kind == "unknown")

    @pytest.mark.parametrize(
        ("x_code", "unit"),
        [(1, "cm-1"), (2, "um"), (3, "nm"), (13, "raman-shift-cm-1"), (4, "index")],
    )
    def test_axis_unit_from_fxtype(self, spc, patched, x_code, unit):
        spectra = read_spc(patched(spc / "Ft-ir.spc", 28, "B", x_code))
        assert spectra.axis_unit == unit
        if unit == "index":
            assert "the X axis is seconds, kept as 'index'" in spectra.notes

    def test_16_bit_integers(self, spc, variant):
        """A TSPREC copy of Ft-ir.spc: its int32 values cut to their high 16 bits."""
        source = spc / "Ft-ir.spc"
        raw = source.read_bytes()
        exponent = struct.unpack_from("<b", raw, 3)[0]
        short = (np.frombuffer(raw, "<i4", 1776, 512 + 32) >> 16).astype("<i2")
        header = bytearray(raw[: 512 + 32])
        header[0] |= 0x01  # TSPREC
        spectra = read_spc(variant(source, bytes(header) + short.tobytes(), "short.spc"))
        assert_allclose(spectra.values, read_spc(source).values, atol=2.0 ** (exponent - 16))


class TestOldFormat:
    def test_word_swapped_integers(self, spc, variant):
        """An old-format (0x4D) copy of Ft-ir.spc, written from its integer Y values."""
        source = spc / "Ft-ir.spc"
        raw = source.read_bytes()
        exponent = struct.unpack_from("<b", raw, 3)[0]
        integers = np.frombuffer(raw, "<i4", 1776, 512 + 32)
        header = bytearray(256)
        struct.pack_into("<BBhfffBB", header, 0, 0, 0x4D, exponent, 1776.0, 4000.0, 450.0, 1, 128)
        struct.pack_into("<hBBBB", header, 18, 1995, 4, 18, 9, 20)
        words = integers.view("<u2").reshape(-1, 2)[:, ::-1]  # (high word, low word)
        path = variant(source, bytes(header) + words.tobytes(), "old.spc")
        old = read_spc(path)
        new = read_spc(source)
        assert_array_equal(old.values, new.values)
        assert_allclose(old.axis, new.axis)
        assert (old.kind, old.axis_unit) == ("transmittance-percent", "cm-1")
        assert old.metadata.iloc[0]["file_format"] == "spc old"
        assert old.metadata.iloc[0]["acquired"] == "1995-04-18T09:20:00"


def _xyxy_file(axes: list[np.ndarray], rows: list[np.ndarray]) -> bytes:
    """A new-format multifile with an X array per subfile (TXYXYS), float32 Y."""
    header = bytearray(512)
    flags = 0x80 | 0x40 | 0x04  # TXVALS | TXYXYS | TMULTI
    struct.pack_into("<BBBbiddi", header, 0, flags, 0x4B, 0, -128, 0, 0.0, 0.0, len(rows))
    struct.pack_into("<BBB", header, 28, 3, 129, 0)  # nm, reflectance
    body = b""
    for axis, row in zip(axes, rows, strict=True):
        subheader = bytearray(32)
        struct.pack_into("<BbhfffI", subheader, 0, 0, -128, 0, 0.0, 0.0, 0.0, axis.size)
        body += bytes(subheader) + axis.astype("<f4").tobytes() + row.astype("<f4").tobytes()
    return bytes(header) + body


class TestExplicitXPerSubfile:
    def test_shared_axis(self, tmp_path):
        axis = np.array([1100.0, 1300.5, 1700.25, 2400.0])
        rows = [np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.5, 0.25, 0.125, 0.0625])]
        path = tmp_path / "xyxy.spc"
        path.write_bytes(_xyxy_file([axis, axis], rows))
        spectra = read_spc(path)
        assert_array_equal(spectra.axis, axis)
        assert_allclose(spectra.values, np.vstack(rows), rtol=1e-7)
        assert (spectra.kind, spectra.axis_unit) == ("reflectance", "nm")

    def test_different_axes_are_refused(self, tmp_path):
        axis = np.array([1100.0, 1300.0, 1700.0])
        path = tmp_path / "xyxy.spc"
        path.write_bytes(_xyxy_file([axis, axis + 1.0], [axis * 0, axis * 0]))
        second_x_at = 512 + 32 + 12 + 12 + 32
        with pytest.raises(SpecsoilError, match=rf"byte {second_x_at}: the X array of subfile 2"):
            read_spc(path)


class TestBadInput:
    @pytest.mark.parametrize(
        ("offset", "fmt", "value", "pattern"),
        [
            (1, "B", 0x99, r"byte 1: expected an SPC version byte"),
            (1, "B", 0x4C, r"byte 1: .*big-endian"),
            (4, "i", -5, r"byte 4: expected a point count"),
        ],
    )
    def test_corrupt_header_fields(self, spc, patched, refused, offset, fmt, value, pattern):
        refused(read_spc, patched(spc / "Ft-ir.spc", offset, fmt, value), pattern)

    def test_corrupt_subfile_count(self, spc, patched, refused):
        path = patched(spc / "nir.spc", 24, "i", 1_000_000)
        refused(read_spc, path, r"byte 24: expected a subfile count")

    @pytest.mark.parametrize(
        ("name", "cut"),
        [
            ("Ft-ir.spc", 1),
            ("Ft-ir.spc", 300),
            ("Ft-ir.spc", 530),
            ("Ft-ir.spc", 4000),
            ("nir.spc", 30_000),
            ("20170410EDL_L01_cell01_c1.spc", 2000),
            ("20170410EDL_L01_cell01_c1.spc", 8000),
        ],
    )
    def test_truncated(self, spc, truncated, refused, name, cut):
        refused(read_spc, truncated(spc / name, cut))


class TestAgainstSpcIo:
    """spc-io (MIT) as an independent check; see docs/readers.md for why it is not wrapped."""

    @pytest.mark.parametrize("name", sorted(FILES))
    def test_same_values_and_axis(self, spc, name):
        spc_io = pytest.importorskip("spc_io")
        with (spc / name).open("rb") as stream:
            other = spc_io.SPC.from_bytes_io(stream)
        spectra = read_spc(spc / name)
        assert len(other) == spectra.n_spectra
        for row, subfile in zip(spectra.values, other, strict=True):
            assert_array_equal(row, np.asarray(subfile.yarray, dtype=np.float64))
        assert_allclose(spectra.axis, np.asarray(other[0].xarray, dtype=np.float64), rtol=1e-12)
