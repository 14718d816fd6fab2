"""Reading spectra tables: formats, column order, kinds, invalid values and Parquet conversion."""

from __future__ import annotations

import bz2
import csv
import gzip
import logging
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from specsoil import SpecsoilError
from specsoil.data import convert_to_parquet, read_spectra

GEEVES_SMALL = Path(__file__).resolve().parent / "fixtures" / "geeves_small.csv"
LAB = ["clay_pct", "silt_pct", "sand_pct", "total_carbon_pct"]


@pytest.fixture
def raw() -> pd.DataFrame:
    """The fixture CSV as pandas reads it: sample_id, 4 lab values, reflectance 350..2500."""
    return pd.read_csv(GEEVES_SMALL)


def spectral_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.isdigit()]


def expected_absorbance(reflectance: np.ndarray) -> np.ndarray:
    """log10(1/R) in float64, written out independently of the reader."""
    return np.log(1.0 / np.asarray(reflectance, dtype=np.float64)) / np.log(10.0)


def renamed(frame: pd.DataFrame, template: str) -> pd.DataFrame:
    return frame.rename(columns={c: template.format(w=c) for c in spectral_columns(frame)})


def write(frame: pd.DataFrame, path: Path, **kwargs) -> Path:
    frame.to_csv(path, index=False, **kwargs)
    return path


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class TestFormats:
    @pytest.mark.parametrize("sep", [",", ";", "\t"])
    def test_separators_and_golden_absorbance(self, raw, tmp_path, sep):
        path = write(renamed(raw, "spc.{w}"), tmp_path / "table.txt", sep=sep)
        table = read_spectra(path, spectra_kind="reflectance")
        columns = spectral_columns(raw)
        assert table.X.shape == (60, 216)
        assert table.X.dtype == np.float32
        assert_allclose(table.X, expected_absorbance(raw[columns]), rtol=1e-6, atol=1e-7)
        assert_array_equal(table.wavelengths, np.arange(350.0, 2501.0, 10.0))
        assert list(table.metadata.columns) == ["sample_id", *LAB]
        assert_array_equal(table.metadata["clay_pct"], raw["clay_pct"])
        assert table.source == str(path)

    @pytest.mark.parametrize(
        ("opener", "name"),
        [
            (gzip.open, "table.csv.gz"),
            (gzip.open, "table.csv"),  # gzip recognised by content, not by name
            (bz2.open, "table.csv.bz2"),
            (lzma.open, "table.csv.xz"),
        ],
    )
    def test_compressed(self, raw, tmp_path, opener, name):
        text = renamed(raw, "X{w}").to_csv(index=False)
        with opener(tmp_path / name, "wt", encoding="utf-8") as handle:
            handle.write(text)
        table = read_spectra(tmp_path / name, spectra_kind="reflectance")
        assert_allclose(table.X, expected_absorbance(raw[spectral_columns(raw)]), rtol=1e-6)

    def test_quoted_header_bom_and_crlf(self, raw, tmp_path):
        path = tmp_path / "excel.csv"
        frame = renamed(raw, "{w} nm")
        frame.to_csv(
            path,
            index=False,
            sep=";",
            quoting=csv.QUOTE_ALL,
            encoding="utf-8-sig",
            lineterminator="\r\n",
        )
        table = read_spectra(path, spectra_kind="reflectance")
        assert table.X.shape == (60, 216)
        assert list(table.metadata.columns) == ["sample_id", *LAB]
        assert_allclose(table.X, expected_absorbance(raw[spectral_columns(raw)]), rtol=1e-6)

    def test_lucas_layout_wide_header(self, tmp_path):
        grid = 400 + 0.5 * np.arange(4200)
        rng = np.random.default_rng(0)
        reflectance = rng.uniform(0.05, 0.9, (6, grid.size))
        lab = ["coarse", "clay", "silt", "sand", "pH.in.CaCl2", "pH.in.H2O", "OC", "CaCO3"]
        frame = pd.DataFrame({"POINT_ID": [f"P{i:05d}" for i in range(6)]})
        frame["GPS_LAT"] = rng.uniform(35, 60, 6)
        frame["GPS_LONG"] = rng.uniform(-10, 30, 6)
        for name in lab:
            frame[name] = rng.uniform(0, 50, 6)
        spectra = pd.DataFrame(reflectance, columns=[f"spc.{w:g}" for w in grid])
        path = write(pd.concat([frame, spectra], axis=1), tmp_path / "lucas.csv", sep=";")
        table = read_spectra(path, spectra_kind="reflectance", batch_rows=4)
        assert table.X.shape == (6, 4200)
        assert table.wavelengths[[0, -1]].tolist() == [400.0, 2499.5]
        assert list(table.metadata.columns) == ["POINT_ID", "GPS_LAT", "GPS_LONG", *lab]
        assert table.metadata["POINT_ID"].tolist() == frame["POINT_ID"].tolist()
        assert_allclose(table.X, expected_absorbance(reflectance), rtol=1e-5)

    def test_foreign_parquet(self, raw, tmp_path):
        path = tmp_path / "table.dat"  # Parquet recognised by its PAR1 signature
        renamed(raw, "wl_{w}").to_parquet(path)
        table = read_spectra(path)
        assert table.kind_detected
        assert table.spectra_kind == "reflectance"
        assert_allclose(table.X, expected_absorbance(raw[spectral_columns(raw)]), rtol=1e-6)
        assert_array_equal(table.metadata["sand_pct"], raw["sand_pct"])

    def test_small_batches_give_the_same_table(self, raw, tmp_path):
        path = write(raw, tmp_path / "table.csv")
        whole = read_spectra(path, spectra_kind="reflectance")
        for batch_rows in (1, 7):
            batched = read_spectra(path, spectra_kind="reflectance", batch_rows=batch_rows)
            assert_array_equal(batched.X, whole.X)
            pd.testing.assert_frame_equal(batched.metadata, whole.metadata)

    def test_metadata_types(self, tmp_path):
        lines = ["sample_id,site,code,depth,OC,400,500,600"]
        lines += [
            f"S{i:02d},{site},{code},{i * 10},{oc},0.2,0.3,0.4"
            for i, (site, code, oc) in enumerate(
                [("12", "007", "1.5"), ("7", "010", ""), ("north", "123", "NA"), ("3", "", "2.25")]
            )
        ]
        table = read_spectra(
            write_lines(tmp_path / "t.csv", lines), spectra_kind="reflectance", batch_rows=1
        )
        meta = table.metadata
        assert meta["sample_id"].tolist() == ["S00", "S01", "S02", "S03"]
        # Text in one batch keeps the whole column as text, even the rows that look numeric.
        assert meta["site"].tolist() == ["12", "7", "north", "3"]
        assert meta["code"].tolist()[:3] == ["007", "010", "123"]  # leading zeros: a code
        assert pd.isna(meta["code"].iloc[3])
        assert pd.api.types.is_integer_dtype(meta["depth"])
        assert_array_equal(table.targets(["OC"])[:, 0], [1.5, np.nan, np.nan, 2.25])
        assert meta.index.tolist() == [0, 1, 2, 3]

    def test_geeves_small_fixture(self, geeves_small, raw):
        assert geeves_small.X.shape == (60, 216)
        assert geeves_small.spectra_kind == "reflectance"
        assert_array_equal(geeves_small.sample_ids, raw["sample_id"].astype(str))


