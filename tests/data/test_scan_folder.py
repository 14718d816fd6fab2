"""Scan folders into sample tables: ids, grids, replicates, lab sheets, zips and the CLI.

The scans are copies of the real instrument files in shared/data/instruments under sample
names; the lab values are synthetic (made up here) because only the join is under test.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import specsoil.data._scan_folder as scan_folder_module
from specsoil._errors import SpecsoilError
from specsoil.cli import main
from specsoil.data import (
    ScanOptions,
    default_sample_id,
    read_data,
    read_lab_sheet,
    read_scan,
    read_scans,
    read_spectra,
    scan_to_absorbance,
)

INSTRUMENTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "instruments"
SED_POOL = ["a_0001.sed", "b_0001.sed", "c_0001.sed"]


@pytest.fixture(scope="module")
def instruments() -> Path:
    if not INSTRUMENTS.is_dir():
        pytest.skip(f"real instrument files not found at {INSTRUMENTS} (shared/ is absent)")
    return INSTRUMENTS


def copy(instruments: Path, source: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(instruments / source.split("/")[0] / source.split("/")[-1], target)
    return target


@pytest.fixture
def scan_folder(instruments, tmp_path) -> Path:
    """12 samples x 2 replicates of real .sed/.sig files, in sub-folders, plus a README."""
    folder = tmp_path / "scans"
    for i in range(12):
        for replicate in (1, 2):
            if i < 10:
                source = f"sed/{SED_POOL[(i + replicate) % 3]}"
                name = f"soil{i:02d}_{replicate:05d}.sed"
            else:
                source = f"sig/{['2_1_A_D.0000.sig', '3_1_A_V.0000.sig'][replicate - 1]}"
                name = f"soil{i:02d}_{replicate - 1:03d}.sig"
            copy(instruments, source, folder / f"day{i % 2}" / name)
    (folder / "README.txt").write_text("field notes\n")
    return folder


def write_lab(path: Path) -> Path:
    """Synthetic lab values (not measurements): soil00-soil10 plus soil99, which has no scans."""
    ids = [f"soil{i:02d}" for i in range(11)] + ["soil99"]
    frame = pd.DataFrame({"sample": ids, "clay": np.arange(len(ids)) * 2.5 + 10})
    if path.suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("soil12_00041", "soil12"),  # Spectral Evolution counter
        ("BNL13001_000", "BNL13001"),  # SVC counter
        ("2_1_A_D.0000", "2_1_A_D"),  # SVC counter after a dot
        ("v7sample00003", "v7sample"),  # ASD: 5 digits straight after a letter
        ("soil_042_001", "soil_042"),
        ("KSSL101453", "KSSL101453"),  # 6 digits: a sample code, not a counter
        ("A1234", "A1234"),
        ("101453MD01", "101453MD01"),
        ("12345", "12345"),
    ],
)
def test_default_sample_id(stem, expected):
    assert default_sample_id(stem) == expected


class TestFolder:
    def test_mean_of_replicates_joined_with_lab_values(self, scan_folder, tmp_path):
        lab = write_lab(tmp_path / "lab.csv")
        result = read_scans(scan_folder, lab=lab, id_column="sample")
        table, report = result.table, result.report
        assert table.n_samples == 12
        assert list(table.metadata["sample_id"]) == [
            f"soil{i:02d}" for i in (0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11)
        ]
        assert set(table.metadata["n_replicates"]) == {2}
        row = table.metadata.set_index("sample_id").loc["soil03"]
        assert row["clay"] == 10 + 3 * 2.5
        assert row["instrument"] == "Spectral Evolution PSR+3500"
        assert row["source_file"].count(".sed") == 2
        # Lab rows and scans that did not match are listed, never dropped silently.
        assert report.samples_without_lab == ("soil11",)
        assert report.lab_rows_without_scans == ((13, "soil99"),)
        assert np.isnan(table.metadata.set_index("sample_id").loc["soil11", "clay"])
        assert any("README.txt" in name for name, _ in report.files_skipped)
        assert "different grids" in report.grid
        assert any("soil11" in line for line in report.problems())
        # The same note of 20 files is printed once, with the count.
        assert "20 files (" in "\n".join(report.lines())
        assert "read column 'Reflect. %' as reflectance-percent" in "\n".join(report.lines())

    def test_mean_and_median_match_the_single_scans(self, instruments, tmp_path):
        folder = tmp_path / "three"
        for n, name in enumerate(SED_POOL, start=1):
            copy(instruments, f"sed/{name}", folder / f"s1_{n:05d}.sed")
        singles = [scan_to_absorbance(read_scan(instruments / "sed" / n))[1][0] for n in SED_POOL]
        for rule, combine in (("mean", np.mean), ("median", np.median)):
            table = read_scans(folder, replicates=rule).table
            np.testing.assert_allclose(table.X[0], combine(singles, axis=0), rtol=1e-6)
        spread = read_scans(folder).table.metadata.loc[0, "replicate_spread"]
        median = np.median(singles, axis=0)
        assert spread == pytest.approx(np.mean(np.abs(np.asarray(singles) - median)))

    def test_replicates_none_keeps_every_scan(self, scan_folder):
        table = read_scans(scan_folder, replicates="none").table
        assert table.n_samples == 24
        assert list(table.metadata["replicate"][:2]) == [1, 2]

    def test_far_replicate_is_flagged(self, instruments, tmp_path):
        folder = tmp_path / "flag"
        for i in range(4):
            for r in (1, 2):
                copy(instruments, "sed/a_0001.sed", folder / f"s{i}_{r:05d}.sed")
        copy(instruments, "sed/c_0001.sed", folder / "s0_00003.sed")
        result = read_scans(folder)
        assert [(s, Path(f).name) for s, f, _ in result.report.replicate_outliers] == [
            ("s0", "s0_00003.sed")
        ]
        flagged = result.table.metadata.set_index("sample_id")["replicate_outliers"]
        assert flagged["s0"] == 1
        assert flagged["s1"] == 0
        assert "far from its siblings" in result.report.problems()[0]

    def test_one_sample_from_many_files_is_a_warning(self, instruments, tmp_path):
        for name in ("1116037_00041.sed", "1116037_00110.sed"):
            copy(instruments, f"sed/{name}", tmp_path / name)
        copy(instruments, "sed/1116037_00041.sed", tmp_path / "1116037_00042.sed")
        report = read_scans(tmp_path).report
        assert "all 3 scans became one sample '1116037'" in report.problems()[0]

    def test_id_from_filename(self, scan_folder):
        table = read_scans(scan_folder, id_from_filename=r"^soil(\d)").table
        assert sorted(table.metadata["sample_id"]) == ["0", "1"]
        with pytest.raises(SpecsoilError, match="expected exactly one group"):
            read_scans(scan_folder, id_from_filename=r"soil\d+")
        with pytest.raises(SpecsoilError, match="does not match the name"):
            read_scans(scan_folder, id_from_filename=r"^plot(\d+)")

    def test_glob(self, scan_folder):
        table = read_scans(str(scan_folder / "**" / "*.sig")).table
        assert list(table.metadata["sample_id"]) == ["soil10", "soil11"]

    def test_single_file_and_transmittance(self, instruments):
        table = read_scans(instruments / "jcamp" / "SBO.jdx").table
        raw = read_scan(instruments / "jcamp" / "SBO.jdx")
        # 1/CM ascending becomes nm descending; -log10(T) is the absorbance.
        assert table.wavelengths[0] == pytest.approx(1e7 / raw.axis[-1])
        assert table.X[0, 0] == pytest.approx(-np.log10(raw.values[0, -1]), rel=1e-6)


def test_library_spectra_become_samples(instruments):
    result = read_scans(instruments / "envi_sli" / "s07_AV95_envi.sli", replicates="none")
    names = result.table.metadata["sample_id"]
    assert not names.str.startswith("error bars").any()
    lines = "\n".join(result.report.lines())
    assert "680 error-bar records left out" in lines
    left_out = int(lines.split(" of 2457 spectra with missing")[0].rsplit(": ", 1)[1])
    assert result.table.n_samples == 2457 - left_out
    assert np.isfinite(result.table.X).all()


def zipped_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder).as_posix())
    return archive


class TestReadData:
    """read_spectra and read_data take a folder, a glob or a zip of scans as well as tables."""

    def test_read_spectra_on_folder_glob_and_zip(self, scan_folder, tmp_path, caplog):
        expected = read_scans(scan_folder).table
        with caplog.at_level("INFO", logger="specsoil.data._scan_folder"):
            from_folder = read_spectra(scan_folder)
        assert "24 scan files read" in caplog.text  # the report is logged
        np.testing.assert_array_equal(from_folder.X, expected.X)
        assert from_folder.spectra_kind == "reflectance-percent"
        assert not from_folder.kind_detected
        from_glob = read_spectra(str(scan_folder / "**" / "*.sig"))
        assert list(from_glob.metadata["sample_id"]) == ["soil10", "soil11"]
        from_zip = read_spectra(zipped_folder(scan_folder, tmp_path / "scans.zip"))
        assert sorted(from_zip.metadata["sample_id"]) == sorted(expected.metadata["sample_id"])
        with pytest.raises(SpecsoilError, match=r"spectra_kind .* applies to tables"):
            read_spectra(scan_folder, spectra_kind="reflectance")

    def test_read_data_joins_the_lab_sheet_from_a_zip(self, scan_folder, tmp_path):
        lab = write_lab(tmp_path / "lab.csv")
        archive = zipped_folder(scan_folder, tmp_path / "scans.zip")
        read = read_data(archive, scans=ScanOptions(lab=str(lab), id_column="sample"))
        assert read.scan_report is not None
        assert read.scan_report.samples_without_lab == ("soil11",)
        assert read.table.metadata.set_index("sample_id").loc["soil03", "clay"] == 17.5
        assert read.notes == tuple(read.scan_report.lines())

    def test_format_forces_the_reader(self, instruments, tmp_path):
        renamed = copy(instruments, "sed/a_0001.sed", tmp_path / "plot7_00001.dat")
        table = read_spectra(renamed, format="sed")
        assert list(table.metadata["sample_id"]) == ["plot7"]
        with pytest.raises(SpecsoilError, match=r"plot7_00001\.dat"):
            read_spectra(renamed, format="sig")


class TestZip:
    def test_zip_reads_like_the_folder(self, scan_folder, tmp_path):
        archive = zipped_folder(scan_folder, tmp_path / "scans.zip")
        from_zip = read_scans(archive).table
        from_folder = read_scans(scan_folder).table
        np.testing.assert_array_equal(
            from_zip.X[np.argsort(from_zip.metadata["sample_id"])],
            from_folder.X[np.argsort(from_folder.metadata["sample_id"])],
        )
        assert from_zip.metadata["source_file"].str.contains("scans.zip:day").all()

    def test_member_names_are_never_paths(self, instruments, tmp_path):
        archive = tmp_path / "inner" / "evil.zip"
        archive.parent.mkdir()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.write(instruments / "sed" / "a_0001.sed", "../../escape_00001.sed")
            zipped.write(instruments / "sed" / "b_0001.sed", "/abs/escape_00002.sed")
        table = read_scans(archive).table
        assert list(table.metadata["sample_id"]) == ["escape"]
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["evil.zip", "inner"]

    def test_expansion_is_bounded(self, instruments, tmp_path, monkeypatch):
        archive = tmp_path / "bomb.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
            zipped.writestr("big_00001.sed", b"0" * 5_000_000)
        monkeypatch.setattr(scan_folder_module, "MAX_ZIP_MEMBER_BYTES", 1_000_000)
        with pytest.raises(SpecsoilError, match=r"bomb\.zip:big_00001\.sed: expands beyond"):
            read_scans(archive)


class TestBadInput:
    def test_no_readable_scans(self, tmp_path):
        (tmp_path / "notes.txt").write_text("nothing here")
        with pytest.raises(SpecsoilError, match=r"no readable scans \(1 files looked at"):
            read_scans(tmp_path)

    def test_duplicate_lab_ids_name_the_rows(self, tmp_path):
        lab = tmp_path / "lab.xlsx"
        pd.DataFrame({"sample": ["a", "b", "a", "c", "b"], "clay": [1, 2, 3, 4, 5]}).to_excel(
            lab, index=False
        )
        with pytest.raises(SpecsoilError, match=r"'a' on rows 2, 4; 'b' on rows 3, 6"):
            read_lab_sheet(lab, "sample")

    def test_lab_without_id_column(self, tmp_path):
        lab = tmp_path / "lab.csv"
        lab.write_text("code,clay\nx,1\n")
        with pytest.raises(SpecsoilError, match="say which column holds the sample ids"):
            read_lab_sheet(lab, None)

    def test_asd_without_white_reference_says_what_it_holds(self, instruments, tmp_path):
        # A version-1 file (no reference section) built from the v6 file's header and target.
        raw = bytearray((instruments / "asd" / "v6sample00000.asd").read_bytes()[:17692])
        raw[:3] = b"ASD"
        (tmp_path / "plot1_00000.asd").write_bytes(bytes(raw))
        with pytest.raises(
            SpecsoilError,
            match=r"plot1_00000\.asd: byte 17692: .* holds only the target's dn .*Export "
            "reflectance",
        ):
            read_scans(tmp_path)

    def test_radiance_scan_is_refused(self, instruments, tmp_path):
        lines = (instruments / "sed" / "1116037_00041.sed").read_text().splitlines()
        names_at = lines.index("Data:") + 1
        body = ["\t".join(line.split("\t")[:3]) for line in lines[names_at:]]
        path = tmp_path / "rad_00001.sed"
        path.write_text("\n".join(lines[:names_at] + body))
        with pytest.raises(SpecsoilError, match=r"rad_00001\.sed: holds radiance, which cannot"):
            read_scans(path)

    def test_grids_without_common_range_name_both_files(self, tmp_path):
        for name, first in (("low_00001.jdx", 400), ("high_00001.jdx", 900)):
            (tmp_path / name).write_text(
                "##TITLE=x\n##JCAMP-DX=4.24\n##XUNITS=NANOMETERS\n##YUNITS=REFLECTANCE\n"
                f"##FIRSTX={first}\n##LASTX={first + 200}\n##NPOINTS=3\n##XYDATA=(X++(Y..Y))\n"
                f"{first} 0.2 0.3 0.4\n##END=\n"
            )
        with pytest.raises(
            SpecsoilError,
            match=r"high_00001\.jdx covers 900-1100 nm and .*low_00001\.jdx covers 400-600 nm",
        ):
            read_scans(tmp_path)

    def test_value_inside_the_range_below_zero(self, instruments, tmp_path):
        lines = (instruments / "sed" / "a_0001.sed").read_text().splitlines()
        row = lines.index("Data:") + 1000
        cells = lines[row].split("\t")
        lines[row] = "\t".join([*cells[:-1], "-1.0"])
        path = tmp_path / "neg_00001.sed"
        path.write_text("\n".join(lines))
        with pytest.raises(
            SpecsoilError, match=r"neg_00001\.sed: reflectance-percent is -1 at 1348 nm"
        ):
            read_scans(path)


def scan_flags(folder: Path, lab: Path) -> list[str]:
    return ["--data", str(folder), "--lab", str(lab), "--id-column", "sample"]


class TestCommandLine:
    def test_convert_with_excel_lab_sheet(self, scan_folder, tmp_path, capsys):
        lab = write_lab(tmp_path / "lab.xlsx")
        out = tmp_path / "library.parquet"
        flags = [*scan_flags(scan_folder, lab), "--replicates", "mean", "--out", str(out)]
        status = main(["convert", *flags])
        captured = capsys.readouterr()
        assert status == 0, captured.err
        assert "1 samples have no lab values: soil11" in captured.err
        assert "1 lab rows have no scans: row 13 (soil99)" in captured.err
        table = read_spectra(out)
        assert table.n_samples == 12
        # The file records what the scans held, not "absorbance (declared)".
        assert table.spectra_kind == "reflectance-percent"
        assert not table.kind_detected
        assert "scan files hold reflectance-percent" in table.kind_reason
        scans = read_scans(scan_folder, lab=lab, id_column="sample").table
        np.testing.assert_array_equal(table.X, scans.X)
        assert {"sample_id", "clay", "n_replicates", "replicate_spread", "instrument"} <= set(
            table.metadata.columns
        )

    @pytest.mark.parametrize("packed", ["folder", "zip"])
    def test_cv_straight_from_the_scan_folder(self, scan_folder, tmp_path, capsys, packed):
        lab = write_lab(tmp_path / "lab.csv")
        out = tmp_path / "cv"
        data = scan_folder
        if packed == "zip":
            data = zipped_folder(scan_folder, tmp_path / "scans.zip")
        model = ["--target", "clay", "--model", "plsr", "--folds", "3", "--out", str(out)]
        status = main(["cv", *scan_flags(data, lab), *model])
        captured = capsys.readouterr()
        assert status == 0, captured.err
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["results"][0]["n"] == 11  # soil11 has no lab value

    def test_config_carries_the_scan_options(self, scan_folder, tmp_path, capsys):
        lab = write_lab(tmp_path / "lab.csv")
        config = tmp_path / "run.yaml"
        config.write_text(
            f"data: {json.dumps(str(scan_folder))}\nlab: {json.dumps(str(lab))}\n"
            "id_column: sample\nreplicates: median\ntargets: [clay]\n"
        )
        out = tmp_path / "cv"
        status = main(
            ["cv", "--config", str(config), "--model", "plsr", "--folds", "3", "--out", str(out)]
        )
        assert status == 0, capsys.readouterr().err
        assert json.loads((out / "metrics.json").read_text())["results"][0]["n"] == 11

    def test_lab_flags_on_a_table_are_refused(self, tmp_path, capsys):
        table = tmp_path / "t.csv"
        table.write_text("id,500,600\na,0.2,0.3\n")
        status = main(
            [
                "convert",
                "--data",
                str(table),
                "--lab",
                "x.csv",
                "--out",
                str(tmp_path / "o.parquet"),
            ]
        )
        assert status == 2
        assert "apply to scan files" in capsys.readouterr().err

    def test_formats_lists_the_readers(self, capsys):
        assert main(["formats"]) == 0
        out = capsys.readouterr().out
        for name in ("sig", "sed", "jcamp", "envi-sli", "csv", "parquet", "envi-image", "geotiff"):
            assert name in out
        assert "tables" in out
        assert "image cubes" in out

    def test_format_flag(self, scan_folder, tmp_path, capsys):
        out = ["--out", str(tmp_path / "o.parquet")]
        with pytest.raises(SystemExit) as stopped:  # argparse refuses it before any work
            main(["convert", "--data", str(scan_folder), "--format", "xls", *out])
        assert stopped.value.code == 2
        assert "unknown format 'xls'; formats: asd, csv," in capsys.readouterr().err
        # Forced to read every file as SVC, the .sed scans fail, naming the file.
        status = main(["convert", "--data", str(scan_folder / "day1"), "--format", "sig", *out])
        err = capsys.readouterr().err
        assert status == 2
        assert "soil01_00001.sed: no 'data=' line" in err
        sed_only = str(scan_folder / "day0" / "*.sed")
        status = main(["convert", "--data", sed_only, "--format", "sed", *out])
        assert status == 0, capsys.readouterr().err
        assert read_spectra(tmp_path / "o.parquet").n_samples == 5
