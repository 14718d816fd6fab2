"""Loading a model folder runs none of its content: crafted payloads, tampered manifests.

Every payload would create a marker file if it ran; each test asserts the marker is absent
after the load was refused (and, once, that the same payload does run when skops is told
to trust it, so the payloads are real).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio

from specsoil import __version__
from specsoil._errors import SpecsoilError
from specsoil.cli import main
from specsoil.data import read_spectra
from specsoil.models import SpectralModel
from specsoil.models._model_files import _check_trees
from specsoil.models._spectral_model import MANIFEST, PIPELINE_FILE

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small PLSR model with CV+ calibration and a domain: every file kind a folder holds."""
    table = read_spectra(GEEVES_SMALL, spectra_kind="reflectance")
    model = SpectralModel.fit(
        table,
        ["clay_pct", "total_carbon_pct"],
        recipe="plsr",
        params={"max_components": 3},
        conformal="cv+",
        conformal_folds=2,
    )
    return model.save(tmp_path_factory.mktemp("models") / "plsr")


@pytest.fixture
def copy_of(model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file a payload creates when it runs."""
    return tmp_path / "payload-ran"


# ---------------------------------------------------------------- crafting .skops schemas
def _text(value: str) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
        "__id__": 1,
    }


def _call(module: str, name: str, *args: dict[str, Any]) -> dict[str, Any]:
    """A skops node that calls ``module.name(*args)`` when built (a reduce constructor)."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": list(args),
            "__id__": 2,
        },
        "__id__": 3,
    }


def _write_skops(path: Path, schema: dict[str, Any], arrays_from: Path | None = None) -> None:
    """A .skops archive with ``schema``, plus the array members of ``arrays_from``."""
    members = {}
    if arrays_from is not None:
        with zipfile.ZipFile(arrays_from) as source:
            members = {n: source.read(n) for n in source.namelist() if n != "schema.json"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps({**schema, **_protocol()}))
        for name, data in members.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def _protocol() -> dict[str, Any]:
    """The version keys of a schema as this skops writes them."""
    buffer = io.BytesIO(sio.dumps([1]))
    with zipfile.ZipFile(buffer) as archive:
        schema = json.loads(archive.read("schema.json"))
    return {"protocol": schema["protocol"], "_skops_version": schema["_skops_version"]}


def _touch_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _payloads(marker: Path) -> dict[str, dict[str, Any]]:
    """Root schemas that would create ``marker`` (or reach code that could) when built."""
    return {
        "eval": _call("builtins", "eval", _text(_touch_code(marker))),
        "exec": _call("builtins", "exec", _text(_touch_code(marker))),
        "posix.system": _call("posix", "system", _text(f"touch {marker}")),
        "getattr": _call(
            "builtins",
            "getattr",
            _call("builtins", "__import__", _text("os")),
            _text("system"),
        ),
    }


def _nested_in_pipeline(model_dir: Path, marker: Path) -> dict[str, Any]:
    """The model's real pipeline schema with an exec chain hidden deep in one step's state."""
    with zipfile.ZipFile(model_dir / PIPELINE_FILE) as archive:
        schema = json.loads(archive.read("schema.json"))
    # Pipeline -> state dict -> steps list -> first (name, estimator) tuple -> estimator.
    step = schema["content"]["content"]["steps"]["content"][0]["content"][1]
    attrs = step["content"]["content"]
    name = next(iter(attrs))
    attrs[name] = _call("builtins", "exec", _call("builtins", "str", _text(_touch_code(marker))))
    for key in ("protocol", "_skops_version"):
        schema.pop(key, None)
    return schema


