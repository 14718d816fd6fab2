"""JCAMP-DX ``.jdx``/``.dx`` spectra (IUPAC JCAMP-DX 4.24 and 5.01, one spectrum per file).

Labelled data records (``##KEY=value``, values may run over several lines) describe the
spectrum; ``$$`` starts a comment. The data come as ``##XYDATA=(X++(Y..Y))``: each line is an
abscissa followed by ordinates, in AFFN (plain numbers, FIX and PAC forms included) or the
compressed ASDF forms:

- SQZ: the first digit and sign folded into a letter (``@A-I`` positive, ``a-i`` negative);
- DIF: a difference from the previous ordinate (``%J-R`` positive, ``j-r`` negative);
- DUP: a repeat count for the previous token (``S-Z`` for 1-8, ``s`` for 9).

A line whose last ordinate is a DIF repeats that ordinate first on the next line (the Y
check), which is compared and dropped. The line's abscissa times XFACTOR is checked against
FIRSTX + i * (LASTX - FIRSTX) / (NPOINTS - 1), the count against NPOINTS, and ordinates are
multiplied by YFACTOR. ``##XYPOINTS=(XY..XY)`` pairs are read as given. The abscissa is
FIRSTX..LASTX in the file's order (wavenumbers usually descend).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._registry import register_reader
from specsoil.data._scans import AxisUnit, RawSpectra, ScanKind, scan_metadata
from specsoil.data.formats._text import parse_date_time, read_lines

_SQZ = {"@": 0, **{c: i + 1 for i, c in enumerate("ABCDEFGHI")}}
_SQZ.update({c: -(i + 1) for i, c in enumerate("abcdefghi")})
_DIF = {"%": 0, **{c: i + 1 for i, c in enumerate("JKLMNOPQR")}}
_DIF.update({c: -(i + 1) for i, c in enumerate("jklmnopqr")})
_DUP = {**{c: i + 1 for i, c in enumerate("STUVWXYZ")}, "s": 9}
_ASDF = frozenset(_SQZ) | frozenset(_DIF) | frozenset(_DUP)
_SEPARATORS = " \t,;"
_XUNITS: dict[str, AxisUnit] = {
    "1/CM": "cm-1",
    "CM-1": "cm-1",
    "CM^-1": "cm-1",
    "NANOMETERS": "nm",
    "NM": "nm",
    "MICROMETERS": "um",
    "MICRONS": "um",
    "UM": "um",
}
# Ordinate units: the kind for fractions, and the kind when the values reach percent levels.
_YUNITS: dict[str, tuple[ScanKind, ScanKind]] = {
    "ABSORBANCE": ("absorbance", "absorbance"),
    "TRANSMITTANCE": ("transmittance", "transmittance-percent"),
    "REFLECTANCE": ("reflectance", "reflectance-percent"),
    "% TRANSMITTANCE": ("transmittance-percent", "transmittance-percent"),
    "%T": ("transmittance-percent", "transmittance-percent"),
    "% REFLECTANCE": ("reflectance-percent", "reflectance-percent"),
    "%R": ("reflectance-percent", "reflectance-percent"),
    "KUBELKA-MUNK": ("kubelka-munk", "kubelka-munk"),
    "COUNTS": ("counts", "counts"),
}
# A fraction cannot be much above 1; above this the values are taken as percent.
_PERCENT_ABOVE = 2.0
_DATE_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
_OLD_DATE = re.compile(r"^(\d\d)/(\d\d)/(\d\d)$")


def _without_comment(line: str) -> str:
    cut = line.find("$$")
    return line if cut < 0 else line[:cut]


class _Token:
    """One number of an ASDF/AFFN line: an absolute value, a difference or a repeat count."""

    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind  # "abs", "dif" or "dup"
        self.text = text


def _tokens(line: str, path: Path, number: int) -> list[_Token]:
    """Split one data line into tokens; raises naming the line on a stray character."""
    tokens: list[_Token] = []
    current: _Token | None = None
    # "E"/"e" are also SQZ digits (+5/-5): they start an exponent only on a line without
    # other ASDF characters, right after a digit and before a sign or a digit.
    plain = not any(char in _ASDF and char not in "eE" for char in line)
    for position, char in enumerate(line):
        if char.isdigit() or char == ".":
            if current is None:
                current = _Token("abs", "")
                tokens.append(current)
            current.text += char
        elif (
            char in "eE"
            and plain
            and current is not None
            and current.text[-1:].isdigit()
            and line[position + 1 : position + 2] in ("+", "-", *"0123456789")
            and line[position + 1 : position + 2] != ""
        ):
            current.text += char
        elif char in "+-":
            if current is not None and current.text[-1:] in ("e", "E"):
                current.text += char
            else:
                current = _Token("abs", char)
                tokens.append(current)
        elif char in _SEPARATORS:
            current = None
        elif char in _SQZ:
            current = _Token("abs", str(_SQZ[char]))
            tokens.append(current)
        elif char in _DIF:
            current = _Token("dif", str(_DIF[char]))
            tokens.append(current)
        elif char in _DUP:
            current = _Token("dup", str(_DUP[char]))
            tokens.append(current)
        else:
            raise SpecsoilError(
                f"{path}: line {number}, character {position + 1}: {char!r} is not part of "
                "a JCAMP-DX number (AFFN, SQZ, DIF or DUP)"
            )
    return tokens


def _number(token: _Token, path: Path, number: int) -> float:
    try:
        return float(token.text)
    except ValueError:
        raise SpecsoilError(f"{path}: line {number}: {token.text!r} is not a number") from None


def _decode_line(tokens: list[_Token], path: Path, number: int) -> tuple[float, list[float], bool]:
    """The abscissa, the ordinates and whether the last ordinate was a DIF."""
    if not tokens or tokens[0].kind != "abs":
        raise SpecsoilError(f"{path}: line {number}: expected an abscissa first")
    x = _number(tokens[0], path, number)
    ordinates: list[float] = []
    last_kind = "abs"
    last_step = 0.0
    for token in tokens[1:]:
        value = _number(token, path, number)
        if token.kind == "abs":
            ordinates.append(value)
            last_kind, last_step = "abs", value
        elif token.kind == "dif":
            if not ordinates:
                raise SpecsoilError(
                    f"{path}: line {number}: a difference (DIF) with no ordinate before it"
                )
            ordinates.append(ordinates[-1] + value)
            last_kind, last_step = "dif", value
        else:
            if not ordinates:
                raise SpecsoilError(f"{path}: line {number}: a repeat (DUP) with nothing to repeat")
            for _ in range(int(value) - 1):
                ordinates.append(ordinates[-1] + last_step if last_kind == "dif" else last_step)
    return x, ordinates, last_kind == "dif"


class JcampReader:
    """Reader for single-spectrum JCAMP-DX files."""

    name: str = "jcamp"
    description: str = "JCAMP-DX .jdx/.dx spectra: AFFN, FIX, PAC, SQZ, DIF and DUP forms"
    suffixes: tuple[str, ...] = (".jdx", ".dx", ".jcamp")

    def sniff(self, head: bytes, path: Path) -> bool:
        """True when the head declares JCAMP-DX (``##JCAMP-DX=``, usually after ``##TITLE=``)."""
        text = head.lstrip().upper()
        return text.startswith(b"##") and b"##JCAMP-DX" in text

    def read(self, path: Path) -> RawSpectra:
        """Read the file; see the module docstring for the forms and the checks."""
        lines = read_lines(path)
        records, data_start, data_form = self._records(lines, path)
        if data_start is None:
            raise SpecsoilError(
                f"{path}: no ##XYDATA= or ##XYPOINTS= record; expected one spectrum"
            )
        factor_x = self._float(records, "XFACTOR", path, default=1.0)
        factor_y = self._float(records, "YFACTOR", path, default=1.0)
        data_lines = []
        for index in range(data_start, len(lines)):
            text = _without_comment(lines[index]).strip()
            if text.startswith("##"):
                break
            if text:
                data_lines.append((index + 1, text))
        more = next(
            (
                i
                for i in range(data_start, len(lines))
                if lines[i].lstrip().upper().startswith("##TITLE")
            ),
            None,
        )
        if more is not None:
            raise SpecsoilError(
                f"{path}: line {more + 1} starts a second spectrum; only files of one spectrum "
                "are read (split the file)"
            )
        if data_form == "(X++(Y..Y))":
            axis, ordinates = self._xydata(records, data_lines, factor_x, path)
        elif data_form.replace(" ", "") in ("(XY..XY)", "(XY)"):
            axis, ordinates = self._xypoints(data_lines, factor_x, path)
            self._check_count(records, ordinates.size, path, data_start)
        else:
            raise SpecsoilError(
                f"{path}: line {data_start}: data form {data_form!r} is not read; expected "
                "(X++(Y..Y)) or (XY..XY)"
            )
        values = ordinates * factor_y
        axis_unit = self._axis_unit(records, path)
        kind, notes = self._kind(records, values, path)
        self._check_first_y(records, values, notes, path)
        return RawSpectra(
            values=values[None, :],
            axis=axis,
            axis_unit=axis_unit,
            kind=kind,
            metadata=scan_metadata([self._metadata(records, path)]),
            source=str(path),
            notes=tuple(notes),
        )

    @staticmethod
    def _records(lines: list[str], path: Path) -> tuple[dict[str, str], int | None, str]:
        """Labelled data records up to the data, the data's first line index and its form."""
        records: dict[str, str] = {}
        label = None
        for index, raw in enumerate(lines):
            line = _without_comment(raw)
            stripped = line.strip()
            if stripped.startswith("##"):
                key, sep, value = stripped[2:].partition("=")
                if not sep:
                    raise SpecsoilError(
                        f"{path}: line {index + 1}: {stripped!r} has no '='; expected ##LABEL=value"
                    )
                # Labels ignore case, spaces, dashes, slashes and underscores (JCAMP-DX 4.24).
                label = re.sub(r"[\s\-/_]", "", key).upper()
                if label in ("XYDATA", "XYPOINTS"):
                    return records, index + 1, value.strip().upper().replace(" ", "")
                if label in ("PEAKTABLE", "NTUPLES", "BLOCKS"):
                    raise SpecsoilError(
                        f"{path}: line {index + 1}: ##{key.strip()}= is not read (peak tables, "
                        "n-tuples and linked blocks); expected one spectrum as ##XYDATA="
                    )
                records.setdefault(label, value.strip())
            elif label is not None and stripped:
                records[label] = f"{records[label]} {stripped}".strip()
        return records, None, ""

    @staticmethod
    def _float(
        records: dict[str, str], key: str, path: Path, *, default: float | None = None
    ) -> float:
        if key not in records or not records[key]:
            if default is None:
                raise SpecsoilError(f"{path}: no ##{key}= record; it is required to read the data")
            return default
        try:
            return float(records[key])
        except ValueError:
            raise SpecsoilError(f"{path}: ##{key}={records[key]!r} is not a number") from None

    def _check_count(self, records: dict[str, str], count: int, path: Path, line: int) -> None:
        if "NPOINTS" in records:
            expected = int(self._float(records, "NPOINTS", path))
            if count != expected:
                raise SpecsoilError(
                    f"{path}: the data from line {line + 1} hold {count} points; ##NPOINTS= "
                    f"says {expected} (truncated or corrupt data)"
                )

    def _xydata(
        self,
        records: dict[str, str],
        data_lines: list[tuple[int, str]],
        factor_x: float,
        path: Path,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        first_x = self._float(records, "FIRSTX", path)
        last_x = self._float(records, "LASTX", path)
        n_points = int(self._float(records, "NPOINTS", path))
        if n_points < 1:
            raise SpecsoilError(f"{path}: ##NPOINTS={n_points}; expected at least 1")
        step = (last_x - first_x) / (n_points - 1) if n_points > 1 else 0.0
        ordinates: list[float] = []
        check_pending = False
        for number, text in data_lines:
            x, values, ends_in_dif = _decode_line(_tokens(text, path, number), path, number)
            # After a DIF line the first ordinate repeats the last one: the abscissa is its.
            point = len(ordinates) - 1 if check_pending else len(ordinates)
            expected = first_x + point * step
            # Abscissas are rounded in the file; half a step tells a wrong line from rounding.
            if abs(x * factor_x - expected) > 0.5 * abs(step) + 1e-9 * abs(expected):
                raise SpecsoilError(
                    f"{path}: line {number}: abscissa {x * factor_x:g} but point "
                    f"{point + 1} should be at {expected:g} (lines missing or out of order)"
                )
            if check_pending:
                if not values:
                    raise SpecsoilError(f"{path}: line {number}: no Y-check value")
                if abs(values[0] - ordinates[-1]) > 1e-9 * max(1.0, abs(ordinates[-1])):
                    raise SpecsoilError(
                        f"{path}: line {number}: Y check {values[0]:g} differs from the last "
                        f"value {ordinates[-1]:g} of the line before (corrupt DIF data)"
                    )
                values = values[1:]
            ordinates.extend(values)
            check_pending = ends_in_dif
        if len(ordinates) != n_points:
            where = data_lines[-1][0] if data_lines else "the end"
            raise SpecsoilError(
                f"{path}: the data up to line {where} hold {len(ordinates)} points; ##NPOINTS= "
                f"says {n_points} (truncated or corrupt data)"
            )
        axis = np.linspace(first_x, last_x, n_points)
        return axis, np.asarray(ordinates, dtype=np.float64)

    @staticmethod
    def _xypoints(
        data_lines: list[tuple[int, str]], factor_x: float, path: Path
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        numbers: list[float] = []
        for number, text in data_lines:
            for cell in re.split(r"[\s,;]+", text.strip()):
                if not cell:
                    continue
                try:
                    numbers.append(float(cell))
                except ValueError:
                    raise SpecsoilError(
                        f"{path}: line {number}: {cell!r} is not a number"
                    ) from None
        if not numbers or len(numbers) % 2:
            raise SpecsoilError(
                f"{path}: (XY..XY) data hold {len(numbers)} numbers; expected x,y pairs"
            )
        pairs = np.asarray(numbers, dtype=np.float64).reshape(-1, 2)
        return pairs[:, 0] * factor_x, pairs[:, 1]

    @staticmethod
    def _axis_unit(records: dict[str, str], path: Path) -> AxisUnit:
        unit = records.get("XUNITS", "").strip().upper()
        if unit not in _XUNITS:
            raise SpecsoilError(
                f"{path}: ##XUNITS={records.get('XUNITS', '')!r} is not read; expected "
                "1/CM, NANOMETERS or MICROMETERS"
            )
        return _XUNITS[unit]

    @staticmethod
    def _kind(
        records: dict[str, str], values: NDArray[np.float64], path: Path
    ) -> tuple[ScanKind, list[str]]:
        unit = " ".join(records.get("YUNITS", "").upper().split())
        if unit not in _YUNITS:
            return "unknown", [f"##YUNITS={records.get('YUNITS', '')!r} is not a known quantity"]
        fraction, percent = _YUNITS[unit]
        high = float(np.nanmax(values)) if values.size else 0.0
        if fraction != percent and high > _PERCENT_ABOVE:
            return percent, [f"##YUNITS={unit} with values up to {high:g}: read as percent"]
        return fraction, []

    def _check_first_y(
        self, records: dict[str, str], values: NDArray[np.float64], notes: list[str], path: Path
    ) -> None:
        if "FIRSTY" not in records or not values.size:
            return
        first_y = self._float(records, "FIRSTY", path)
        spread = float(np.nanmax(values) - np.nanmin(values)) or 1.0
        if abs(values[0] - first_y) > 1e-3 * spread:
            notes.append(f"##FIRSTY={first_y:g} but the first value read is {values[0]:g}")

    @staticmethod
    def _metadata(records: dict[str, str], path: Path) -> dict[str, object]:
        acquired = None
        if records.get("LONGDATE"):
            acquired = parse_date_time(records["LONGDATE"], _DATE_FORMATS)
        elif records.get("DATE"):
            old = _OLD_DATE.match(records["DATE"].strip())
            if old:  # JCAMP-DX 4.24 DATE=YY/MM/DD
                year = int(old[1]) + (1900 if int(old[1]) >= 50 else 2000)
                stamp = f"{year}/{old[2]}/{old[3]} {records.get('TIME', '').strip()}"
                acquired = parse_date_time(stamp.replace(".", ":"), _DATE_FORMATS) or (
                    parse_date_time(stamp.split()[0], _DATE_FORMATS)
                )
        return {
            "source_file": str(path),
            "spectrum_name": records.get("TITLE") or path.stem,
            "instrument": records.get("SPECTROMETERDATASYSTEM") or records.get("INSTRUMENT"),
            "serial_number": records.get("$SERIALNUMBER") or None,
            "acquired": acquired,
            "file_format": "jcamp",
        }


register_reader(JcampReader())
