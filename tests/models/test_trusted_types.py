"""The allow-list of pipeline types is exactly what ``SpectralModel.save`` writes.

Saves every recipe (small settings) and every preprocessing step, lists the types skops
does not trust by default, and compares them with ``TRUSTED_TYPES``. When a new estimator
or step changes them, rerun with ``SPECSOIL_UPDATE_TRUSTED_TYPES=1`` to rewrite the list,
and review the diff: every type added there is one a model file may build.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path

import pytest
import skops.io as sio

from specsoil.data import read_spectra
from specsoil.models import SpectralModel, available_recipes, list_recipes
from specsoil.models import _trusted_types as trusted_module
from specsoil.models._trusted_types import TRUSTED_TYPES
from specsoil.preprocess import list_preprocessing_steps

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"
# Settings that keep each fit to a second or so; they do not change which types are saved.
SMALL_PARAMS: dict[str, dict[str, object]] = {
    "plsr": {"max_components": 3},
    "rf": {"n_estimators": 3},
    "cubist": {"n_committees": 2},
}
# Every preprocessing step once (options where a step needs one), behind the plsr recipe.
EVERY_STEP = [
    {"name": "absorbance", "kind": "absorbance"},
    {"name": "splice_correction"},  # on the native 1 nm grid, before resampling
    {"name": "resample", "step": 20},
    {"name": "savgol", "window_length": 5, "polyorder": 2},
    {"name": "snv"},
    {"name": "msc"},
    {"name": "detrend"},
    {"name": "continuum_removal"},
    {"name": "center"},
    {"name": "autoscale"},
]
# The only function on the list; everything else must be a class.
ALLOWED_FUNCTIONS = {"sklearn.metrics._regression.root_mean_squared_error"}


def _saved_types(tmp_path: Path) -> tuple[set[str], list[str]]:
    """The non-default skops types of every recipe's saved model, and the recipes skipped.

    Each saved model is loaded back too, so the allow-list and the checks after loading
    accept everything specsoil writes.
    """
    table = read_spectra(GEEVES_SMALL, spectra_kind="reflectance")
    runs = [(recipe, None) for recipe in available_recipes()]
    runs.append(("plsr", EVERY_STEP))
    found: set[str] = set()
    for i, (recipe, steps) in enumerate(runs):
        params = SMALL_PARAMS.get(recipe, {"max_epochs": 1} if "cnn" in recipe else {})
        model = SpectralModel.fit(
            table, ["clay_pct"], recipe=recipe, preprocessing=steps, params=params, conformal=None
        )
        folder = model.save(tmp_path / f"{i}-{recipe}")
        for path in folder.glob("*.skops"):
            found.update(sio.get_untrusted_types(file=path))
        SpectralModel.load(folder)  # and specsoil's own checks (trees, manifest) accept it
    skipped = sorted(set(list_recipes()) - set(available_recipes()))
    return found, skipped


def test_every_step_is_covered():
    assert sorted(step["name"] for step in EVERY_STEP) == list_preprocessing_steps()


def test_the_list_is_exactly_what_save_writes(tmp_path):
    found, skipped = _saved_types(tmp_path)
    if os.environ.get("SPECSOIL_UPDATE_TRUSTED_TYPES") == "1":
        assert not skipped, f"install every extra before regenerating; missing {skipped}"
        _rewrite(found)
        pytest.skip("TRUSTED_TYPES rewritten; review the diff of _trusted_types.py")
    assert found <= TRUSTED_TYPES, (
        f"save writes types missing from TRUSTED_TYPES: {sorted(found - TRUSTED_TYPES)}; "
        "rerun with SPECSOIL_UPDATE_TRUSTED_TYPES=1"
    )
    if not skipped:  # with every extra installed the list must not hold anything unused
        assert TRUSTED_TYPES <= found, (
            f"TRUSTED_TYPES lists types no model writes: {sorted(TRUSTED_TYPES - found)}"
        )


def test_no_wildcards_and_no_dangerous_callables():
    for name in TRUSTED_TYPES:
        module_name, _, attribute = name.rpartition(".")
        assert not module_name.startswith(
            ("builtins", "operator", "functools", "os", "posix", "nt", "subprocess", "numpy")
        ), name
        assert attribute, name
        try:
            obj = getattr(importlib.import_module(module_name), attribute)
        except ImportError:  # an optional extra (cubist) that is not installed here
            continue
        assert inspect.isclass(obj) or name in ALLOWED_FUNCTIONS, name


def _rewrite(found: set[str]) -> None:
    path = Path(trusted_module.__file__)
    text = path.read_text(encoding="utf-8")
    lines = "".join(f'        "{name}",\n' for name in sorted(found))
    block = f"        # BEGIN GENERATED\n{lines}        # END GENERATED\n"
    text = re.sub(r" +# BEGIN GENERATED\n.*? +# END GENERATED\n", block, text, flags=re.S)
    path.write_text(text, encoding="utf-8")
