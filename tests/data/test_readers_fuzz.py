"""Fuzzing read_spectra: mutated small real tables give a table or a SpecsoilError, nothing else.

Each example takes a slice of the real geeves fixture, writes it in one of the formats
read_spectra accepts (CSV with any separator and quoting, gzip, Parquet with various column
types), mutates it (cells, header names, separators, quotes, raw bytes, truncation) and reads
it. Examples are bounded and derandomized so that the suite stays fast and repeatable.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specsoil import SpecsoilError
from specsoil.data import SPECTRA_KINDS, read_spectra

GEEVES_SMALL = Path(__file__).resolve().parent / "fixtures" / "geeves_small.csv"
# 8 soils, every 6th band (36 bands): small enough to write and read in milliseconds.
BASE = pd.read_csv(GEEVES_SMALL).iloc[:8]
BASE = BASE[[*BASE.columns[:5], *BASE.columns[5::6]]]

FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

CELLS = st.one_of(
    st.sampled_from(
        [
            *["", "NA", "n.d.", "<0.1", ">5", "-", "abc", "0,25", "1e400", "-0.08", "150", "0"],
            *["inf", "-inf", "NaN", '"', "'", "\x00", "\u00e9", "0x1F", "1.2.3", " 0.3 "],
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


def _csv_text(frame: pd.DataFrame, separator: str, quoting: int) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, sep=separator, quoting=quoting, lineterminator="\n")
    return buffer.getvalue()


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A mutated CSV (bytes), maybe gzip-compressed and truncated."""
    frame = BASE.astype(object).copy()
    for _ in range(draw(st.integers(0, 3))):
        row = draw(st.integers(0, len(frame) - 1))
        column = draw(st.integers(0, frame.shape[1] - 1))
        frame.iat[row, column] = draw(CELLS)
    names = list(map(str, frame.columns))
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(0, len(names) - 1))
        names[position] = draw(
            st.one_of(
                st.sampled_from(["", "400", "0.5", "c1", "spc.400", names[0], "X", "a\nb"]),
                st.text(max_size=8),
            )
        )
    frame.columns = names
    separator = draw(st.sampled_from([",", ",", ";", "\t", "|"]))  # "|" is not supported
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    try:
        text = _csv_text(frame, separator, quoting)
    except (csv.Error, TypeError):
        text = _csv_text(BASE, ",", csv.QUOTE_MINIMAL)
    lines = text.split("\n")
    mutation = draw(st.sampled_from(["none", "repeat_header", "drop_field", "add_field"]))
    if mutation != "none" and len(lines) > 3:
        at = draw(st.integers(1, len(lines) - 2))
        if mutation == "repeat_header":
            lines.insert(at, lines[0])
        elif mutation == "drop_field":
            lines[at] = lines[at].rsplit(separator, 1)[0]
        else:
            lines[at] += separator + "0.5"
    if draw(st.integers(0, 4)) == 0:  # one line written with another separator
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] = lines[at].replace(separator, draw(st.sampled_from([",", ";", "\t"])))
    data = "\n".join(lines).encode("utf-8")
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    if draw(st.integers(0, 4)) == 0:  # raw bytes: broken UTF-8, NUL, a BOM mid-file
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    if draw(st.booleans()):
        data = gzip.compress(data)
    if draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def parquet_files(draw: st.DrawFn) -> bytes:
    """A Parquet file of the base table with some columns cast to other types, maybe cut."""
    frame = BASE.copy()
    columns: dict[str, pa.Array] = {}
    for name in frame.columns:
        values = frame[name].to_numpy()
        kind = draw(
            st.sampled_from(
                ["keep", "keep", "keep", "string", "int", "bool", "null", "date", "dict", "f16"]
            )
        )
        if kind == "string":
            array = pa.array([str(v) for v in values])
        elif kind == "int":
            array = pa.array(np.asarray(values, dtype=np.float64).astype(np.int64))
        elif kind == "bool":
            array = pa.array(np.asarray(values, dtype=np.float64) > 0.3)
        elif kind == "null":
            array = pa.nulls(len(values))
        elif kind == "date":
            array = pa.array(pd.to_datetime(np.arange(len(values)), unit="D"))
        elif kind == "dict":
            array = pa.array([str(v) for v in values]).dictionary_encode()
        elif kind == "f16":
            array = pa.array(np.asarray(values, dtype=np.float16))
        else:
            array = pa.array(values)
        columns[str(name)] = array
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    data = buffer.getvalue()
    if draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


READ_OPTIONS = st.fixed_dictionaries(
    {
        "spectra_kind": st.sampled_from([None, *SPECTRA_KINDS]),
        "drop_invalid": st.booleans(),
        "batch_rows": st.sampled_from([1, 3, 2000]),
        "censored": st.sampled_from(["missing", "half", "limit"]),
    }
)


def _read(path: Path, options: dict[str, object]) -> None:
    try:
        table = read_spectra(path, **options)  # type: ignore[arg-type]
    except SpecsoilError:
        return
    # A table that was read is usable: finite float32 absorbance, one metadata row per spectrum.
    assert table.X.dtype == np.float32
    assert np.isfinite(table.X).all()
    assert len(table.metadata) == table.n_samples > 0
    assert np.all(np.diff(table.wavelengths) > 0)


@pytest.mark.parametrize(
    ("name", "files"), [("fuzz.csv", csv_files()), ("fuzz.parquet", parquet_files())]
)
@FUZZ
@given(data=st.data(), options=READ_OPTIONS)
def test_mutated_tables_read_or_raise_specsoil_error(tmp_path, name, files, data, options):
    path = tmp_path / name
    path.write_bytes(data.draw(files))
    _read(path, options)


@pytest.mark.parametrize("share", [0.01, 0.3, 0.7, 0.99])
def test_truncated_gzip(tmp_path, share):
    data = gzip.compress(_csv_text(BASE, ",", csv.QUOTE_MINIMAL).encode())
    path = tmp_path / "t.csv.gz"
    path.write_bytes(data[: int(share * len(data))])
    with pytest.raises(SpecsoilError):
        read_spectra(path)