class TestColumnOrder:
    @pytest.mark.parametrize("order", ["descending", "shuffled"])
    def test_columns_sorted_ascending(self, raw, tmp_path, order):
        columns = spectral_columns(raw)
        moved = (
            columns[::-1]
            if order == "descending"
            else list(np.random.default_rng(5).permutation(columns))
        )
        path = write(raw[["sample_id", *moved, *LAB]], tmp_path / "t.csv")
        table = read_spectra(path, spectra_kind="reflectance")
        assert_array_equal(table.wavelengths, np.sort(np.array(columns, dtype=float)))
        assert_allclose(table.X, expected_absorbance(raw[columns]), rtol=1e-6)
        assert list(table.metadata.columns) == ["sample_id", *LAB]

    def test_irregular_grid(self, raw, tmp_path):
        columns = spectral_columns(raw)
        keep = [c for i, c in enumerate(columns) if i % 3 != 1 and i % 7 != 2]
        path = write(raw[["sample_id", *keep]], tmp_path / "t.csv")
        table = read_spectra(path)
        assert_array_equal(table.wavelengths, np.array(keep, dtype=float))
        assert table.spectra_kind == "reflectance"


class TestKind:
    @pytest.mark.parametrize(
        ("scale", "to_absorbance", "kind"),
        [
            (1.0, False, "reflectance"),
            (100.0, False, "reflectance-percent"),
            (1.0, True, "absorbance"),
        ],
    )
    def test_detected(self, raw, tmp_path, scale, to_absorbance, kind):
        columns = spectral_columns(raw)
        frame = raw.copy()
        values = frame[columns].to_numpy() * scale
        frame[columns] = expected_absorbance(values) if to_absorbance else values
        table = read_spectra(write(frame, tmp_path / "t.csv"))
        assert (table.spectra_kind, table.kind_detected) == (kind, True)
        assert table.kind_reason
        assert_allclose(table.X, expected_absorbance(raw[columns]), rtol=1e-5, atol=1e-6)

    def test_declared(self, raw, tmp_path):
        table = read_spectra(write(raw, tmp_path / "t.csv"), spectra_kind="absorbance")
        assert (table.spectra_kind, table.kind_detected, table.kind_reason) == (
            "absorbance",
            False,
            "declared",
        )
        assert_allclose(table.X, raw[spectral_columns(raw)].to_numpy(), rtol=1e-6)


