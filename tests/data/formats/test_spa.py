"""Thermo OMNIC .spa: values, axis, title, data found through the directory, bad input."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from specsoil.data import get_reader, reader_for
from specsoil.data.formats._spa import read_spa

POINTS = 3632
DATA_ENTRY = 304 + 16 * 4  # the real file's fifth directory entry holds the data (key 3)


@pytest.fixture
def cyclohexane(instruments):
    return instruments / "spa" / "cylohex.spa"


class TestRealFile:
    def test_values_match_the_reference_exactly(self, cyclohexane):
        spectra = read_spa(cyclohexane)
        reference = pd.read_csv(cyclohexane.with_suffix(".csv"))
        assert_array_equal(spectra.values[0], reference["intensity"].to_numpy())

    def test_axis_runs_from_the_headers_first_to_last_x(self, cyclohexane):
        spectra = read_spa(cyclohexane)
        raw = cyclohexane.read_bytes()
        first, last = struct.unpack_from("<ff", raw, 560 + 16)
        assert spectra.axis_unit == "raman-shift-cm-1"
        assert spectra.axis.size == POINTS
        assert (spectra.axis[0], spectra.axis[-1]) == (first, last)
        # The reference export steps by (last - first) / N, not / (N - 1): it agrees at the
        # first point and drifts to one step (1.93 cm-1) at the last.
        reference = pd.read_csv(cyclohexane.with_suffix(".csv"))["raman_shift_cm1"].to_numpy()
        assert spectra.axis[0] == reference[0]
        assert_allclose(spectra.axis, reference, atol=1.93)

    def test_title_kind_and_metadata(self, cyclohexane):
        spectra = read_spa(cyclohexane)
        row = spectra.metadata.iloc[0]
        assert row["spectrum_name"] == "Cyclohexane Sample"
        assert row["y_quantity"] == "Raman intensity"
        assert row["file_format"] == "spa"
        assert row["acquired"].startswith("1994-")
        assert spectra.kind == "unknown"  # Raman intensity is no modellable quantity
        assert reader_for(cyclohexane) is get_reader("spa")

    def test_data_is_found_through_the_directory(self, cyclohexane, variant):
        raw = bytearray(cyclohexane.read_bytes())
        _, offset, size = struct.unpack_from("<BxII", raw, DATA_ENTRY)
        moved = raw[offset : offset + size]
        raw[offset : offset + size] = bytes(size)  # nothing left at byte 864
        struct.pack_into("<I", raw, DATA_ENTRY + 2, len(raw))
        path = variant(cyclohexane, bytes(raw) + moved)
        assert_array_equal(read_spa(path).values, read_spa(cyclohexane).values)
        assert f"byte {len(raw)}" in read_spa(path).notes[0]


class TestBadInput:
    @pytest.mark.parametrize("cut", [20, 296, 400, 600, 2000, 15_000])
    def test_truncated(self, cyclohexane, truncated, refused, cut):
        refused(read_spa, truncated(cyclohexane, cut))

    @pytest.mark.parametrize(
        ("offset", "fmt", "value", "pattern"),
        [
            (0, "18s", b"Spectral Data Fyle", r"byte 0: expected the text 'Spectral Data File'"),
            (DATA_ENTRY, "B", 99, r"byte 304: .*no intensity data section"),
            (DATA_ENTRY + 6, "I", 4 * POINTS - 4, rf"byte {DATA_ENTRY}: .*claims {POINTS} points"),
            (560 + 16, "f", np.inf, r"byte 576: expected finite first and last X"),
        ],
    )
    def test_corrupt_fields(self, cyclohexane, patched, refused, offset, fmt, value, pattern):
        refused(read_spa, patched(cyclohexane, offset, fmt, value), pattern)


class TestAgainstSpectrochempyOmnic:
    """spectrochempy-omnic (CeCILL-B) as an independent check; see docs/readers.md."""

    def test_same_values_axis_and_title(self, cyclohexane):
        omnic = pytest.importorskip("spectrochempy_omnic")
        other = omnic.OMNICReader(str(cyclohexane))
        spectra = read_spa(cyclohexane)
        assert_array_equal(spectra.values, np.asarray(other.data, dtype=np.float64))
        assert_allclose(spectra.axis, np.asarray(other.x, dtype=np.float64), rtol=1e-12)
        assert spectra.metadata.iloc[0]["spectrum_name"] == other.name
