"""The command line on misread-prone inputs: exit 2 with a message naming the cell, or a run.

Each case writes the real geeves fixture with one defect and runs ``specsoil cv`` with one fast
model; errors must come before any fit, with exit status 2 and no traceback.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from specsoil.cli import main
from specsoil.data import read_spectra
from specsoil.models import SpectralModel

GEEVES_SMALL = Path(__file__).resolve().parent / "fixtures" / "geeves_small.csv"
FAST = ("--model", "plsr", "--folds", "3")


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(GEEVES_SMALL)


def cv(capsys: pytest.CaptureFixture[str], path: Path, *argv: str) -> tuple[int, str]:
    out = path.parent / "report"
    status = main(["cv", "--data", str(path), "--out", str(out), "--overwrite", *FAST, *argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.err


def with_cells(raw: pd.DataFrame, path: Path, cells: dict[tuple[int, str], str]) -> Path:
    frame = raw.astype(object)
    for (row, column), value in cells.items():
        frame.loc[row, column] = value
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("-0.08", "data row 8 (line 9), column '500': reflectance value -0.08 is not > 0"),
        ("150", "data row 8 (line 9), column '500': reflectance value 150 is above 1"),
    ],
)
def test_one_bad_cell_exits_2_and_drop_invalid_reads_on(capsys, raw, tmp_path, cell, message):
    path = with_cells(raw, tmp_path / "bad.csv", {(7, "500"): cell})
    status, err = cv(capsys, path, "--target", "clay_pct")
    assert status == 2
    assert message in err
    status, err = cv(capsys, path, "--target", "clay_pct", "--drop-invalid")
    assert status == 0
    assert "59 samples" in err
    assert "reflectance (detected" in err
    resolved = json.loads((tmp_path / "report" / "metrics.json").read_text())["config"]
    assert resolved["dropped_rows"] == [8]


def test_concatenated_files_exit_2(capsys, raw, tmp_path):
    lines = GEEVES_SMALL.read_text().splitlines()
    path = tmp_path / "two.csv"
    path.write_text("\n".join(lines[:21] + lines) + "\n")
    status, err = cv(capsys, path, "--target", "clay_pct")
    assert status == 2
    assert "line 22 repeats the header; two files concatenated?" in err


def test_lab_notes_are_read_counted_and_reported(capsys, raw, tmp_path):
    cells = {(1, "clay_pct"): "n.d.", (2, "clay_pct"): "<5", (3, "clay_pct"): "NA"}
    path = with_cells(raw, tmp_path / "lab.csv", cells)
    status, err = cv(capsys, path, "--target", "clay_pct", "--censored", "half")
    assert status == 0
    assert "lab values: clay_pct 2 missing, 1 censored <x (censored values: half" in err
    report = (tmp_path / "report" / "report.md").read_text()
    assert '"lab_values"' in report
    resolved = json.loads((tmp_path / "report" / "metrics.json").read_text())["config"]
    assert resolved["lab_values"] == {
        "censored": "half",
        "counts": {"clay_pct": {"missing": 2, "below": 1}},
    }
    predictions = pd.read_csv(tmp_path / "report" / "predictions.csv")
    assert len(predictions) == 58  # the two missing values are left out, <5 is 2.5


def test_other_lab_text_names_row_column_and_value(capsys, raw, tmp_path):
    path = with_cells(raw, tmp_path / "lab.csv", {(1, "clay_pct"): "n.d.", (4, "clay_pct"): "x"})
    status, err = cv(capsys, path, "--target", "clay_pct")
    assert status == 2
    assert "target column 'clay_pct', data row 5: 'x' is not a number" in err


def test_identifiers_are_not_targets(capsys, raw, tmp_path):
    path = tmp_path / "t.csv"
    raw.to_csv(path, index=False)
    status, err = cv(capsys, path, "--target", "nope")
    assert status == 2
    assert "unknown target 'nope'; available: ['clay_pct', 'silt_pct'" in err
    assert "sample_id" not in err.split("available:")[1]
    status, err = cv(capsys, path, "--target", "sample_id")
    assert status == 2
    assert "'sample_id' is an identifier" in err


def test_counter_columns_and_ambiguous_blocks(capsys, raw, tmp_path):
    counter = pd.DataFrame(0.5, index=raw.index, columns=[f"c{i}" for i in range(600)])
    path = tmp_path / "t.csv"
    pd.concat([raw, counter], axis=1).to_csv(path, index=False)
    status, err = cv(capsys, path, "--target", "clay_pct")
    assert status == 0
    assert "216 bands, 350-2500 nm" in err

    spectral = [c for c in raw.columns if c.isdigit()]
    second = raw[spectral].add_prefix("r_")
    pd.concat([raw, second], axis=1).to_csv(path, index=False)
    status, err = cv(capsys, path, "--target", "clay_pct")
    assert status == 2
    assert "ambiguous spectral columns: 2 candidate blocks" in err
    status, err = cv(capsys, path, "--target", "clay_pct", "--spectral-columns", "^r_")
    assert status == 0
    assert "216 bands" in err


def test_micrometre_columns(capsys, raw, tmp_path):
    path = tmp_path / "um.csv"
    raw.rename(columns={c: f"{int(c) / 1000:g}" for c in raw.columns if c.isdigit()}).to_csv(
        path, index=False
    )
    status, err = cv(capsys, path, "--target", "clay_pct")
    assert status == 0
    assert "in µm; converted to nm" in err
    assert "350-2500 nm" in err


def test_excel_workbook_exits_2(capsys, tmp_path):
    path = tmp_path / "lab.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    status, err = cv(capsys, path, "--target", "clay_pct")
    assert status == 2
    assert (
        "is an Excel workbook, not a CSV table; save it as CSV, or pass it as a lab sheet "
        "with --lab" in err
    )


def test_long_header_field(capsys, raw, tmp_path):
    path = tmp_path / "long.csv"
    raw.rename(columns={"silt_pct": "s" * 150_000}).to_csv(path, index=False)
    status, _ = cv(capsys, path, "--target", "clay_pct")
    assert status == 0


def test_bad_censored_choice_exits_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["cv", "--data", str(GEEVES_SMALL), "--censored", "zero", "--out", str(tmp_path)])
    assert info.value.code == 2


def test_dropped_rows_take_no_part_in_the_domain(raw, tmp_path):
    # The issue: a cell of 150 inflated the applicability domain's limits.
    path = with_cells(raw, tmp_path / "bad.csv", {(7, "500"): "150"})
    clean = tmp_path / "clean.csv"
    raw.drop(index=7).to_csv(clean, index=False)
    domains = [
        SpectralModel.fit(table, ["clay_pct"], recipe="plsr").domain
        for table in (read_spectra(path, drop_invalid=True), read_spectra(clean))
    ]
    dropped, reference = (domain.summary() for domain in domains if domain is not None)
    assert dropped["n_reference"] == 59
    assert dropped == reference