def small_table(tmp_path: Path, cell: str, *, row: int = 3, sep: str = ",") -> Path:
    """Five rows of reflectance with ``cell`` at data row ``row``, column ``spc.500``."""
    lines = [sep.join(["id", "spc.400", "spc.500", "spc.600"])]
    for i in range(1, 6):
        value = cell if i == row else "0.3"
        lines.append(sep.join([f"s{i}", "0.2", value, "0.4"]))
    return write_lines(tmp_path / "t.csv", lines)


class TestInvalidValues:
    @pytest.mark.parametrize(
        ("cell", "what"),
        [
            ("abc", "'abc' is not a number"),
            ("", "missing value"),
            ("NA", "missing value"),
            ("NaN", "missing value"),
            ("inf", "value inf is not finite"),
            ("-inf", "value -inf is not finite"),
            ("0", "reflectance value 0 is not > 0"),
            ("-0.01", "reflectance value -0.01 is not > 0"),
        ],
    )
    def test_error_names_row_line_column_and_value(self, tmp_path, cell, what):
        path = small_table(tmp_path, cell)
        with pytest.raises(SpecsoilError) as info:
            read_spectra(path, spectra_kind="reflectance")
        message = str(info.value)
        assert str(path) in message
        assert "data row 3 (line 4), column 'spc.500'" in message
        assert what in message
        assert "drop" in message

    def test_decimal_comma_hint(self, tmp_path):
        path = small_table(tmp_path, "0,25", sep=";")
        with pytest.raises(SpecsoilError, match="decimal commas"):
            read_spectra(path, spectra_kind="reflectance")

    def test_line_counts_blank_lines(self, tmp_path):
        lines = ["id,400,500,600", "a,0.2,0.3,0.4", "", "b,0.2,0.3,0.4", "c,0.2,x,0.4"]
        with pytest.raises(SpecsoilError, match=r"data row 3 \(line 5\), column '500'"):
            read_spectra(write_lines(tmp_path / "t.csv", lines), spectra_kind="reflectance")

    def test_drop_invalid(self, tmp_path, caplog):
        lines = ["id,400,500,600,clay"]
        cells = ["0.3", "abc", "0.3", "0.3", "", "0.3", "inf"]
        lines += [f"s{i},0.2,{c},0.4,{i}" for i, c in enumerate(cells, start=1)]
        with caplog.at_level(logging.WARNING, logger="specsoil"):
            table = read_spectra(
                write_lines(tmp_path / "t.csv", lines),
                spectra_kind="reflectance",
                drop_invalid=True,
                batch_rows=2,
            )
        assert table.dropped_rows == (2, 5, 7)
        assert table.metadata["id"].tolist() == ["s1", "s3", "s4", "s6"]
        assert table.targets(["clay"])[:, 0].tolist() == [1, 3, 4, 6]
        assert_allclose(table.X, expected_absorbance(np.tile([0.2, 0.3, 0.4], (4, 1))), rtol=1e-6)
        assert "dropped 3 rows" in caplog.text

    def test_drop_many_text_columns(self, tmp_path):
        # Text in more than a few spectral columns switches them all to text parsing.
        names = [str(w) for w in range(400, 410)]
        lines = [",".join(["id", *names])]
        for i in range(8):
            cells = ["0.5"] * 10
            if i % 2:
                cells[i] = "n/d"
            lines.append(",".join([f"s{i}", *cells]))
        table = read_spectra(
            write_lines(tmp_path / "t.csv", lines),
            spectra_kind="reflectance",
            drop_invalid=True,
        )
        assert table.dropped_rows == (2, 4, 6, 8)
        assert_allclose(table.X, np.full((4, 10), np.log10(2.0)), rtol=1e-6)

    def test_non_positive_found_after_detection(self, tmp_path):
        lines = ["id,1850,1910,2050"] + [f"s{i},0.5,0.3,0.5" for i in range(4)]
        lines.append("s4,0.5,0,0.5")
        path = write_lines(tmp_path / "t.csv", lines)
        with pytest.raises(SpecsoilError, match=r"data row 5 \(line 6\), column '1910'.*detected"):
            read_spectra(path)
        table = read_spectra(path, drop_invalid=True)
        assert table.spectra_kind == "reflectance"
        assert table.dropped_rows == (5,)
        assert table.n_samples == 4

    def test_zero_percent(self, tmp_path):
        with pytest.raises(SpecsoilError, match="reflectance-percent value 0 is not > 0"):
            read_spectra(small_table(tmp_path, "0"), spectra_kind="reflectance-percent")

    def test_negative_absorbance_is_fine(self, tmp_path):
        table = read_spectra(small_table(tmp_path, "-0.01"), spectra_kind="absorbance")
        assert table.X[2, 1] == np.float32(-0.01)

    def test_all_rows_invalid(self, tmp_path):
        lines = ["id,400,500,600"] + [f"s{i},0.2,,0.4" for i in range(3)]
        with pytest.raises(SpecsoilError, match="all 3 data rows"):
            read_spectra(write_lines(tmp_path / "t.csv", lines), drop_invalid=True)


