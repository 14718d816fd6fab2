"""ONNX export: onnxruntime agrees with PyTorch on real spectra, and bad inputs fail clearly.

Agreement is measured as max |onnxruntime - PyTorch| over every spectrum and target,
divided by that target's training standard deviation, and must be below 1e-4 (the nets
run in float32 in both; the preprocessing runs in float64 in both).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable

from ._helpers import target_sd
from .conftest import NIRSOIL_TARGETS

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from specsoil.export import ONNX_FORMAT_VERSION, OnnxModel, export_onnx

TOLERANCE = 1e-4  # in target standard deviations
# Valid specsoil metadata for a 3-band identity graph (TestRuntimeErrors._identity_model).
IDENTITY_METADATA = {
    "format_version": ONNX_FORMAT_VERSION,
    "name": "identity",
    "targets": ["a", "b", "c"],
    "wavelengths": [1000.0, 1010.0, 1020.0],
}


def _max_relative_difference(model, onnx_model, table) -> float:
    reference = model.predict(table)
    predicted = onnx_model.predict(table)
    assert predicted.shape == reference.shape == (table.n_samples, len(model.targets))
    return float(np.max(np.abs(predicted - reference) / target_sd(model)))


@pytest.mark.parametrize(
    ("recipe", "params"),
    [
        ("cnn1d", {}),  # resample, then SpectralChannels (SG derivative, SNV, standardised)
        ("seed_cnn", {}),  # resample, autoscale
        ("cnn1d", {"n_ensemble": 2}),  # two members averaged
        ("cnn2d", {}),  # resample, autoscale, Spectrogram (STFT log-magnitude)
        ("cnn1d2d", {}),  # the network's own torch.stft layer, swapped for matrices
    ],
    ids=["cnn1d", "seed_cnn", "cnn1d_ensemble", "cnn2d", "cnn1d2d"],
)
def test_onnxruntime_agrees_with_pytorch_on_real_spectra(exported, nirsoil_new, recipe, params):
    model, path = exported(recipe, **params)
    onnx_model = OnnxModel.load(path)
    assert _max_relative_difference(model, onnx_model, nirsoil_new) < TOLERANCE


def test_model_on_another_grid_resamples_like_pytorch(exported):
    """A nirsoil (FOSS, 2 nm) model predicting geeves (ASD, 1 nm) spectra: the align path."""
    from specsoil.data import load_dataset

    geeves = load_dataset("geeves")
    table = geeves.subset(np.arange(0, geeves.n_samples, 8))
    model, path = exported("cnn1d")
    assert table.wavelengths.size != model.wavelengths.size
    assert _max_relative_difference(model, OnnxModel.load(path), table) < TOLERANCE


def test_dynamic_batch_axis_and_batching(exported, nirsoil_new):
    model, path = exported("seed_cnn")
    onnx_model = OnnxModel.load(path)
    aligned = model.align(nirsoil_new)
    whole = onnx_model.predict_array(aligned)
    one = onnx_model.predict_array(aligned[:1])
    in_small_batches = onnx_model.predict_array(aligned, batch_size=5)
    np.testing.assert_allclose(one, whole[:1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(in_small_batches, whole, rtol=0, atol=1e-6)


def test_metadata_describes_the_model(exported):
    model, path = exported("seed_cnn")
    onnx_model = OnnxModel.load(path)
    assert onnx_model.name == model.name == "seed_cnn"
    assert onnx_model.recipe == "seed_cnn"
    assert onnx_model.targets == model.targets
    np.testing.assert_array_equal(onnx_model.wavelengths, model.wavelengths)
    manifest = onnx_model.manifest
    assert manifest["format_version"] == ONNX_FORMAT_VERSION
    assert manifest["spectra_kind"] == "absorbance"
    assert (manifest["input"], manifest["output"]) == ("spectra", "properties")
    import onnx

    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["spectra"]
    assert [o.name for o in graph.output] == ["properties"]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    width = graph.input[0].type.tensor_type.shape.dim[1].dim_value
    assert width == model.wavelengths.size


class TestExportErrors:
    def test_nonlinear_classic_model_is_refused(self, nirsoil_train, tmp_path):
        from specsoil.models import SpectralModel

        model = SpectralModel.fit(
            nirsoil_train, ["N_total_g_kg"], recipe="rf", params={"n_estimators": 10}
        )
        with pytest.raises(SpecsoilError, match=r"only CNN models and linear ones.*'rf'"):
            export_onnx(model, tmp_path / "rf.onnx")
        assert not (tmp_path / "rf.onnx").exists()

    def test_plsr_is_exported_as_one_matrix(self, nirsoil_train, nirsoil_new, tmp_path):
        import onnx

        from specsoil.models import SpectralModel

        model = SpectralModel.fit(
            nirsoil_train, NIRSOIL_TARGETS, recipe="plsr", params={"max_components": 8}
        )
        path = export_onnx(model, tmp_path / "plsr.onnx")
        operators = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert "Conv" not in operators
        assert _max_relative_difference(model, OnnxModel.load(path), nirsoil_new) < TOLERANCE

    def test_clip_bounds_travel_with_the_export(self, nirsoil_train, nirsoil_new, tmp_path):
        from specsoil.models import SpectralModel

        model = SpectralModel.fit(
            nirsoil_train, NIRSOIL_TARGETS, recipe="plsr", params={"max_components": 8}
        )
        cap = float(np.median(model.predict(nirsoil_new)[:, 0]))  # binds for half the rows
        model.clip = {NIRSOIL_TARGETS[0]: (None, cap)}
        exported = OnnxModel.load(export_onnx(model, tmp_path / "plsr.onnx"))
        assert exported.clip == model.clip
        predicted = exported.predict(nirsoil_new)
        assert predicted[:, 0].max() <= cap
        assert _max_relative_difference(model, exported, nirsoil_new) < TOLERANCE

    def test_unsupported_step_is_named(self, nirsoil_train, tmp_path):
        from specsoil.models import SpectralModel

        model = SpectralModel.fit(
            nirsoil_train,
            ["N_total_g_kg"],
            recipe="seed_cnn",
            preprocessing=[
                {"name": "resample", "step": 10, "method": "mean"},
                {"name": "continuum_removal"},
            ],
            params={"max_epochs": 1},
        )
        with pytest.raises(SpecsoilError, match=r"'continuum_removal'.*ContinuumRemoval"):
            export_onnx(model, tmp_path / "cr.onnx")

    def test_other_linear_and_scatter_steps_export_exactly(
        self, nirsoil_train, nirsoil_new, tmp_path
    ):
        from specsoil.models import SpectralModel

        model = SpectralModel.fit(
            nirsoil_train,
            ["N_total_g_kg", "CEC_meq_100g"],
            recipe="seed_cnn",
            preprocessing=[
                {"name": "resample", "step": 8, "method": "cubic"},
                {"name": "savgol", "window_length": 9, "polyorder": 2, "deriv": 1},
                {"name": "detrend", "order": 2},
                {"name": "msc"},
                {"name": "snv"},
                {"name": "center"},
            ],
            params={"max_epochs": 1},
        )
        onnx_model = OnnxModel.load(export_onnx(model, tmp_path / "steps.onnx"))
        assert _max_relative_difference(model, onnx_model, nirsoil_new) < TOLERANCE

    def test_splice_correction_exports_exactly(self, nirsoil_train, nirsoil_new, tmp_path):
        """splice_correction is linear: the graph holds it as a matrix, with ONNX parity."""
        from specsoil.models import SpectralModel

        model = SpectralModel.fit(
            nirsoil_train,
            ["N_total_g_kg"],
            recipe="seed_cnn",
            preprocessing=[
                # nirsoil is 1100-2498 nm: one join, at 1800 nm, inside its range.
                {"name": "splice_correction", "splice": [1800], "interpolation_bands": 8},
                {"name": "resample", "step": 10, "method": "mean"},
                {"name": "autoscale"},
            ],
            params={"max_epochs": 1},
        )
        onnx_model = OnnxModel.load(export_onnx(model, tmp_path / "splice.onnx"))
        assert _max_relative_difference(model, onnx_model, nirsoil_new) < TOLERANCE


class TestRuntimeErrors:
    def test_missing_file(self, tmp_path):
        with pytest.raises(SpecsoilError, match="no such ONNX file"):
            OnnxModel.load(tmp_path / "absent.onnx")

    def test_not_an_onnx_file(self, tmp_path):
        path = tmp_path / "model.onnx"
        path.write_text("sample_id,1100\n1,0.5\n", encoding="utf-8")
        with pytest.raises(SpecsoilError, match="not a readable ONNX model"):
            OnnxModel.load(path)

    def _identity_model(self, path, metadata=None):
        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node("Identity", ["spectra"], ["properties"])],
            "identity",
            [helper.make_tensor_value_info("spectra", TensorProto.FLOAT, ["N", 3])],
            [helper.make_tensor_value_info("properties", TensorProto.FLOAT, ["N", 3])],
        )
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        proto.ir_version = 8
        if metadata is not None:
            helper.set_model_props(proto, {"specsoil": json.dumps(metadata)})
        onnx.save_model(proto, str(path))
        return path

    def test_onnx_model_not_from_specsoil(self, tmp_path):
        path = self._identity_model(tmp_path / "foreign.onnx")
        with pytest.raises(SpecsoilError, match="not one exported by specsoil"):
            OnnxModel.load(path)

    def test_newer_export_format_asks_for_an_upgrade(self, tmp_path):
        metadata = {
            "format_version": ONNX_FORMAT_VERSION + 1,
            "specsoil_version": "9.0.0",
            "name": "future",
            "targets": ["a", "b", "c"],
            "wavelengths": [1.0, 2.0, 3.0],
        }
        path = self._identity_model(tmp_path / "future.onnx", metadata)
        with pytest.raises(SpecsoilError, match=r"ONNX export format version 2 .*9\.0\.0.*upgrade"):
            OnnxModel.load(path)

    def test_metadata_that_contradicts_the_graph(self, tmp_path):
        metadata = {
            "format_version": ONNX_FORMAT_VERSION,
            "name": "bad",
            "targets": ["a"],
            "wavelengths": [1.0, 2.0, 3.0],
        }
        path = self._identity_model(tmp_path / "bad.onnx", metadata)
        with pytest.raises(SpecsoilError, match="returns 3 properties but its metadata lists 1"):
            OnnxModel.load(path)

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"wavelengths": ["1000", "1010", "1020"]}, r"'wavelengths' must hold numbers"),
            ({"targets": "abc"}, r"field 'targets' must be a list"),
            ({"clip": {"a": [3, 1]}}, r"metadata 'clip': 'a' low bound 3 is above"),
        ],
    )
    def test_tampered_metadata_names_the_field(self, tmp_path, change, message):
        path = self._identity_model(tmp_path / "id.onnx", {**IDENTITY_METADATA, **change})
        with pytest.raises(SpecsoilError, match=rf"id\.onnx: .*{message}"):
            OnnxModel.load(path)

    def test_identity_graph_with_valid_metadata_runs(self, tmp_path):
        model = OnnxModel.load(self._identity_model(tmp_path / "id.onnx", IDENTITY_METADATA))
        X = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], dtype=np.float32)
        np.testing.assert_allclose(model.predict_array(X), X)
        with pytest.raises(SpecsoilError, match=r"takes spectra of shape \(n, 3\); got \(2, 2\)"):
            model.predict_array(X[:, :2])
        table = SpectraTable(
            X=X[:, :2].copy(),
            wavelengths=np.array([1000.0, 1010.0]),
            metadata=pd.DataFrame({"sample_id": [1, 2]}),
            source="short.csv",
        )
        with pytest.raises(SpecsoilError, match=r"short\.csv: spectra cover 1000-1010 nm"):
            model.predict(table)


class TestGraph:
    def test_linear_capture_rejects_a_nonlinear_transform(self):
        from specsoil.export._graph import _capture_affine

        with pytest.raises(SpecsoilError, match="'square' is not linear"):
            _capture_affine(lambda X: X**2, 5, "square")

    def test_splice_step_becomes_the_matrix_of_its_transform(self, nirsoil_new):
        """The captured splice module computes the step's own transform on real spectra."""
        import torch

        from specsoil.export._graph import AffineMap, _convert_step
        from specsoil.preprocess import SpliceCorrection

        X = nirsoil_new.X.astype(np.float64)
        step = SpliceCorrection(nirsoil_new.wavelengths, splice=(1500, 2000)).fit(X)
        module = _convert_step("splice", step, X.shape[1])
        assert isinstance(module, AffineMap)
        with torch.no_grad():
            got = module(torch.from_numpy(X)).numpy()
        expected = step.transform(X)
        assert not np.allclose(expected, X)  # the step did shift segments
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())

    def test_scaler_flags_decide_centring_and_scaling(self, nirsoil_train):
        """StandardScaler(with_mean=False) still fits mean_; the graph must not centre."""
        import torch
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        from specsoil.export._graph import build_module
        from specsoil.train import CNNRegressor

        X = nirsoil_train.X[:, ::10]  # (83, 70)
        y = nirsoil_train.targets(["C_iso_pct"])[:, 0]
        keep = np.isfinite(y)
        pipeline = Pipeline(
            [
                ("scale", StandardScaler(with_mean=False)),
                ("cnn", CNNRegressor("seed_cnn", max_epochs=1, num_threads=1, random_state=0)),
            ]
        ).fit(X[keep], y[keep])
        module = build_module(pipeline, X.shape[1], model_name="scaled")
        with torch.no_grad():
            got = module(torch.from_numpy(X)).numpy()[:, 0]
        np.testing.assert_allclose(got, pipeline.predict(X), rtol=0, atol=1e-5 * np.std(y[keep]))
