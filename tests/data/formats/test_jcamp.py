"""JCAMP-DX reader on the real files in shared/data/instruments/jcamp, and on DIF encodings."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import read_scan, reader_for

# name: (NPOINTS, FIRSTX, LASTX, YFACTOR, kind)
REAL = {
    "SBO.jdx": (1868, 399.212341, 3999.837646, 1e-8, "transmittance"),
    "fixinc2.jdx": (3601, 400.0, 4000.0, 1e-4, "absorbance"),
    "jtpolys.jdx": (1844, 447.484259, 4002.28378, 2.384185791e-09, "transmittance"),
    "pacdec1.jdx": (3301, 4000.0, 700.0, 0.01, "transmittance-percent"),
    "sqzdupd1.jdx": (18669, 5000.0323, 499.95502, 4.5930663e-05, "transmittance"),
}
SQZ = {c: d for d, c in enumerate("@ABCDEFGHI")} | {c: -d for d, c in enumerate("@abcdefghi")}
DUP = {c: n for n, c in enumerate("STUVWXYZs", start=1)}


def independent_ordinates(path: Path) -> list[float]:
    """Raw ordinates of the (X++(Y..Y)) lines, decoded without the reader's code.

    Handles what the real files use: AFFN separated by blanks or signs (FIX, PAC) and SQZ
    with DUP (no DIF in these files).
    """
    text = path.read_bytes().split(b"\x1a")[0].decode("latin-1")
    body = text.split("##XYDATA=")[1].split("\n", 1)[1].split("##")[0]
    values: list[float] = []
    for line in body.splitlines():
        line = line.split("$$")[0].strip()
        if not line:
            continue
        tokens = re.findall(r"[@A-Ia-i][0-9.]*|[S-Zs][0-9]*|[+-]?[0-9.]+", line)
        row: list[float] = []
        for token in tokens[1:]:  # the first is the abscissa
            if token[0] in DUP:
                count = int(str(DUP[token[0]]) + token[1:])
                row += [row[-1]] * (count - 1)
            elif token[0] in SQZ:
                sign = -1 if token[0].islower() else 1
                row.append(sign * float(str(abs(SQZ[token[0]])) + token[1:]))
            else:
                row.append(float(token))
        values += row
    return values


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_files_match_header_and_independent_parse(instruments, name):
    path = instruments / "jcamp" / name
    assert reader_for(path).name == "jcamp"
    raw = read_scan(path)
    n_points, first_x, last_x, factor_y, kind = REAL[name]
    assert raw.values.shape == (1, n_points)
    assert raw.axis[0] == pytest.approx(first_x)
    assert raw.axis[-1] == pytest.approx(last_x)
    assert raw.axis_unit == "cm-1"
    assert raw.kind == kind
    expected = np.asarray(independent_ordinates(path)) * factor_y
    assert expected.size == n_points
    for index in (0, 1, n_points // 3, n_points // 2, n_points - 2, n_points - 1):
        assert raw.values[0, index] == pytest.approx(expected[index], rel=1e-12)
    np.testing.assert_allclose(raw.values[0], expected, rtol=1e-12)


def test_spot_values_written_in_the_files(instruments):
    # pacdec1 starts "4000 +10160+10159" (YFACTOR 0.01); fixinc2 "400 3487  3355" (1e-4).
    assert read_scan(instruments / "jcamp" / "pacdec1.jdx").values[0, :2] == pytest.approx(
        [101.60, 101.59]
    )
    fixinc2 = read_scan(instruments / "jcamp" / "fixinc2.jdx")
    assert fixinc2.values[0, :3] == pytest.approx([0.3487, 0.3355, 0.3264])
    assert fixinc2.values[0, -1] == pytest.approx(0.1275)  # last line "3997 1273 1274 1274 1275"
    meta = read_scan(instruments / "jcamp" / "SBO.jdx").metadata.iloc[0]
    assert meta["spectrum_name"] == "Smart Balance Original Spread"
    assert meta["acquired"] == "2016-11-22T00:00:00"


def sqz(value: int) -> str:
    digits = str(abs(value))
    return ("@ABCDEFGHI" if value >= 0 else "@abcdefghi")[int(digits[0])] + digits[1:]


def dif(step: int) -> str:
    digits = str(abs(step))
    return ("%JKLMNOPQR" if step >= 0 else "%jklmnopqr")[int(digits[0])] + digits[1:]


def difdup_lines(x: np.ndarray, y: list[int], per_line: int = 10) -> list[str]:
    """Encode integer ordinates as DIFDUP with Y checks (JCAMP-DX 4.24, section 5.9)."""
    lines, start = [], 0
    while start < len(y) - 1 or start == 0:
        stop = min(start + per_line, len(y) - 1)
        parts = [sqz(y[start])]
        steps = [y[i] - y[i - 1] for i in range(start + 1, stop + 1)]
        i = 0
        while i < len(steps):
            run = 1
            while i + run < len(steps) and steps[i + run] == steps[i]:
                run += 1
            parts.append(dif(steps[i]) + ("" if run == 1 else "STUVWXYZs"[run - 1]))
            i += run
        lines.append(f"{x[start]:g}" + "".join(parts))
        start = stop
        if stop == len(y) - 1:
            break
    return lines


def write_jcamp(path: Path, lines: list[str], records: dict[str, object]) -> None:
    head = ["##TITLE=test", "##JCAMP-DX=4.24"] + [f"##{k}={v}" for k, v in records.items()]
    path.write_text("\r\n".join([*head, "##XYDATA=(X++(Y..Y))", *lines, "##END="]) + "\r\n")


class TestDifForm:
    def setup(self, tmp_path, per_line=10):
        y = [500, 510, 520, 530, 530, 530, 480, 480, 480, 480, 481, 420, -70, -80, 0, 90, 95, 95]
        y = y * 3
        x = np.linspace(1000.0, 2000.0, len(y))
        records = {
            "XUNITS": "NANOMETERS",
            "YUNITS": "REFLECTANCE",
            "FIRSTX": 1000,
            "LASTX": 2000,
            "NPOINTS": len(y),
            "XFACTOR": 1,
            "YFACTOR": 0.001,
        }
        return x, y, records

    def test_difdup_with_y_checks_decodes_exactly(self, tmp_path):
        x, y, records = self.setup(tmp_path)
        path = tmp_path / "dif.jdx"
        write_jcamp(path, difdup_lines(x, y), records)
        raw = read_scan(path)
        assert raw.axis_unit == "nm"
        assert raw.kind == "reflectance"
        np.testing.assert_allclose(raw.values[0], np.asarray(y) * 0.001, rtol=1e-12)
        np.testing.assert_allclose(raw.axis, x)

    def test_bad_y_check_names_the_line(self, tmp_path):
        x, y, records = self.setup(tmp_path)
        lines = difdup_lines(x, y)
        # Corrupt a difference on line 2, so line 3's check value disagrees.
        lines[1] = lines[1][:-1] + ("J" if lines[1][-1] != "J" else "K")
        path = tmp_path / "bad.jdx"
        write_jcamp(path, lines, records)
        with pytest.raises(SpecsoilError, match=r"bad\.jdx: line 13: Y check"):
            read_scan(path)

    def test_missing_line_fails_the_x_check(self, tmp_path):
        x, y, records = self.setup(tmp_path)
        lines = difdup_lines(x, y)
        del lines[2]
        path = tmp_path / "gap.jdx"
        write_jcamp(path, lines, records)
        with pytest.raises(SpecsoilError, match=r"gap\.jdx: line 13: (abscissa|Y check)"):
            read_scan(path)


@pytest.mark.parametrize(
    ("xunits", "yunits", "values", "axis_unit", "kind"),
    [
        ("MICROMETERS", "ABSORBANCE", [1, 2, 3], "um", "absorbance"),
        ("NANOMETERS", "TRANSMITTANCE", [10, 50, 90], "nm", "transmittance-percent"),
        ("1/CM", "REFLECTANCE", [0.1, 0.2, 0.3], "cm-1", "reflectance"),
    ],
)
def test_units(tmp_path, xunits, yunits, values, axis_unit, kind):
    path = tmp_path / "units.dx"
    write_jcamp(
        path,
        ["1 " + " ".join(str(v) for v in values)],
        {"XUNITS": xunits, "YUNITS": yunits, "FIRSTX": 1, "LASTX": 3, "NPOINTS": 3},
    )
    raw = read_scan(path)
    assert (raw.axis_unit, raw.kind) == (axis_unit, kind)
    np.testing.assert_allclose(raw.values[0], values)


class TestBadInput:
    def test_truncated_data_names_npoints(self, instruments, tmp_path):
        lines = (instruments / "jcamp" / "fixinc2.jdx").read_text(encoding="latin-1").splitlines()
        end = next(i for i, line in enumerate(lines) if line.startswith("##END"))
        path = tmp_path / "short.jdx"
        path.write_text("\n".join([*lines[: end - 40], "##END="]))
        with pytest.raises(
            SpecsoilError,
            match=r"short\.jdx: the data up to line \d+ hold \d+ points; ##NPOINTS= says 3601",
        ):
            read_scan(path)

    def test_stray_character_names_line_and_position(self, instruments, tmp_path):
        lines = (instruments / "jcamp" / "pacdec1.jdx").read_text().splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("##XYDATA")) + 1
        lines[start + 2] = lines[start + 2][:10] + "#" + lines[start + 2][11:]
        path = tmp_path / "stray.jdx"
        path.write_text("\n".join(lines))
        with pytest.raises(SpecsoilError, match=rf"line {start + 3}, character 11: '#'"):
            read_scan(path)

    def test_second_spectrum_is_refused(self, instruments, tmp_path):
        text = (instruments / "jcamp" / "pacdec1.jdx").read_text()
        path = tmp_path / "two.jdx"
        path.write_text(text + text)
        with pytest.raises(SpecsoilError, match=r"two\.jdx: line 309 starts a second spectrum"):
            read_scan(path)

    def test_no_data_record(self, tmp_path):
        path = tmp_path / "empty.jdx"
        path.write_text("##TITLE=x\n##JCAMP-DX=4.24\n##XUNITS=1/CM\n##END=\n")
        with pytest.raises(SpecsoilError, match="no ##XYDATA= or ##XYPOINTS= record"):
            read_scan(path)