class TestBadFiles:
    def test_missing_file(self, tmp_path):
        with pytest.raises(SpecsoilError, match=r"nope\.csv: no such file"):
            read_spectra(tmp_path / "nope.csv")

    def test_folder_without_scans(self, tmp_path):
        # A folder is read as scan files; one without any says so.
        (tmp_path / "notes.txt").write_text("not a spectrum\n")
        with pytest.raises(SpecsoilError, match=r"no readable scans \(1 files looked at: .*notes"):
            read_spectra(tmp_path)

    @pytest.mark.parametrize("content", ["", "\n\n"])
    def test_empty_file(self, tmp_path, content):
        path = tmp_path / "empty.csv"
        path.write_text(content)
        with pytest.raises(SpecsoilError, match="empty file"):
            read_spectra(path)

    def test_header_only(self, tmp_path):
        with pytest.raises(SpecsoilError, match="no data rows"):
            read_spectra(write_lines(tmp_path / "t.csv", ["id,400,500,600"]))

    @pytest.mark.parametrize(("row", "fields"), [("s2,0.2,0.3,0.4,0.5", 5), ("s2,0.2,0.3", 3)])
    def test_ragged_row(self, tmp_path, row, fields):
        lines = ["id,400,500,600", "s1,0.2,0.3,0.4", "", row, "s3,0.2,0.3,0.4"]
        with pytest.raises(SpecsoilError, match=f"line 4 has {fields} fields but the header has 4"):
            read_spectra(write_lines(tmp_path / "t.csv", lines), drop_invalid=True)

    def test_no_spectral_columns(self, tmp_path):
        with pytest.raises(SpecsoilError, match=r"t\.csv: no spectral columns"):
            read_spectra(write_lines(tmp_path / "t.csv", ["id,clay,sand", "a,1,2"]))

    def test_duplicate_metadata_column(self, tmp_path):
        lines = ["id,clay,400,500,600,clay", "a,1,0.2,0.3,0.4,2"]
        with pytest.raises(SpecsoilError, match=r"'clay' appears twice .*columns 2 and 6"):
            read_spectra(write_lines(tmp_path / "t.csv", lines))

    def test_zip_archive(self, tmp_path):
        path = tmp_path / "t.zip"
        path.write_bytes(b"PK\x03\x04" + b"\x00" * 20)
        with pytest.raises(SpecsoilError, match="zip archive"):
            read_spectra(path)

    def test_broken_parquet(self, tmp_path):
        path = tmp_path / "t.parquet"
        path.write_bytes(b"PAR1 but not really")
        with pytest.raises(SpecsoilError, match="not a readable Parquet file"):
            read_spectra(path)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [({"spectra_kind": "transmittance"}, "spectra_kind"), ({"batch_rows": 0}, "batch_rows")],
    )
    def test_bad_arguments(self, raw, tmp_path, kwargs, match):
        with pytest.raises(SpecsoilError, match=match):
            read_spectra(write(raw, tmp_path / "t.csv"), **kwargs)


