"""Bounds-checked binary reads, and a seeded fuzz of every binary reader on the real files."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import get_reader, reader_for
from specsoil.data.formats._binary import BinaryFile, decode_text, ole_date

BINARY_SUFFIXES = (".asd", ".spc", ".spa", ".0", ".1", ".001")
TRIALS_PER_FILE = 24


class TestBinaryFile:
    def test_reads_inside_the_file(self, tmp_path):
        path = tmp_path / "x.bin"
        path.write_bytes(np.arange(4, dtype="<f4").tobytes())
        binary = BinaryFile(path)
        assert binary.unpack("ff", 4, "two floats") == (1.0, 2.0)
        assert binary.array("f4", 2, 8, "values").tolist() == [2.0, 3.0]

    def test_a_read_past_the_end_names_file_offset_and_what(self, tmp_path):
        path = tmp_path / "x.bin"
        path.write_bytes(bytes(10))
        with pytest.raises(SpecsoilError) as error:
            BinaryFile(path).array("f8", 2, 4, "the target spectrum")
        assert str(error.value) == (
            f"{path}: byte 4: expected the target spectrum (16 bytes) but the file has 10 "
            "bytes; it is truncated or its offsets are corrupt"
        )

    def test_negative_count_is_an_error_not_an_empty_array(self, tmp_path):
        path = tmp_path / "x.bin"
        path.write_bytes(bytes(10))
        with pytest.raises(SpecsoilError, match="byte 0: expected a non-negative count"):
            BinaryFile(path).array("f4", -1, 0, "values")

    def test_missing_file(self, tmp_path):
        with pytest.raises(SpecsoilError, match="cannot read the file"):
            BinaryFile(tmp_path / "absent.asd")

    def test_text_decodes_windows_bytes(self):
        assert decode_text(b"617262\x911TP ") == "617262\u20181TP"
        assert decode_text(b"a\x81b") == "a\x81b"  # unassigned in cp1252: latin-1

    def test_ole_dates(self):
        assert ole_date(45588.5) == datetime(2024, 10, 23, 12, 0)
        assert ole_date(0.0) is None
        assert ole_date(float("nan")) is None


def _real_binary_files(instruments):
    return sorted(
        path for path in instruments.glob("*/*") if path.suffix.lower() in BINARY_SUFFIXES
    )


def test_every_real_binary_file_is_recognised(instruments):
    files = _real_binary_files(instruments)
    assert len(files) == 21  # 10 ASD, 7 OPUS, 3 SPC, 1 SPA
    expected = {".asd": "asd", ".spc": "spc", ".spa": "spa"}
    for path in files:
        reader = reader_for(path)
        assert reader is not None, path
        assert reader.name == expected.get(path.suffix.lower(), "opus"), path


def test_fuzzed_files_raise_only_specsoil_errors(instruments, tmp_path):
    """Truncate or flip bytes of each real file; a reader returns spectra or SpecsoilError."""
    rng = np.random.default_rng(20261204)
    outcomes = {"read": 0, "refused": 0}
    unnamed: list[str] = []  # messages that fail to name the file
    for path in _real_binary_files(instruments):
        original = path.read_bytes()
        reader = get_reader(reader_for(path).name)  # type: ignore[union-attr]
        for trial in range(TRIALS_PER_FILE):
            data = bytearray(original)
            if trial % 2 == 0:
                data = data[: int(rng.integers(0, len(data)))]
            else:
                # Headers and directories sit in the first kilobyte: flip there mostly.
                span = len(data) if trial % 4 == 1 else min(len(data), 1024)
                for position in rng.integers(0, span, int(rng.integers(1, 9))):
                    data[position] = int(rng.integers(0, 256))
            target = tmp_path / path.name
            target.write_bytes(bytes(data))
            try:
                spectra = reader.read(target)
            except SpecsoilError as error:
                unnamed += [str(error)] if str(target) not in str(error) else []
                outcomes["refused"] += 1
            else:
                assert spectra.values.shape[1] == spectra.axis.size
                outcomes["read"] += 1
    assert unnamed == []
    assert outcomes["refused"] > 0
    assert outcomes["read"] > 0
