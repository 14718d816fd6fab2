"""``specsoil library`` and library URLs as ``--data``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specsoil.cli import main
from specsoil.data import load_dataset, read_spectra, write_spectra_parquet

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def geeves_parquet(tmp_path):
    path = tmp_path / "geeves.parquet"
    write_spectra_parquet(load_dataset("geeves"), path)
    return path


def test_init_import_list_export(capsys, tmp_path, library_url, geeves_small):
    db = library_url
    source = str(GEEVES_SMALL)
    status, out, err = run_cli(capsys, "library", "init", "--db", db)
    assert status == 0, err
    assert "(schema 0001)" in out
    data = ["--data", source, "--spectra-kind", "reflectance", "--instrument", "asd"]
    status, out, err = run_cli(
        capsys, "library", "import", "--db", db, *data, "--unit", "clay_pct=%"
    )
    assert status == 0, err
    assert "batch 1: 60 spectra added, 0 skipped" in out
    assert "\n" not in out.strip()  # one line, never hard-wrapped
    status, out, err = run_cli(capsys, "library", "import", "--db", db, *data)
    assert status == 0, err
    assert "nothing new: 0 spectra added, 60 skipped" in out
    status, out, err = run_cli(capsys, "library", "list", "--db", db)
    assert status == 0, err
    assert "60 spectra of 60 samples" in out
    for text in ("asd", "clay_pct", "geeves_small.csv"):
        assert text in out
    out_file = tmp_path / "export.parquet"
    argv = ["library", "export", "--db", db, "--out", str(out_file), "--where", "clay_pct>20"]
    status, out, err = run_cli(capsys, *argv)
    assert status == 0, err
    exported = read_spectra(out_file)
    expected = geeves_small.metadata["clay_pct"] > 20
    np.testing.assert_array_equal(exported.X, geeves_small.X[expected.to_numpy()])
    pd.testing.assert_frame_equal(
        exported.metadata, geeves_small.metadata[expected].reset_index(drop=True)
    )
    status, _, err = run_cli(capsys, *argv)
    assert status == 2
    assert "exists; pass --overwrite" in err
    status, _, err = run_cli(capsys, *argv, "--overwrite")
    assert status == 0, err


def test_cv_metrics_equal_parquet(capsys, tmp_path, library_url, geeves_parquet):
    db = library_url
    status, _, err = run_cli(
        capsys, "-q", "library", "import", "--db", db, "--data", str(geeves_parquet)
    )
    assert status == 0, err
    metrics = {}
    for name, data in (("parquet", str(geeves_parquet)), ("library", db)):
        out = tmp_path / name
        status, _, err = run_cli(
            capsys, "-q", "cv", "--data", data, "--target", "clay_pct", "--target",
            "total_carbon_pct", "--model", "plsr", "--folds", "3", "--out", str(out),
        )  # fmt: skip
        assert status == 0, err
        metrics[name] = json.loads((out / "metrics.json").read_text())
    for key in ("results", "fold_metrics"):
        assert metrics["library"][key] == metrics["parquet"][key]
    assert metrics["library"]["results"][0]["n"] == 391


def test_cv_with_library_filters(capsys, tmp_path, library_url, geeves_parquet):
    db = library_url
    run_cli(capsys, "-q", "library", "import", "--db", db, "--data", str(geeves_parquet),
            "--instrument", "asd")  # fmt: skip
    status, _, err = run_cli(
        capsys, "-q", "cv", "--data", db, "--instrument", "asd", "--property", "clay_pct",
        "--where", "clay_pct>=10", "--target", "clay_pct", "--model", "plsr", "--folds", "3",
        "--out", str(tmp_path / "cv"),
    )  # fmt: skip
    assert status == 0, err
    metrics = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    table = load_dataset("geeves")
    assert metrics["results"][0]["n"] == int((table.metadata["clay_pct"] >= 10).sum())


@pytest.mark.parametrize("data", ["file", "geeves"])
def test_filters_on_a_file_or_dataset_are_an_error(capsys, tmp_path, geeves_parquet, data):
    status, _, err = run_cli(
        capsys, "cv", "--data", str(geeves_parquet) if data == "file" else data,
        "--where", "clay_pct>1", "--target", "clay_pct", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert status == 2
    assert "filter a spectral library" in err


def test_unreachable_database_exits_2_without_password(capsys, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # nothing listens: the connection is refused
        port = sock.getsockname()[1]
        url = f"postgresql://lab:hunter2@127.0.0.1:{port}/library"
        for argv in (
            ["library", "list", "--db", url],
            ["library", "import", "--db", url, "--data", "geeves"],
            ["cv", "--data", url, "--target", "clay_pct", "--out", str(tmp_path / "o")],
        ):
            status, _, err = run_cli(capsys, *argv)
            assert status == 2
            assert "cannot open the library" in err
            assert "hunter2" not in err
            assert "Traceback" not in err


def test_newer_schema_exits_2(capsys, tmp_path):
    import sqlalchemy as sa

    db = f"sqlite:///{tmp_path / 'lib.db'}"
    assert run_cli(capsys, "library", "init", "--db", db)[0] == 0
    engine = sa.create_engine(db)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0042'"))
    engine.dispose()
    status, _, err = run_cli(capsys, "library", "list", "--db", db)
    assert status == 2
    assert "this library was written by a newer specsoil (schema 0042" in err
    assert "upgrade specsoil" in err