class TestConvertToParquet:
    def test_round_trip(self, raw, tmp_path):
        src = write(renamed(raw, "spc.{w}"), tmp_path / "t.csv", sep=";")
        dst = tmp_path / "out" / "t.parquet"
        written = convert_to_parquet(src, dst, spectra_kind="reflectance", batch_rows=16)
        assert pq.ParquetFile(dst).metadata.num_row_groups == 4
        back = read_spectra(dst)
        assert_array_equal(back.X, written.X)
        assert_array_equal(back.wavelengths, written.wavelengths)
        pd.testing.assert_frame_equal(back.metadata, written.metadata)
        assert (back.spectra_kind, back.kind_detected, back.kind_reason) == (
            "reflectance",
            False,
            "declared",
        )
        assert_allclose(back.X, expected_absorbance(raw[spectral_columns(raw)]), rtol=1e-6)

    def test_schema(self, raw, tmp_path):
        dst = tmp_path / "t.parquet"
        convert_to_parquet(write(raw, tmp_path / "t.csv"), dst, spectra_kind="reflectance")
        schema = pq.read_schema(dst)
        assert schema.names[:5] == ["sample_id", *LAB]
        assert schema.names[5:8] == ["350", "360", "370"]
        assert {str(schema.field(n).type) for n in schema.names[5:]} == {"float"}
        assert schema.metadata[b"specsoil.spectra_kind"] == b"reflectance"

    def test_detected_kind_is_kept(self, raw, tmp_path):
        columns = spectral_columns(raw)
        frame = raw.copy()
        frame[columns] = 100 * frame[columns]
        dst = tmp_path / "t.parquet"
        written = convert_to_parquet(write(frame, tmp_path / "t.csv"), dst)
        back = read_spectra(dst)
        # The file holds absorbance; the recorded kind, not a new detection, labels it.
        assert (back.spectra_kind, back.kind_detected) == ("reflectance-percent", True)
        assert back.kind_reason == written.kind_reason
        assert_array_equal(back.X, written.X)

    def test_declaring_another_kind_on_read(self, raw, tmp_path):
        dst = tmp_path / "t.parquet"
        convert_to_parquet(write(raw, tmp_path / "t.csv"), dst, spectra_kind="reflectance")
        assert read_spectra(dst, spectra_kind="absorbance").spectra_kind == "absorbance"
        with pytest.raises(SpecsoilError, match="was converted from reflectance"):
            read_spectra(dst, spectra_kind="reflectance-percent")

    def test_dropped_rows_are_left_out(self, tmp_path):
        dst = tmp_path / "t.parquet"
        written = convert_to_parquet(
            small_table(tmp_path, "abc"), dst, spectra_kind="reflectance", drop_invalid=True
        )
        assert written.dropped_rows == (3,)
        back = read_spectra(dst)
        assert back.metadata["id"].tolist() == ["s1", "s2", "s4", "s5"]
        assert back.dropped_rows == ()

    def test_failure_leaves_no_file(self, tmp_path):
        dst = tmp_path / "t.parquet"
        with pytest.raises(SpecsoilError):
            convert_to_parquet(small_table(tmp_path, "abc"), dst, spectra_kind="reflectance")
        assert list(tmp_path.iterdir()) == [tmp_path / "t.csv"]

    def test_no_metadata_columns(self, tmp_path):
        src = write_lines(tmp_path / "t.csv", ["400,500,600", "0.2,0.3,0.4", "0.5,0.6,0.7"])
        dst = tmp_path / "t.parquet"
        convert_to_parquet(src, dst, spectra_kind="reflectance")
        back = read_spectra(dst)
        assert back.metadata.shape == (2, 0)
        assert_allclose(back.X, expected_absorbance([[0.2, 0.3, 0.4], [0.5, 0.6, 0.7]]), rtol=1e-6)

    def test_metadata_named_like_a_band(self, tmp_path):
        lines = ["id,500,spc.400,spc.450,spc.500", "a,1,0.2,0.3,0.4"]
        with pytest.raises(SpecsoilError, match="'500' has the name of a wavelength column"):
            convert_to_parquet(
                write_lines(tmp_path / "t.csv", lines),
                tmp_path / "t.parquet",
                spectra_kind="reflectance",
            )


