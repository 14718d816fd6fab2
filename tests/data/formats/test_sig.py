"""SVC .sig reader on the real files in shared/data/instruments/sig."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import get_reader, read_scan, reader_for

SIG_FILES = [
    "2_1_A_D.0000.sig",
    "3_1_A_V.0000.sig",
    "ACPL_D2_P1_B_1_001.sig",
    "ACPL_D2_P1_T_1_WR_000.sig",
    "BNL13001_000.sig",
    "BNL13002_000.sig",
]


def file_rows(path: Path) -> np.ndarray:
    """The data rows as the file holds them, parsed independently of the reader."""
    lines = path.read_text(encoding="latin-1").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("data=")) + 1
    return np.array([[float(v) for v in line.split()] for line in lines[start:] if line.strip()])


@pytest.mark.parametrize("name", SIG_FILES)
def test_every_real_file_reads_as_the_file_holds_it(instruments, name):
    path = instruments / "sig" / name
    assert reader_for(path).name == "sig"
    raw = read_scan(path)
    rows = file_rows(path)
    assert rows.shape == (1024, 4)
    assert raw.kind == "reflectance-percent"
    assert raw.axis_unit == "nm"
    assert np.all(np.diff(raw.axis) > 0)
    # Every kept (wavelength, reflectance %) pair is a row of the file, values unchanged.
    pairs = {(w, r) for w, r in rows[:, [0, 3]]}
    assert all((w, r) in pairs for w, r in zip(raw.axis, raw.values[0], strict=True))
    assert raw.axis[0] == rows[0, 0]
    assert raw.axis[-1] == rows[-1, 0]
    assert sum("overlap" in note for note in raw.notes) == 2
    meta = raw.metadata.iloc[0]
    assert meta["instrument"] == "SVC HR-1024i"
    assert meta["file_format"] == "sig"
    assert meta["acquired"].startswith(("2024-08-22", "2015-08-06", "2017-07-29"))


def test_overlap_cut_where_svc_software_cuts_it(instruments):
    # spectrolab ships the same instrument's scans reprocessed by SVC's software
    # ("Overlap: Remove @ 970,1901"): they go 969.6 -> 971.8 and 1897.8 -> 1901.1 nm.
    raw = read_scan(instruments / "sig" / "BNL13001_000.sig")
    axis = list(raw.axis)
    assert axis[axis.index(969.6) + 1] == 971.8
    assert axis[axis.index(1897.8) + 1] == 1901.1
    assert 1898.4 not in axis
    assert 972.0 not in axis
    assert "970 nm that SVC's software uses" in raw.notes[0]


def test_crossover_just_below_a_narrow_overlap_is_still_used(instruments):
    raw = read_scan(instruments / "sig" / "ACPL_D2_P1_B_1_001.sig")
    # The second join overlaps only at 1908.2-1909.7 nm; SVC's 1901 nm cut still applies
    # (within 10 nm), so detector 2 ends below 1901 nm and detector 3 is kept whole.
    assert "cut at 1901 (the crossover" in raw.notes[1]
    axis = list(raw.axis)
    assert axis[axis.index(1899.2) + 1] == 1908.2


def test_metadata_gps_and_serial(instruments):
    meta = read_scan(instruments / "sig" / "ACPL_D2_P1_B_1_001.sig").metadata.iloc[0]
    assert meta["serial_number"] == "1152050"
    assert meta["acquired"] == "2015-08-06T09:37:15"
    # 4640.7523N, 09231.1626W (ddmm.mmmm) of the target.
    assert meta["latitude"] == pytest.approx(46 + 40.7523 / 60)
    assert meta["longitude"] == pytest.approx(-(92 + 31.1626 / 60))
    ruffs = read_scan(instruments / "sig" / "2_1_A_D.0000.sig").metadata.iloc[0]
    assert ruffs["serial_number"] == "5192098"
    assert ruffs["latitude"] is None


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_line_endings_read_alike(instruments, tmp_path, ending):
    source = instruments / "sig" / "BNL13001_000.sig"  # CRLF in the original
    copy = tmp_path / "copy.sig"
    copy.write_bytes(ending.join(source.read_bytes().splitlines()))
    original, converted = read_scan(source), read_scan(copy)
    np.testing.assert_array_equal(original.values, converted.values)
    np.testing.assert_array_equal(original.axis, converted.axis)


class TestBadInput:
    def header_and_rows(self, instruments):
        text = (instruments / "sig" / "2_1_A_D.0000.sig").read_text()
        head, _, rows = text.partition("data=\n")
        return head, rows.splitlines()

    def test_missing_data_line(self, instruments, tmp_path):
        head, _ = self.header_and_rows(instruments)
        path = tmp_path / "nodata.sig"
        path.write_text(head)
        with pytest.raises(SpecsoilError, match=r"nodata\.sig: no 'data=' line"):
            read_scan(path)

    def test_truncated_row_names_the_line(self, instruments, tmp_path):
        head, rows = self.header_and_rows(instruments)
        path = tmp_path / "cut.sig"
        path.write_text(head + "data=\n" + "\n".join(rows[:10]) + "\n" + rows[10][:8])
        line = head.count("\n") + 12
        with pytest.raises(SpecsoilError, match=rf"cut\.sig: line {line} has 2 values; expected 4"):
            read_scan(path)

    def test_non_numeric_cell_names_line_and_column(self, instruments, tmp_path):
        head, rows = self.header_and_rows(instruments)
        rows[4] = rows[4].replace(rows[4].split()[2], "n/a", 1)
        path = tmp_path / "text.sig"
        path.write_text(head + "data=\n" + "\n".join(rows))
        line = head.count("\n") + 6
        with pytest.raises(SpecsoilError, match=rf"line {line}, column 3: 'n/a' is not a number"):
            read_scan(path)

    def test_header_only_is_truncated(self, instruments, tmp_path):
        head, _ = self.header_and_rows(instruments)
        path = tmp_path / "empty.sig"
        path.write_text(head + "data=\n")
        with pytest.raises(SpecsoilError, match=r"no data rows .* truncated"):
            get_reader("sig").read(path)
