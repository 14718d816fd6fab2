import numpy as np
import pytest
import skops.io as sio
import yaml
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from specsoil._errors import SpecsoilError
from specsoil.preprocess import (
    ContinuumRemoval,
    Detrend,
    Resample,
    SavitzkyGolay,
    list_preprocessing_steps,
    make_preprocessing,
)

STEP_NAMES = [
    "absorbance",
    "autoscale",
    "center",
    "continuum_removal",
    "detrend",
    "msc",
    "resample",
    "savgol",
    "snv",
    "splice_correction",
]
# Options that make each step meaningful on absorbance input.
ONE_STEP = {
    "absorbance": {"kind": "absorbance"},
    "resample": {"step": 10, "method": "mean"},
    "savgol": {"window_length": 11, "polyorder": 2, "deriv": 1},
}


class TestListPreprocessingSteps:
    def test_lists_every_step_sorted(self):
        assert list_preprocessing_steps() == STEP_NAMES


class TestMakePreprocessing:
    @pytest.mark.parametrize("name", list_preprocessing_steps())
    def test_every_step_runs_on_real_spectra(self, geeves_absorbance, name):
        A, wavelengths = geeves_absorbance
        pipeline, out_wavelengths = make_preprocessing(
            [{"name": name, **ONE_STEP.get(name, {})}], wavelengths
        )
        out = pipeline.fit_transform(A)
        assert out.shape == (A.shape[0], out_wavelengths.size)
        assert np.isfinite(out).all()
        assert pipeline.steps[0][0] == name

    def test_resample_threads_the_grid(self, geeves_absorbance):
        A, wavelengths = geeves_absorbance
        steps = [
            {"name": "resample", "start": 400, "stop": 2400, "step": 10, "method": "mean"},
            {"name": "savgol", "window_length": 11, "polyorder": 2},
            {"name": "detrend", "order": 1},
            {"name": "continuum_removal"},
        ]
        pipeline, out_wavelengths = make_preprocessing(steps, wavelengths)
        assert_allclose(out_wavelengths, np.arange(400.0, 2401.0, 10.0))
        detrend, continuum = (
            pipeline.named_steps["detrend"],
            pipeline.named_steps["continuum_removal"],
        )
        assert_allclose(detrend.wavelengths, out_wavelengths)
        assert_allclose(continuum.wavelengths, out_wavelengths)
        assert pipeline.fit_transform(A).shape == (A.shape[0], 201)

    def test_builds_the_configured_transformers(self):
        wavelengths = np.arange(1100.0, 2500.0, 2.0)
        pipeline, _ = make_preprocessing(
            [
                {"name": "savgol", "window_length": 15, "polyorder": 3, "deriv": 2},
                {"name": "detrend", "order": 3},
                {"name": "continuum_removal"},
                {"name": "center"},
                {"name": "autoscale"},
            ],
            wavelengths,
        )
        savgol, detrend, continuum, center, autoscale = (step for _, step in pipeline.steps)
        assert isinstance(savgol, SavitzkyGolay)
        assert (savgol.window_length, savgol.polyorder, savgol.deriv) == (15, 3, 2)
        assert isinstance(detrend, Detrend)
        assert detrend.order == 3
        # Pipelines run on absorbance, so the registry defaults to the lower hull.
        assert isinstance(continuum, ContinuumRemoval)
        assert continuum.kind == "absorbance"
        assert isinstance(center, StandardScaler)
        assert (center.with_mean, center.with_std) == (True, False)
        assert isinstance(autoscale, StandardScaler)
        assert (autoscale.with_mean, autoscale.with_std) == (True, True)

    def test_empty_list_is_identity(self, geeves_absorbance):
        A, wavelengths = geeves_absorbance
        pipeline, out_wavelengths = make_preprocessing([], wavelengths)
        assert isinstance(pipeline.steps[0][1], FunctionTransformer)
        np.testing.assert_array_equal(pipeline.fit_transform(A), A)
        np.testing.assert_array_equal(out_wavelengths, wavelengths)

    def test_repeated_steps_get_unique_names(self):
        pipeline, _ = make_preprocessing(
            [{"name": "snv"}, {"name": "detrend"}, {"name": "snv"}], np.arange(50.0)
        )
        assert [name for name, _ in pipeline.steps] == ["snv", "detrend", "snv_3"]

    def test_steps_from_yaml(self, geeves_absorbance):
        A, wavelengths = geeves_absorbance
        steps = yaml.safe_load(
            "- {name: resample, step: 5, method: mean}\n"
            "- {name: savgol, window_length: 7, polyorder: 2, deriv: 1}\n"
            "- {name: snv}\n"
        )
        pipeline, out_wavelengths = make_preprocessing(steps, wavelengths)
        assert isinstance(pipeline.steps[0][1], Resample)
        assert pipeline.fit_transform(A).shape == (A.shape[0], out_wavelengths.size)

    def test_clone_and_skops_round_trip(self, geeves_absorbance, tmp_path):
        A, wavelengths = geeves_absorbance
        steps = [
            {"name": "resample", "step": 10, "method": "mean"},
            {"name": "savgol"},
            {"name": "msc"},
        ]
        pipeline, _ = make_preprocessing(steps, wavelengths)
        expected = pipeline.fit_transform(A)
        assert_allclose(clone(pipeline).fit_transform(A), expected)
        sio.dump(pipeline, tmp_path / "pipe.skops")
        untrusted = sio.get_untrusted_types(file=tmp_path / "pipe.skops")
        assert all(
            t.startswith(("specsoil.", "sklearn.", "numpy.", "builtins.")) for t in untrusted
        )
        loaded = sio.load(tmp_path / "pipe.skops", trusted=untrusted)
        assert isinstance(loaded, Pipeline)
        assert_allclose(loaded.transform(A), expected)

    @pytest.mark.parametrize(
        ("steps", "match"),
        [
            ([{"name": "smooth"}], r"step 1: unknown step 'smooth'; known steps: \['absorbance', "),
            ([{"name": "snv"}, {"kind": "snv"}], r"step 2: expected a mapping with a 'name' key"),
            (["snv"], r"step 1: expected a mapping with a 'name' key"),
            (
                [{"name": "savgol", "window": 11}],
                r"step 1 \(savgol\): unknown option\(s\) \['window'\]; "
                r"savgol accepts \['window_length', 'polyorder', 'deriv', 'mode'\]",
            ),
            ([{"name": "snv", "ddof": 0}], r"snv accepts no options"),
            (
                [{"name": "resample", "wavelengths": [1, 2]}],
                r"unknown option\(s\) \['wavelengths'\]",
            ),
            (
                [{"name": "savgol", "window_length": 10}],
                r"step 1 \(savgol\): window_length must be odd and > polyorder=2; got 10",
            ),
            ([{"name": "savgol", "deriv": 3}], r"deriv must be <= polyorder=2"),
            (
                [{"name": "resample", "step": 100}, {"name": "savgol", "window_length": 31}],
                r"step 2 \(savgol\): window_length=31 must be <= the number of wavelengths; "
                r"X has 22",
            ),
            (
                [{"name": "resample", "start": 300}],
                r"step 1 \(resample\): target grid 300-2500 nm is outside the source range "
                r"350-2500 nm",
            ),
            ([{"name": "resample", "method": "nearest"}], r"method must be one of"),
            (
                [{"name": "detrend", "order": -1}],
                r"step 1 \(detrend\): order must be an integer >= 0",
            ),
            ([{"name": "msc", "reference": "mode"}], r"reference must be one of"),
            ([{"name": "absorbance", "kind": "raw"}], r"kind must be one of"),
            ([{"name": "absorbance"}], r"step 1 \(absorbance\): the absorbance step needs 'kind'"),
            ([{"name": "continuum_removal", "kind": "raw"}], r"kind must be one of"),
        ],
    )
    def test_errors_name_the_step_and_what_is_accepted(self, steps, match):
        with pytest.raises(SpecsoilError, match=match):
            make_preprocessing(steps, np.arange(350.0, 2501.0))

    def test_bad_wavelengths_are_a_user_error(self):
        with pytest.raises(SpecsoilError, match="strictly ascending"):
            make_preprocessing([{"name": "snv"}], [2500.0, 350.0])