def geeves_with(raw: pd.DataFrame, path: Path, cells: dict[tuple[int, str], str]) -> Path:
    """The fixture with some cells replaced by text (row position, column name)."""
    frame = raw.astype(object)
    for (row, column), value in cells.items():
        frame.loc[row, column] = value
    return write(frame, path)


class TestImpossibleCells:
    @pytest.mark.parametrize(
        ("scale", "cell", "what"),
        [
            (1.0, "-0.08", "reflectance value -0.08 is not > 0"),
            (1.0, "150", "reflectance value 150 is above 1"),
            (1.0, "1.01", "reflectance value 1.01 is above 1"),
            (100.0, "150", "reflectance-percent value 150 is above 100"),
            (100.0, "-8", "reflectance-percent value -8 is not > 0"),
        ],
    )
    def test_detected_kind_is_kept_and_the_cell_named(self, raw, tmp_path, scale, cell, what):
        frame = raw.copy()
        columns = spectral_columns(raw)
        frame[columns] = frame[columns] * scale
        path = geeves_with(frame, tmp_path / "t.csv", {(7, "500"): cell})
        with pytest.raises(SpecsoilError) as info:
            read_spectra(path)
        message = str(info.value)
        assert "data row 8 (line 9), column '500'" in message
        assert what in message
        assert "kind detected" in message
        table = read_spectra(path, drop_invalid=True)
        kind = "reflectance" if scale == 1.0 else "reflectance-percent"
        assert (table.spectra_kind, table.dropped_rows, table.n_samples) == (kind, (8,), 59)
        assert_allclose(
            table.X, expected_absorbance(raw[columns].drop(index=7)), rtol=1e-5, atol=1e-6
        )

    def test_absorbance_out_of_range(self, raw, tmp_path):
        frame = raw.copy()
        columns = spectral_columns(raw)
        frame[columns] = expected_absorbance(frame[columns])
        path = geeves_with(frame, tmp_path / "t.csv", {(2, "1000"): "150"})
        with pytest.raises(SpecsoilError, match=r"data row 3 \(line 4\), column '1000': absorb"):
            read_spectra(path)

    def test_declared_kind_is_checked_while_reading(self, tmp_path):
        with pytest.raises(SpecsoilError, match=r"data row 3 \(line 4\).*value 1.5 is above 1"):
            read_spectra(small_table(tmp_path, "1.5"), spectra_kind="reflectance")
        path = write_lines(tmp_path / "p.csv", ["id,400,500,600", "a,20,150.5,30"])
        with pytest.raises(SpecsoilError, match=r"value 150\.5 is above 100"):
            read_spectra(path, spectra_kind="reflectance-percent")


