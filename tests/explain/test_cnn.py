"""Integrated gradients for CNN models (needs torch and captum)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.explain import METHOD_INTEGRATED_GRADIENTS, METHOD_PERMUTATION, explain_model
from specsoil.models import SpectralModel

from .conftest import TARGET_BAND_NM

pytest.importorskip("torch")
pytest.importorskip("captum")

# A few epochs of the flatten-head teaching CNN learn the linear band-depth target
# (R² ~0.99 on these spectra); 20 nm bands halve the work.
_FAST = {"max_epochs": 12, "patience": None, "lr": 3e-3, "val_fraction": 0.0, "lr_schedule": "none"}
_STEPS = [{"name": "resample", "step": 20, "method": "mean"}, {"name": "autoscale"}]


@pytest.fixture(scope="module")
def seed_cnn(bands):
    return SpectralModel.fit(bands, ["clay"], recipe="seed_cnn", params=_FAST, preprocessing=_STEPS)


def test_integrated_gradients_peak_at_the_band(seed_cnn, bands):
    pred = seed_cnn.predict(bands)[:, 0]
    y = bands.targets(["clay"])[:, 0]
    assert 1 - np.mean((pred - y) ** 2) / np.var(y) > 0.9  # the net did learn the target
    explanation = explain_model(seed_cnn, bands, folds=0, n_steps=16)
    (curve,) = explanation.curves
    assert curve.method == METHOD_INTEGRATED_GRADIENTS
    w = explanation.wavelengths
    assert w[1] - w[0] == 20.0  # reported on the model's resampled grid
    assert abs(w[np.argmax(curve.model)] - TARGET_BAND_NM) <= 40.0
    near = np.abs(w - TARGET_BAND_NM) <= 40.0
    distractors = (np.abs(w - 1400.0) <= 40.0) | (np.abs(w - 1900.0) <= 40.0)
    assert curve.model[near].mean() > 3.0 * curve.model[distractors].mean()


def test_multichannel_cnn1d_is_summed_over_channels(bands):
    params = {**_FAST, "max_epochs": 2, "module_params": {"channels": (4, 8)}}
    model = SpectralModel.fit(bands, ["clay"], recipe="cnn1d", params=params)
    (curve,) = explain_model(model, bands, folds=0, n_steps=8).curves
    assert curve.model.shape == (bands.wavelengths.size,)
    assert np.all(np.isfinite(curve.model))
    assert np.all(curve.model >= 0)
    assert curve.model.max() > 0


def test_spectrogram_cnn_gets_permutation_importance_on_the_wavelength_grid(bands):
    # cnn2d reads spectrograms, which have no wavelength axis for gradients; permuting
    # absorbance windows before the spectrogram still gives one value per band.
    params = {**_FAST, "max_epochs": 1}
    model = SpectralModel.fit(bands, ["clay"], recipe="cnn2d", params=params)
    (curve,) = explain_model(model, bands, folds=0, n_repeats=1).curves
    assert curve.method == METHOD_PERMUTATION
    assert curve.model.shape == (model.pipeline[0].wavelengths_out_.size,)
    assert np.all(np.isfinite(curve.model))


def test_fold_refits_give_a_spread(seed_cnn, bands):
    explanation = explain_model(seed_cnn, bands, folds=3, n_steps=16)
    (curve,) = explanation.curves
    assert curve.folds.shape == (3, explanation.wavelengths.size)
    assert np.all(np.isfinite(curve.sd))
    assert abs(explanation.wavelengths[np.argmax(curve.mean)] - TARGET_BAND_NM) <= 40.0


def test_missing_captum_names_the_extra(seed_cnn, bands, monkeypatch):
    monkeypatch.setitem(sys.modules, "captum.attr", None)  # makes the import fail
    with pytest.raises(SpecsoilError, match=r"pip install 'specsoil\[explain\]'"):
        explain_model(seed_cnn, bands, folds=0)
