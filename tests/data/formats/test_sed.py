"""Spectral Evolution .sed reader on the real files in shared/data/instruments/sed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import read_scan, reader_for


def file_table(path: Path) -> tuple[list[str], np.ndarray, int]:
    """Column names, rows and the index of the names line, parsed independently."""
    lines = path.read_text(encoding="latin-1").splitlines()
    names_at = lines.index("Data:") + 1
    rows = [[float(v) for v in line.split("\t")] for line in lines[names_at + 1 :] if line.strip()]
    return lines[names_at].split("\t"), np.array(rows), names_at


@pytest.mark.parametrize("name", ["a_0001.sed", "b_0001.sed", "c_0001.sed"])
def test_psr_plus_files_read_reflectance_percent_by_column_name(instruments, name):
    path = instruments / "sed" / name
    assert reader_for(path).name == "sed"
    raw = read_scan(path)
    names, rows, _ = file_table(path)
    assert names[-1] == "Reflect. %"
    assert raw.kind == "reflectance-percent"
    np.testing.assert_array_equal(raw.axis, rows[:, names.index("Wvl")])
    np.testing.assert_array_equal(raw.values[0], rows[:, names.index("Reflect. %")])
    assert raw.values.shape == (1, 2151)
    meta = raw.metadata.iloc[0]
    assert meta["instrument"] == "Spectral Evolution PSR+3500"
    assert meta["serial_number"] == "19260C3"
    assert meta["acquired"].startswith("2025-06-02T15:")
    assert meta["latitude"] is None  # "n/a" in the file


@pytest.mark.parametrize("name", ["1116037_00041.sed", "1116037_00110.sed"])
def test_psr3500_native_channels_fraction_and_duplicate_join(instruments, name):
    path = instruments / "sed" / name
    raw = read_scan(path)
    names, rows, _ = file_table(path)
    assert names == ["Wvl", "Rad. (Ref.)", "Rad. (Target)", "-log Reflect.", "Reflect. [1.0]"]
    assert raw.kind == "reflectance"
    # 970.6 nm is listed twice at the detector join: one row is dropped, none changed.
    assert list(rows[:, 0]).count(970.6) == 2
    assert raw.values.shape == (1, 1023)
    assert np.all(np.diff(raw.axis) > 0)
    pairs = {(w, r) for w, r in rows[:, [0, 4]]}
    assert all((w, r) in pairs for w, r in zip(raw.axis, raw.values[0], strict=True))
    assert any("970.6" in note and "midpoint" in note for note in raw.notes)
    # The last rows have zero radiance: values kept, and said.
    assert raw.axis[-1] == 2503.5
    assert raw.values[0, -1] == rows[-1, 4]
    zero_note = next(note for note in raw.notes if "radiance or DN is 0" in note)
    assert "2501.3, 2503.5" in zero_note


def test_metadata_with_gps(instruments):
    meta = read_scan(instruments / "sed" / "1116037_00041.sed").metadata.iloc[0]
    assert meta["instrument"] == "Spectral Evolution PSR-3500"
    assert meta["serial_number"] == "1116037"
    assert meta["acquired"] == "2019-03-13T12:34:35"
    assert meta["latitude"] == pytest.approx(-28.16222)
    assert meta["longitude"] == pytest.approx(28.95437)


def without_columns(source: Path, target: Path, drop: set[str]) -> None:
    """A copy of a real file without some columns (a radiance- or DN-only export)."""
    lines = source.read_text(encoding="latin-1").splitlines()
    names_at = lines.index("Data:") + 1
    keep = [i for i, n in enumerate(lines[names_at].split("\t")) if n not in drop]
    body = ["\t".join(line.split("\t")[i] for i in keep) for line in lines[names_at:]]
    target.write_text("\n".join(lines[:names_at] + body) + "\n", encoding="latin-1")


@pytest.mark.parametrize(
    ("source", "drop", "kind", "column"),
    [
        ("1116037_00041.sed", {"-log Reflect.", "Reflect. [1.0]"}, "radiance", "Rad. (Target)"),
        ("a_0001.sed", {"Reflect. %"}, "dn", "Norm. DN (Target)"),
        ("1116037_00041.sed", {"Reflect. [1.0]"}, "absorbance", "-log Reflect."),
    ],
)
def test_files_without_reflectance_are_read_as_what_they_hold(
    instruments, tmp_path, source, drop, kind, column
):
    path = tmp_path / "export.sed"
    without_columns(instruments / "sed" / source, path, drop)
    raw = read_scan(path)
    assert raw.kind == kind
    assert f"read column {column!r} as {kind}" in raw.notes[0]


class TestBadInput:
    def test_missing_data_line(self, instruments, tmp_path):
        text = (instruments / "sed" / "a_0001.sed").read_text()
        path = tmp_path / "nodata.sed"
        path.write_text(text.replace("Data:", "Dada:"))
        with pytest.raises(SpecsoilError, match=r"nodata\.sed: no 'Data:' line"):
            read_scan(path)

    def test_non_numeric_cell_names_the_line(self, instruments, tmp_path):
        lines = (instruments / "sed" / "a_0001.sed").read_text().splitlines()
        names_at = lines.index("Data:") + 1
        lines[names_at + 2] = lines[names_at + 2].replace("351.0", "35l.0")
        path = tmp_path / "typo.sed"
        path.write_text("\n".join(lines))
        with pytest.raises(SpecsoilError, match=rf"line {names_at + 3}, column 2: '35l.0'"):
            read_scan(path)

    def test_truncated_file(self, instruments, tmp_path):
        data = (instruments / "sed" / "a_0001.sed").read_bytes()
        path = tmp_path / "cut.sed"
        cut = data.index(b"\n", len(data) // 2) + 1  # at a line end: every row is whole
        path.write_bytes(data[:cut])
        with pytest.raises(SpecsoilError, match=r"cut\.sed: 1\d+ data rows .* Channels: 2151"):
            read_scan(path)
        path.write_bytes(data[: cut + 9])  # inside a row
        with pytest.raises(SpecsoilError, match=r"cut\.sed: line \d+ has [1-4] values; expected 5"):
            read_scan(path)

    def test_unknown_columns(self, instruments, tmp_path):
        path = tmp_path / "odd.sed"
        without_columns(
            instruments / "sed" / "1116037_00041.sed",
            path,
            {"Rad. (Target)", "-log Reflect.", "Reflect. [1.0]"},
        )
        with pytest.raises(SpecsoilError, match="hold no reflectance, radiance or DN"):
            read_scan(path)