def concatenated(path: Path, text: str, at: int) -> Path:
    lines = text.strip("\n").split("\n")
    return write_lines(path, lines[:at] + lines)


class TestRepeatedHeader:
    @pytest.mark.parametrize("template", ["{w}", "spc.{w}", "{w}nm"])
    def test_named_with_its_line(self, raw, tmp_path, template):
        text = renamed(raw, template).to_csv(index=False)
        path = concatenated(tmp_path / "t.csv", text, 31)
        with pytest.raises(SpecsoilError) as info:
            read_spectra(path)
        assert "line 32 repeats the header; two files concatenated? (data row 31)" in str(
            info.value
        )

    def test_dropped_and_counted(self, raw, tmp_path, caplog):
        text = raw.to_csv(index=False)
        path = concatenated(tmp_path / "t.csv", text, 31)
        with caplog.at_level(logging.WARNING, logger="specsoil"):
            table = read_spectra(path, drop_invalid=True, batch_rows=7)
        assert table.dropped_rows == (31,)
        assert table.n_samples == 90
        assert table.spectra_kind == "reflectance"
        # The lab columns are numbers again once the header row is gone.
        assert pd.api.types.is_numeric_dtype(table.metadata["clay_pct"])
        assert "1 of them repeated headers" in caplog.text

    def test_declared_kind_does_not_hide_it(self, raw, tmp_path):
        path = concatenated(tmp_path / "t.csv", raw.to_csv(index=False), 5)
        with pytest.raises(SpecsoilError, match="line 6 repeats the header"):
            read_spectra(path, spectra_kind="absorbance")


class TestLabValues:
    def test_text_notes_become_missing_and_are_counted(self, raw, tmp_path):
        cells = {(1, "clay_pct"): "n.d.", (2, "clay_pct"): "<5", (3, "clay_pct"): "-"}
        cells |= {(4, "clay_pct"): ">60", (5, "sand_pct"): "<LOD", (6, "sand_pct"): ""}
        path = geeves_with(raw, tmp_path / "t.csv", cells)
        table = read_spectra(path)
        assert dict(table.lab_value_counts) == {
            "clay_pct": {"missing": 2, "below": 1, "above": 1},
            "sand_pct": {"missing": 2},
        }
        clay = table.targets(["clay_pct"])[:6, 0]
        assert_array_equal(clay, [raw["clay_pct"][0], *[np.nan] * 4, raw["clay_pct"][5]])
        assert "clay_pct" in table.numeric_columns()
        half = read_spectra(path, censored="half").targets(["clay_pct"])[1:5, 0]
        assert_array_equal(half, [np.nan, 2.5, np.nan, 60.0])
        limit = read_spectra(path, censored="limit").targets(["clay_pct"])[1:5, 0]
        assert_array_equal(limit, [np.nan, 5.0, np.nan, 60.0])

    def test_other_text_names_row_column_and_value(self, raw, tmp_path):
        path = geeves_with(raw, tmp_path / "t.csv", {(1, "clay_pct"): "n.d.", (9, "clay_pct"): "a"})
        table = read_spectra(path)
        with pytest.raises(SpecsoilError, match=r"'clay_pct', data row 10: 'a' is not a number"):
            table.targets(["clay_pct"])

    def test_unknown_policy(self, raw, tmp_path):
        with pytest.raises(SpecsoilError, match="censored must be one of"):
            read_spectra(write(raw, tmp_path / "t.csv"), censored="zero")


