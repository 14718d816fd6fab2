"""Clip bounds: checked against the targets, applied to predictions and interval ends, saved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import read_spectra
from specsoil.models import SpectralModel, apply_clip, check_clip, describe_clip
from specsoil.models._spectral_model import MANIFEST

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"
TARGETS = ["clay_pct", "total_carbon_pct"]


class TestCheckClip:
    def test_normalised_in_target_order(self):
        bounds = check_clip({"b": [None, 5], "a": (0, 100)}, ["a", "b"])
        assert list(bounds) == ["a", "b"]
        assert bounds == {"a": (0.0, 100.0), "b": (None, 5.0)}

    def test_open_pair_is_dropped(self):
        assert check_clip({"a": (None, None)}, ["a"]) == {}

    @pytest.mark.parametrize(
        ("bounds", "message"),
        [
            ({"sand": (0, 1)}, r"opt: unknown target 'sand'; the model predicts \['a'\]"),
            ({"a": (5, 1)}, r"opt: 'a' low bound 5 is above its high bound 1"),
            ({"a": (0, float("nan"))}, r"'a' bounds must be finite numbers"),
            ({"a": (True, 1)}, r"'a' bounds must be finite numbers; got True"),
            ({"a": (0, 1, 2)}, r"'a' needs \(low, high\)"),
        ],
    )
    def test_errors(self, bounds, message):
        with pytest.raises(SpecsoilError, match=message):
            check_clip(bounds, ["a"], source="opt")

    def test_apply_clip_touches_only_bounded_columns(self):
        values = np.array([[-3.0, -3.0, 150.0], [50.0, 7.0, -1.0]])
        bounds = {"a": (0.0, 100.0), "c": (None, 100.0)}
        clipped = apply_clip(values, bounds, ["a", "b", "c"])
        np.testing.assert_array_equal(clipped, [[0.0, -3.0, 100.0], [50.0, 7.0, -1.0]])
        assert values[0, 0] == -3.0  # the input is left alone

    def test_describe(self):
        text = describe_clip({"a": (0.0, 100.0), "b": (0.0, None), "c": (None, 2.5)})
        assert text == "a 0..100, b >= 0, c <= 2.5"


@pytest.fixture(scope="module")
def table():
    return read_spectra(GEEVES_SMALL, spectra_kind="reflectance")


def _fit(table, clip=None) -> SpectralModel:
    settings = {"params": {"max_components": 3}, "conformal": "cv+", "conformal_folds": 3}
    return SpectralModel.fit(table, TARGETS, recipe="plsr", clip=clip, **settings)


@pytest.fixture(scope="module")
def unclipped(table):
    return _fit(table)


def test_fit_saves_and_applies_bounds_to_predictions_and_intervals(table, unclipped, tmp_path):
    point, lower, upper = unclipped.predict_interval(table, 0.9)
    # Bounds that bind: clay at its median prediction, carbon's lower interval end at 0.
    clay_cap = float(np.median(point[:, 0]))
    assert lower[:, 1].min() < 0.0  # so the carbon bound matters
    bounds = {"clay_pct": (None, clay_cap), "total_carbon_pct": (0.0, None)}
    model = _fit(table, clip=bounds)
    loaded = SpectralModel.load(model.save(tmp_path / "clipped"))
    manifest = json.loads((tmp_path / "clipped" / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["clip"] == {"clay_pct": [None, clay_cap], "total_carbon_pct": [0.0, None]}
    assert loaded.clip == bounds
    clipped_point, clipped_lower, clipped_upper = loaded.predict_interval(table, 0.9)
    np.testing.assert_allclose(clipped_point[:, 0], np.minimum(point[:, 0], clay_cap))
    np.testing.assert_allclose(clipped_upper[:, 0], np.minimum(upper[:, 0], clay_cap))
    np.testing.assert_allclose(clipped_lower[:, 1], np.maximum(lower[:, 1], 0.0))
    np.testing.assert_allclose(clipped_point[:, 1], np.maximum(point[:, 1], 0.0))
    np.testing.assert_allclose(loaded.predict(table), clipped_point)


def test_fit_rejects_bounds_for_another_target(table):
    with pytest.raises(SpecsoilError, match=r"clip: unknown target 'sand_pct'"):
        SpectralModel.fit(table, ["clay_pct"], recipe="plsr", clip={"sand_pct": (0, 100)})


def test_models_saved_without_the_field_have_no_bounds(unclipped, tmp_path):
    folder = unclipped.save(tmp_path / "old")
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    del manifest["clip"]  # as written before clip bounds existed
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert SpectralModel.load(folder).clip == {}