class _RunsShell:
    """Pickles to ``os.system(command)``: unpickling runs it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


# ------------------------------------------------------------------------ the payloads
class TestCraftedPipelines:
    @pytest.mark.parametrize("payload", ["eval", "exec", "posix.system", "getattr"])
    def test_refused_with_the_types_named_and_nothing_run(self, copy_of, marker, payload):
        _write_skops(copy_of / PIPELINE_FILE, _payloads(marker)[payload])
        with pytest.raises(SpecsoilError) as caught:
            SpectralModel.load(copy_of)
        message = str(caught.value)
        assert str(copy_of / PIPELINE_FILE) in message
        assert "refused" in message
        assert "\n" not in message
        expected = {
            "eval": ["builtins.eval"],
            "exec": ["builtins.exec"],
            "posix.system": ["posix.system"],
            "getattr": ["builtins.getattr"],  # skops stops at the outer untrusted call
        }[payload]
        for name in expected:
            assert name in message
        assert not marker.exists()

    def test_the_eval_payload_is_real(self, tmp_path, marker):
        # Control: trusted by hand, skops runs it, so the refusals above are meaningful.
        path = tmp_path / "evil.skops"
        _write_skops(path, _payloads(marker)["eval"])
        sio.load(path, trusted=["builtins.eval"])
        assert marker.exists()

    def test_nested_chain_inside_a_real_pipeline(self, model_dir, copy_of, marker):
        schema = _nested_in_pipeline(model_dir, marker)
        _write_skops(copy_of / PIPELINE_FILE, schema, arrays_from=model_dir / PIPELINE_FILE)
        with pytest.raises(SpecsoilError, match=r"refused to load.*builtins\.exec"):
            SpectralModel.load(copy_of)
        assert not marker.exists()

    def test_a_fold_model_is_checked_too(self, copy_of, marker):
        _write_skops(copy_of / "conformal_fold_1.skops", _payloads(marker)["eval"])
        with pytest.raises(
            SpecsoilError, match=r"conformal_fold_1\.skops: refused.*builtins\.eval"
        ):
            SpectralModel.load(copy_of)
        assert not marker.exists()

    def test_raw_pickle_is_refused_unread(self, copy_of, marker):
        (copy_of / PIPELINE_FILE).write_bytes(pickle.dumps(_RunsShell(f"touch {marker}")))
        with pytest.raises(
            SpecsoilError, match=r"pipeline\.skops: refused to load: a Python pickle"
        ):
            SpectralModel.load(copy_of)
        assert not marker.exists()

    def test_manifest_cannot_point_outside_the_folder(self, copy_of, tmp_path, marker):
        _write_skops(tmp_path / "elsewhere.skops", _payloads(marker)["eval"])
        manifest = json.loads((copy_of / MANIFEST).read_text(encoding="utf-8"))
        manifest["files"]["pipeline"] = "../elsewhere.skops"
        (copy_of / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        with pytest.raises(SpecsoilError, match=r"field 'files\.pipeline' must name a file inside"):
            SpectralModel.load(copy_of)
        assert not marker.exists()


class TestCraftedArrays:
    @pytest.mark.parametrize("name", ["conformal.npz", "domain.npz"])
    def test_pickled_object_array_in_npz_is_refused(self, copy_of, marker, name):
        with np.load(copy_of / name) as data:
            arrays = {key: data[key] for key in data.files}
        first = next(iter(arrays))
        arrays[first] = np.array([_RunsShell(f"touch {marker}")], dtype=object)
        np.savez(copy_of / name, **arrays)
        with pytest.raises(SpecsoilError, match=rf"{name}: refused to load: it holds pickled"):
            SpectralModel.load(copy_of)
        assert not marker.exists()

    def test_npz_replaced_by_a_raw_pickle_is_refused(self, copy_of, marker):
        (copy_of / "domain.npz").write_bytes(pickle.dumps(_RunsShell(f"touch {marker}")))
        with pytest.raises(SpecsoilError, match=r"domain\.npz: refused to load: a Python pickle"):
            SpectralModel.load(copy_of)
        assert not marker.exists()

    def test_truncated_npz_says_so(self, copy_of):
        data = (copy_of / "conformal.npz").read_bytes()
        (copy_of / "conformal.npz").write_bytes(data[: len(data) // 2])
        with pytest.raises(SpecsoilError, match=r"conformal\.npz: truncated or corrupt"):
            SpectralModel.load(copy_of)


def test_crafted_tree_indices_are_refused(tmp_path):
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeRegressor
    from sklearn.tree._tree import Tree

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    estimator = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    pipeline = Pipeline([("tree", estimator)])
    _check_trees(pipeline, tmp_path / "p.skops")  # a real tree passes
    state = estimator.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**6  # far outside the node array
    crafted = Tree(estimator.n_features_in_, np.array([1], dtype=np.intp), 1)
    crafted.__setstate__({**state, "nodes": nodes})
    estimator.tree_ = crafted
    with pytest.raises(SpecsoilError, match=r"p\.skops: refused to load: a decision tree"):
        _check_trees(pipeline, tmp_path / "p.skops")


# ------------------------------------------------------------ damaged or edited folders
def _edit_manifest(folder: Path, edit: str) -> None:
    path = folder / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if edit == "truncated wavelengths":
        manifest["wavelengths"] = manifest["wavelengths"][:-5]
    elif edit == "string wavelengths":
        manifest["wavelengths"] = [str(w) for w in manifest["wavelengths"]]
    elif edit == "no targets":
        del manifest["targets"]
    elif edit == "top-level list":
        manifest = [manifest]
    elif edit == "descending wavelengths":
        manifest["wavelengths"] = manifest["wavelengths"][::-1]
    elif edit == "fold list as text":
        manifest["files"]["conformal_folds"] = "conformal_fold_0.skops"
    elif edit == "extra target":
        manifest["targets"] = [*manifest["targets"], "sand_pct"]
        manifest["files"].pop("conformal")  # else its residual width catches it first
    text = json.dumps(manifest)
    if edit == "invalid JSON":
        text = text[: len(text) // 2]
    path.write_text(text, encoding="utf-8")


MANIFEST_EDITS = {
    "truncated wavelengths": r"field 'wavelengths' lists \d+ bands but the fitted pipeline",
    "string wavelengths": r"field 'wavelengths' must hold numbers in nm; item 0 is '",
    "no targets": r"field 'targets' is missing",
    "top-level list": r"expected a JSON object .* got list at the top level",
    "invalid JSON": r"not valid JSON",
    "descending wavelengths": r"field 'wavelengths' must be strictly ascending",
    "fold list as text": r"field 'files\.conformal_folds' must be a list of names",
}


class TestTamperedManifest:
    @pytest.mark.parametrize("edit", list(MANIFEST_EDITS))
    def test_names_the_file_and_the_field(self, copy_of, edit):
        _edit_manifest(copy_of, edit)
        with pytest.raises(SpecsoilError, match=rf"{MANIFEST}: {MANIFEST_EDITS[edit]}"):
            SpectralModel.load(copy_of)

    def test_an_extra_target_fails_at_predict_with_a_clear_error(self, copy_of):
        _edit_manifest(copy_of, "extra target")
        model = SpectralModel.load(copy_of)
        table = read_spectra(GEEVES_SMALL, spectra_kind="reflectance")
        with pytest.raises(SpecsoilError, match=r"predicts 2 values per spectrum .* 3 targets"):
            model.predict(table)

    @pytest.mark.parametrize("value", [[0, "x"], [5, 1], [None, float("inf")], 7])
    def test_bad_clip_field(self, copy_of, value):
        path = copy_of / MANIFEST
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["clip"] = {"clay_pct": value}
        path.write_text(json.dumps(manifest), encoding="utf-8")
        with pytest.raises(SpecsoilError, match=rf"{MANIFEST}: field 'clip': 'clay_pct'"):
            SpectralModel.load(copy_of)


class TestDamagedPipeline:
    def test_truncated_skops_from_this_version_says_truncated(self, copy_of):
        data = (copy_of / PIPELINE_FILE).read_bytes()
        (copy_of / PIPELINE_FILE).write_bytes(data[: len(data) // 2])
        with pytest.raises(SpecsoilError) as caught:
            SpectralModel.load(copy_of)
        message = str(caught.value)
        assert f"{PIPELINE_FILE}: truncated or corrupt" in message
        assert "version that wrote it" not in message

    @pytest.mark.parametrize("writer", ["0.0.1", __version__])
    def test_unbuildable_pipeline_blames_versions_only_when_they_differ(
        self, copy_of, monkeypatch, writer
    ):
        path = copy_of / MANIFEST
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["specsoil_version"] = writer
        path.write_text(json.dumps(manifest), encoding="utf-8")

        def fails(*args: object, **kwargs: object) -> None:
            raise AttributeError("module has no attribute 'OldStep'")

        monkeypatch.setattr(sio, "load", fails)
        with pytest.raises(SpecsoilError) as caught:
            SpectralModel.load(copy_of)
        message = str(caught.value)
        if writer == __version__:
            assert f"{PIPELINE_FILE}: corrupt: the fitted pipeline does not rebuild" in message
            assert "version that wrote it" not in message
        else:
            assert f"written by specsoil 0.0.1 with specsoil {__version__}" in message


# --------------------------------------------------------------------------- the CLI
def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command", ["predict", "explain"])
@pytest.mark.parametrize("payload", ["eval", "pickled npz"])
def test_cli_refuses_with_exit_2_and_one_line(copy_of, marker, tmp_path, capsys, command, payload):
    if payload == "eval":
        _write_skops(copy_of / PIPELINE_FILE, _payloads(marker)["eval"])
        expected = ["pipeline.skops: refused to load", "builtins.eval"]
    else:
        np.savez(copy_of / "domain.npz", mean=np.array([_RunsShell(f"touch {marker}")]))
        expected = ["domain.npz: refused to load: it holds pickled"]
    argv = ["-q", command, "--model", str(copy_of), "--data", str(GEEVES_SMALL)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"specsoil {command}: error: ")
    for text in expected:
        assert text in line
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("edit", list(MANIFEST_EDITS))
def test_cli_tampered_manifest_exits_2(copy_of, tmp_path, capsys, edit):
    _edit_manifest(copy_of, edit)
    argv = ["predict", "--model", str(copy_of), "--data", str(GEEVES_SMALL)]
    assert main([*argv, "--out", str(tmp_path / "p.csv")]) == 2
    line = _one_line_error(capsys)
    assert MANIFEST in line


def test_cli_in_a_fresh_process_prints_one_line(copy_of, marker, tmp_path):
    """No warning, log line or traceback besides the error, as a user's shell sees it."""
    import subprocess
    import sys

    _write_skops(copy_of / PIPELINE_FILE, _payloads(marker)["exec"])
    src = Path(__file__).resolve().parents[2] / "src"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    argv = ["predict", "--model", str(copy_of), "--data", str(GEEVES_SMALL), "--out", "p.csv"]
    done = subprocess.run(
        [sys.executable, "-m", "specsoil", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "builtins.exec" in lines[0]
    assert not marker.exists()
