"""Every ``--out`` of every command: checked before the work, never destroying a user's file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specsoil._atomic import MARKER, OutputKind, atomic_directory
from specsoil.cli import main
from specsoil.data import read_spectra
from specsoil.export import OnnxModel
from specsoil.models import SpectralModel

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"
# Tiny networks (40 nm bands, one or two epochs) keep the CNN runs to a few seconds.
QUICK_CNN = """\
models:
  cnn1d:
    preprocessing: [{name: resample, step: 40, method: mean}]
    params: {max_epochs: 2, batch_size: 16, patience: null}
"""
KIND = ("--spectra-kind", "reflectance")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones included) with the bytes of the files."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def leftovers(folder: Path) -> list[str]:
    """Temporary or backup files and folders under ``folder``."""
    return [p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".old"))]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real geeves soils with coordinates and sites, a saved PLSR model, a CNN config."""
    folder = tmp_path_factory.mktemp("inputs")
    frame = pd.read_csv(GEEVES_SMALL)
    rng = np.random.default_rng(0)
    n = len(frame)
    lon = 146.0 + rng.uniform(0, 0.1, n)
    lat = -35.0 - rng.uniform(0, 0.08, n)
    site = ["north"] * (n // 2) + ["south"] * (n - n // 2)
    extra = pd.DataFrame({"GPS_LONG": lon, "GPS_LAT": lat, "site": site})
    frame = pd.concat([frame.iloc[:, :1], extra, frame.iloc[:, 1:]], axis=1)
    data = folder / "data" / "spectra.csv"
    data.parent.mkdir()
    frame.to_csv(data, index=False)
    table = read_spectra(data, spectra_kind="reflectance")
    model = SpectralModel.fit(
        table, ["clay_pct"], recipe="plsr", params={"max_components": 5}, conformal=None
    )
    config = folder / "quick.yaml"
    config.write_text(QUICK_CNN)
    return {
        "data": data,
        "plsr": model.save(folder / "plsr"),
        "config": config,
        "image": folder / "scene.tif",  # written by the image fixture when rasterio is there
    }


def write_image(path: Path) -> Path:
    """The 60 soils as a 6 x 10 reflectance GeoTIFF, bands described in nm."""
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    table = read_spectra(GEEVES_SMALL, spectra_kind="reflectance")
    values = (10.0 ** -table.X.astype(np.float64)).astype(np.float32)
    cube = np.ascontiguousarray(values.T.reshape(-1, 6, 10))
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=10,
        height=6,
        count=cube.shape[0],
        dtype="float32",
        crs="EPSG:32755",
        transform=Affine(5.0, 0.0, 300_000.0, 0.0, -5.0, 5_800_000.0),
    ) as dataset:
        dataset.write(cube)
        for band, w in enumerate(table.wavelengths, start=1):
            dataset.set_band_description(band, f"{w:g} nm")
    return path