class TestSpectralColumnsOption:
    def test_regex_overrides_the_choice(self, raw, tmp_path):
        counter = pd.DataFrame(0.5, index=raw.index, columns=[f"c{i}" for i in range(300)])
        frame = pd.concat([renamed(raw, "spc.{w}"), counter], axis=1)
        path = write(frame, tmp_path / "t.csv")
        assert read_spectra(path).wavelengths.size == 216  # the counter is not taken
        table = read_spectra(path, spectral_columns=r"^spc\.", spectra_kind="reflectance")
        assert table.wavelengths.size == 216
        assert "c299" in table.metadata.columns

    def test_micrometre_names(self, raw, tmp_path, caplog):
        frame = raw.rename(columns={c: f"{int(c) / 1000:g}" for c in spectral_columns(raw)})
        with caplog.at_level(logging.INFO, logger="specsoil"):
            table = read_spectra(write(frame, tmp_path / "t.csv"))
        assert_array_equal(table.wavelengths, np.arange(350.0, 2501.0, 10.0))
        assert "converted to nm" in caplog.text

    def test_parquet_and_conversion_take_it(self, raw, tmp_path):
        absorbance = -np.log10(raw[spectral_columns(raw)]).add_prefix("a_")
        frame = pd.concat([renamed(raw, "r_{w}"), absorbance], axis=1)
        src = write(frame, tmp_path / "t.csv")
        with pytest.raises(SpecsoilError, match="ambiguous spectral columns"):
            read_spectra(src)
        dst = tmp_path / "t.parquet"
        convert_to_parquet(src, dst, spectral_columns="^a_", spectra_kind="absorbance")
        frame.to_parquet(tmp_path / "foreign.parquet")
        foreign = read_spectra(tmp_path / "foreign.parquet", spectral_columns="^r_")
        assert_allclose(foreign.X, read_spectra(dst).X, rtol=1e-5, atol=1e-6)


class TestFileKinds:
    def test_excel_workbook(self, tmp_path):
        path = tmp_path / "lab.xlsx"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            archive.writestr("xl/workbook.xml", "<workbook/>")
        with pytest.raises(SpecsoilError, match="is an Excel workbook, not a CSV table; save"):
            read_spectra(path)

    def test_old_excel_workbook(self, tmp_path):
        path = tmp_path / "lab.xls"
        path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64)
        with pytest.raises(SpecsoilError, match=r"Excel 97-2003 workbook \(\.xls\)"):
            read_spectra(path)

    def test_opendocument_spreadsheet(self, tmp_path):
        path = tmp_path / "lab.ods"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        with pytest.raises(SpecsoilError, match="OpenDocument spreadsheet"):
            read_spectra(path)

    def test_header_field_over_the_csv_limit(self, tmp_path):
        # Python's csv module refuses fields over 131,072 characters by default.
        path = write_lines(
            tmp_path / "t.csv", ["id," + "x" * 200_000 + ",400,500,600", "a,1,0.2,0.3,0.4"]
        )
        table = read_spectra(path, spectra_kind="reflectance")
        assert table.metadata.columns[1] == "x" * 200_000

    def test_unclosed_quote_in_a_long_header(self, tmp_path):
        header = 'id,"400,' + ",".join(str(w) for w in range(401, 30000))
        path = write_lines(tmp_path / "t.csv", [header, "a,0.2"])
        with pytest.raises(SpecsoilError):
            read_spectra(path)