@pytest.fixture(scope="module")
def cnn_dir(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("cnn") / "cnn"
    argv = ["-q", "train", "--data", files["data"], *KIND, "--target", "clay_pct"]
    argv += ["--model", "cnn1d", "--config", files["config"], "--out", out]
    assert main([str(a) for a in argv]) == 0
    return out


@dataclass(frozen=True)
class Command:
    """How to run one command quickly, what it writes and which of its inputs to aim at."""

    argv: Callable[[dict[str, Path]], list[object]]  # everything but --out
    kind: OutputKind | None  # None: --out is a file
    suffix: str = ""  # of a file output
    needs: tuple[str, ...] = ()  # modules the real run needs
    input_name: str = "data"  # the input that --out must not be


def _data(files: dict[str, Path]) -> list[object]:
    return ["--data", files["data"], *KIND]


COMMANDS = {
    "train": Command(
        lambda f: [
            "train",
            *_data(f),
            "--target",
            "clay_pct",
            "--model",
            "plsr",
            "--conformal",
            "none",
        ],
        "model",
    ),
    "cv": Command(
        lambda f: ["cv", *_data(f), "--target", "clay_pct", "--model", "plsr", "--folds", "2"],
        "cv-report",
    ),
    "tune": Command(
        lambda f: ["tune", *_data(f), "--target", "clay_pct", "--model", "plsr", "--trials", "2"],
        "tune",
        needs=("optuna",),
    ),
    "transfer-cv": Command(
        lambda f: [
            "transfer-cv",
            *_data(f),
            "--target",
            "clay_pct",
            "--group-column",
            "site",
            "--local-n",
            "8",
            "--spiking-model",
            "plsr",
            "--epochs",
            "1",
            "--config",
            f["config"],
        ],
        "transfer-cv-report",
        needs=("torch",),
    ),
    "finetune": Command(
        lambda f: [
            "finetune",
            "--base",
            f["cnn"],
            *_data(f),
            "--target",
            "clay_pct",
            "--strategy",
            "head",
            "--epochs",
            "1",
        ],
        "model",
        needs=("torch",),
        input_name="cnn",
    ),
    "explain": Command(
        lambda f: ["explain", "--model", f["plsr"], *_data(f), "--folds", "0"],
        "explain",
        input_name="plsr",
    ),
    "map": Command(
        lambda f: ["map", *_data(f), "--target", "clay_pct", "--method", "idw", "--folds", "0"],
        "map",
        needs=("rasterio", "folium"),
    ),
    "predict": Command(lambda f: ["predict", "--model", f["plsr"], *_data(f)], None, ".csv"),
    "map-image": Command(
        lambda f: ["map-image", "--model", f["plsr"], "--image", f["image"]],
        None,
        ".tif",
        needs=("rasterio",),
        input_name="image",
    ),
    "convert": Command(lambda f: ["convert", *_data(f)], None, ".parquet"),
    "export": Command(
        lambda f: ["export", "--model", f["plsr"]],
        None,
        ".onnx",
        needs=("onnxruntime", "onnxscript", "torch"),
        input_name="plsr",
    ),
    "synth": Command(lambda f: ["synth", "--n", "5"], None, ".csv", input_name=""),
    "synth-parts": Command(
        lambda f: ["synth", "--n", "10", "--row-group-size", "5", "--row-groups-per-file", "1"],
        "parquet-parts",
        input_name="",
    ),
}
NAMES = list(COMMANDS)


@pytest.fixture
def inputs(files: dict[str, Path], request: pytest.FixtureRequest) -> dict[str, Path]:
    """The inputs; the CNN base and the image are made only for the real runs that read them.

    Before any work only the paths matter, so stand-ins do.
    """
    name = request.node.callspec.params["name"]
    found = dict(files)
    if "no_work" in request.fixturenames:
        found["cnn"] = files["plsr"]
        found["image"] = files["plsr"].parent / "stand-in.tif"
        found["image"].write_bytes(b"II*\x00")
    elif name == "finetune":
        found["cnn"] = request.getfixturevalue("cnn_dir")
    elif name == "map-image" and not files["image"].exists():
        write_image(files["image"])
    return found


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any reading of inputs or writing of outputs fail: the checks must come first."""

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the work started before the output was checked")

    for target in (
        "specsoil.ops._inputs.read_data",
        "specsoil.cli._map_image.map_image",
        "specsoil.cli._convert.write_spectra_parquet",
        "specsoil.cli._synth.write_synthetic",
    ):
        monkeypatch.setattr(target, started)
    monkeypatch.setattr(SpectralModel, "load", classmethod(started))
    monkeypatch.setattr(OnnxModel, "load", classmethod(started))


def refused(status: int, stderr: str, *needles: str) -> None:
    """Exit 2 with one clear error line (no traceback, no internal error)."""
    assert status == 2, stderr
    assert "error:" in stderr
    assert "internal error" not in stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in stderr


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("name", NAMES)
class TestRefusedBeforeAnyWork:
    def test_a_user_output_is_refused_and_untouched(self, capsys, tmp_path, inputs, name):
        command = COMMANDS[name]
        if command.kind is None:
            out = tmp_path / f"mine{command.suffix}"
            out.write_text("keep me")
            needle = "already exists; pass --overwrite"
            flags: list[object] = []
        else:
            out = tmp_path / "mine"
            out.mkdir()
            (out / "notes.txt").write_text("keep me")
            needle = "specsoil did not write"
            flags = ["--overwrite"]  # even then: the folder is not specsoil's
        before = listing(tmp_path)
        status, _, stderr = run_cli(capsys, *command.argv(inputs), "--out", out, *flags)
        refused(status, stderr, needle)
        assert listing(tmp_path) == before

    def test_an_input_is_never_the_output(self, capsys, tmp_path, inputs, name):
        command = COMMANDS[name]
        if not command.input_name:
            pytest.skip(f"{name} reads no input")
        source = inputs[command.input_name]
        # A folder output may not be the input nor hold it; a file output may not be it.
        out = source if command.kind is None or source.is_dir() else source.parent
        before = listing(source.parent)
        status, _, stderr = run_cli(capsys, *command.argv(inputs), "--out", out, "--overwrite")
        refused(status, stderr, "input")
        assert listing(source.parent) == before

    def test_the_current_folder_is_refused(self, capsys, tmp_path, inputs, name, monkeypatch):
        command = COMMANDS[name]
        (tmp_path / "notes.txt").write_text("keep me")
        monkeypatch.chdir(tmp_path)
        status, _, stderr = run_cli(capsys, *command.argv(inputs), "--out", ".", "--overwrite")
        refused(status, stderr)
        assert listing(tmp_path) == {"notes.txt": b"keep me"}

    def test_nothing_is_written_under_a_file(self, capsys, tmp_path, inputs, name):
        command = COMMANDS[name]
        blocker = tmp_path / "file.txt"
        blocker.write_text("keep me")
        out = blocker / "sub" / f"out{command.suffix}"
        status, _, stderr = run_cli(capsys, *command.argv(inputs), "--out", out)
        refused(status, stderr, "is a file, so nothing can be written under it")
        assert listing(tmp_path) == {"file.txt": b"keep me"}

    def test_an_unwritable_folder_fails_fast(self, capsys, tmp_path, inputs, name, monkeypatch):
        command = COMMANDS[name]
        locked = tmp_path / "locked"
        locked.mkdir()
        real_access = os.access

        def access(path: object, mode: int, **kwargs: object) -> bool:
            if Path(str(path)) == locked:
                return False  # as a read-only folder is, for a user who is not root
            return real_access(path, mode, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "access", access)
        out = locked / "new" / f"out{command.suffix}"
        status, _, stderr = run_cli(capsys, *command.argv(inputs), "--out", out)
        refused(status, stderr, "permission denied")
        assert listing(tmp_path) == {"locked": None}


@pytest.mark.parametrize("name", NAMES)
def test_overwrite_replaces_a_previous_output_only(capsys, tmp_path, inputs, name):
    command = COMMANDS[name]
    for module in command.needs:
        pytest.importorskip(module)
    out = tmp_path / "results" / f"out{command.suffix}"
    out.parent.mkdir()
    if command.kind is None:
        out.write_text("previous")
    else:
        with atomic_directory(out, kind=command.kind) as previous:
            (previous / "stale.txt").write_text("written by an earlier run")
    before = listing(tmp_path)
    argv = [*command.argv(inputs), "--out", out]
    status, _, stderr = run_cli(capsys, *argv)
    refused(status, stderr, "--overwrite")
    assert listing(tmp_path) == before

    status, _, stderr = run_cli(capsys, *argv, "--overwrite")
    assert status == 0, stderr
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]
    if command.kind is None:
        assert out.read_bytes() != b"previous"
    else:
        marker = json.loads((out / MARKER).read_text())
        assert marker["kind"] == command.kind
        assert not (out / "stale.txt").exists()
        assert sorted(marker["files"]) == sorted(
            p.relative_to(out).as_posix()
            for p in out.rglob("*")
            if p.is_file() and p.name != MARKER
        )


def test_a_cnn_model_folder_appears_complete(cnn_dir):
    """Pictures and settings are written before the folder is renamed into place."""
    marker = json.loads((cnn_dir / MARKER).read_text())
    for name in (
        "manifest.json",
        "training_curves.png",
        "feature_maps.png",
        "config.resolved.yaml",
    ):
        assert name in marker["files"]
    assert leftovers(cnn_dir.parent) == []


def test_a_long_output_path_is_printed_on_one_line(capsys, tmp_path, files):
    out = tmp_path / ("d" * 200) / "predictions.csv"
    status, stdout, stderr = run_cli(
        capsys, "predict", "--model", files["plsr"], *_data(files), "--out", out
    )
    assert status == 0, stderr
    (line,) = [line for line in stdout.splitlines() if line.strip()]
    assert line.startswith("predicted clay_pct for 60 spectra")
    assert line.endswith(f"written to {out}")


def test_a_refused_long_path_is_reported_on_one_line(capsys, tmp_path, files):
    out = tmp_path / ("d" * 200) / "predictions.csv"
    out.parent.mkdir()
    out.write_text("keep me")
    status, _, stderr = run_cli(
        capsys, "predict", "--model", files["plsr"], *_data(files), "--out", out
    )
    refused(status, stderr)
    (line,) = stderr.splitlines()
    assert str(out) in line
    assert "--overwrite" in line


def test_an_interrupted_save_leaves_nothing(capsys, tmp_path, files, monkeypatch):
    """Interrupted while the pictures are drawn: no model folder, no temporary one."""

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("specsoil.ops._train.write_cnn_pictures", interrupted)
    out = tmp_path / "models" / "clay"
    status, _, stderr = run_cli(capsys, *COMMANDS["train"].argv(files), "--out", out)
    assert status == 130, stderr
    assert listing(tmp_path) == {}


def test_a_file_where_a_model_folder_goes_is_left_alone(capsys, tmp_path, files, no_work):
    out = tmp_path / "model"
    out.write_text("keep me")
    argv = [*COMMANDS["train"].argv(files), "--out", out, "--overwrite"]
    status, _, stderr = run_cli(capsys, *argv)
    refused(status, stderr, "is a file, not a folder")
    assert listing(tmp_path) == {"model": b"keep me"}  # no hidden .model.old beside it


def test_a_model_folder_holds_its_settings(capsys, tmp_path, files):
    out = tmp_path / "model"
    status, _, stderr = run_cli(capsys, *COMMANDS["train"].argv(files), "--out", out)
    assert status == 0, stderr
    marker = json.loads((out / MARKER).read_text())
    assert {"manifest.json", "pipeline.skops", "config.resolved.yaml"} <= set(marker["files"])
